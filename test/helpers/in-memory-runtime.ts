import type { ObservedJob, RemoveOptions, RemoveResult, Runtime, TakenSnapshot } from '../../src/runtime/runtime.js';
import { SavepointError } from '../../src/flink/flink-rest.js';
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
  /** When set, `snapshot` fails as Flink would, for this reason. */
  snapshotFailure: string | undefined;
  /** Stopped jobs whose state the runtime keeps (`keptStates`); a discard removes one. */
  readonly kept = new Map<string, JobRef>();
  /** Savepoint locations `deleteSnapshot` was asked to delete, in order. */
  readonly deletedSnapshots: string[] = [];
  private savepoints = 0;

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
    const running = this.jobs.get(ref.id);
    this.jobs.delete(ref.id);
    if (options.discardState) this.kept.delete(ref.id);
    if (!options.savepoint || options.discardState) return { note: null };
    if (this.savepointFailure || !running) return { note: this.savepointFailure ?? null };
    return { note: null, savepoint: this.savepointOf(ref, running.spec.state.generation) };
  }

  async snapshot(ref: JobRef, generation: number): Promise<TakenSnapshot> {
    if (this.jobs.get(ref.id)?.phase !== 'RUNNING') throw new SavepointError('the job is not running');
    if (this.snapshotFailure) throw new SavepointError(this.snapshotFailure);
    return this.savepointOf(ref, generation);
  }

  async keptStates(): Promise<JobRef[]> {
    return [...this.kept.values()];
  }

  async deleteSnapshot(_ref: JobRef, location: string): Promise<void> {
    this.deletedSnapshots.push(location);
  }

  /** A savepoint as a runtime would name it, of a size that tells them apart. */
  private savepointOf(ref: JobRef, generation: number): TakenSnapshot {
    this.savepoints += 1;
    return { location: `memory://${ref.id}/g${generation}/savepoint-${this.savepoints}`, sizeBytes: 1000 + this.savepoints };
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
