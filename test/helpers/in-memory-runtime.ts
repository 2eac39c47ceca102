import type { ObservedJob, RemoveOptions, RemoveResult, Runtime } from '../../src/runtime/runtime.js';
import type { JobRef, JobSpec, ObservedPhase } from '../../src/jobs/job-spec.js';
import { RuntimeRejectedError } from '../../src/runtime/runtime.js';

/**
 * A runtime that holds jobs in a map, for unit tests of the reconciler and the API.
 * Tests move jobs between phases by hand (`setPhase`) or simulate crashes (`lose`).
 */
export class InMemoryRuntime implements Runtime {
  readonly name = 'in-memory';
  readonly jobs = new Map<string, ObservedJob & { spec: JobSpec }>();
  readonly calls: string[] = [];
  /** Specs whose name is here are rejected as the real runtime would reject bad SQL. */
  readonly rejectNames = new Set<string>();
  /** Every remove with its options, in order. */
  readonly removals: ({ id: string } & RemoveOptions)[] = [];
  /** When set, a remove with a savepoint says it stopped without one, for this reason. */
  savepointFailure: string | undefined;
  /** When set, the next apply throws this (a transient failure). */
  failNextApply: Error | undefined;

  async apply(spec: JobSpec): Promise<void> {
    this.calls.push(`apply ${spec.id}@${spec.specVersion}`);
    if (this.failNextApply) {
      const error = this.failNextApply;
      this.failNextApply = undefined;
      throw error;
    }
    if (this.rejectNames.has(spec.name)) throw new RuntimeRejectedError(`rejected ${spec.name}`);
    const current = this.jobs.get(spec.id);
    if (current?.specVersion === spec.specVersion) return;
    this.jobs.set(spec.id, {
      kind: spec.kind,
      id: spec.id,
      accountId: spec.accountId,
      specVersion: spec.specVersion,
      phase: 'STARTING',
      reason: null,
      spec,
    });
  }

  async remove(ref: JobRef, options: RemoveOptions = {}): Promise<RemoveResult> {
    this.calls.push(`remove ${ref.id}`);
    this.removals.push({ id: ref.id, ...options });
    this.jobs.delete(ref.id);
    return { note: options.savepoint ? (this.savepointFailure ?? null) : null };
  }

  async observe(): Promise<ObservedJob[]> {
    return [...this.jobs.values()].map(({ spec: _spec, ...job }) => job);
  }

  async close(): Promise<void> {}

  setPhase(id: string, phase: ObservedPhase | null, reason: string | null = null): void {
    const job = this.jobs.get(id);
    if (!job) throw new Error(`no job ${id}`);
    this.jobs.set(id, { ...job, phase, reason });
  }

  /** The job vanished (its cluster died and nothing restarted it). */
  lose(id: string): void {
    this.jobs.delete(id);
  }
}
