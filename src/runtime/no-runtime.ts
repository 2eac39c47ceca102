import { RuntimeRejectedError, type ObservedJob, type RemoveResult, type Runtime } from './runtime.js';
import { type JobSpec } from '../jobs/job-spec.js';

/**
 * The runtime of a gateway configured to run no Flink at all (WEIR_RUNTIME=none): the
 * API works, and activating a job says plainly that nothing can run it.
 */
export class NoRuntime implements Runtime {
  readonly name = 'none';

  async apply(spec: JobSpec): Promise<void> {
    throw new RuntimeRejectedError(
      `This gateway runs no Flink (WEIR_RUNTIME=none), so ${spec.kind.toLowerCase()} "${spec.name}" cannot start.`,
    );
  }

  async remove(): Promise<RemoveResult> {
    return { note: null };
  }

  async observe(): Promise<ObservedJob[]> {
    return [];
  }

  async close(): Promise<void> {}
}
