import type { JobRef, JobSpec, ObservedPhase } from '../jobs/job-spec.js';

export interface ObservedJob extends JobRef {
  readonly specVersion: number;
  /**
   * null: the job is there but its state cannot be told right now (its process is up but
   * did not answer: busy, or dying after a kill). Nothing is recorded for it; the next
   * observation tells.
   */
  readonly phase: ObservedPhase | null;
  readonly reason: string | null;
  /**
   * The runtime found the job's process hung (it never submitted its job, or stopped
   * answering for too long) and will not bring it back by itself: `phase` is RECOVERING,
   * `reason` says what was seen, and the reconciler removes the job (a restart counted
   * against its budget), to start it again as one that died. The Kubernetes runtime does
   * not judge hangs: it reports what the operator says of the job.
   */
  readonly hung?: boolean;
}

export interface RemoveOptions {
  /** Stop with a savepoint (a deactivation): a later activation resumes from it. */
  readonly savepoint?: boolean;
  /** The job was deleted: its state goes too. */
  readonly discardState?: boolean;
}

/** A complete savepoint: where its files are, and how many bytes they hold. */
export interface TakenSnapshot {
  readonly location: string;
  readonly sizeBytes: number;
}

export interface RemoveResult {
  /**
   * Set when a savepoint was asked for and not taken: why, and what the job resumes from
   * instead (its latest checkpoint). The reconciler records it as the STOPPED reason.
   */
  readonly note: string | null;
  /** The savepoint the job stopped with, for runtimes that keep snapshots (`snapshot`). */
  readonly savepoint?: TakenSnapshot;
}

/**
 * Where Flink processes live (local processes, Kubernetes objects). Every call is
 * idempotent so the reconciler can repeat it after any crash.
 */
export interface Runtime {
  readonly name: string;
  /** Makes the job run with this spec. A job already at this spec version is left alone. */
  apply(spec: JobSpec): Promise<void>;
  /**
   * Stops the job and frees what it held, its state excepted (unless `discardState`).
   * Absent jobs are fine. With `savepoint`, a running job first takes a savepoint, so a
   * later activation resumes exactly there; a job that cannot take one in time is
   * stopped anyway, and the result says so.
   */
  remove(ref: JobRef, options?: RemoveOptions): Promise<RemoveResult>;
  /** Every job the runtime holds now. */
  observe(): Promise<ObservedJob[]>;
  close(): Promise<void>;
  /**
   * Runtimes that learn of changes by watching (Kubernetes) call the listener on each,
   * so the reconciler need not wait for its interval. Returns the unsubscribe function.
   */
  onChange?(listener: () => void): () => void;
  /**
   * Checks, writing nothing, that the platform would accept the job now (e.g. the
   * account namespace's ResourceQuota). Throws RuntimeQuotaError, with a readable
   * message, when it would not.
   */
  admit?(spec: JobSpec): Promise<void>;
  /**
   * Snapshots on demand, for runtimes that keep them: `snapshot` takes a savepoint of the
   * running job (which runs on), in the state of `generation`, and resolves once it is
   * complete; it throws SavepointError when Flink does not take one. `deleteSnapshot`
   * removes a savepoint's files (absent ones are fine).
   */
  snapshot?(ref: JobRef, generation: number): Promise<TakenSnapshot>;
  deleteSnapshot?(ref: JobRef, location: string): Promise<void>;
  /**
   * Jobs whose state the runtime keeps while they run nowhere (stopped jobs): the
   * reconciler discards the state of those that were deleted.
   */
  keptStates?(): Promise<JobRef[]>;
}

/**
 * The runtime will never run this spec as it is (a permanent failure): the job is
 * marked FAILED with this message and not retried until its spec changes.
 */
export class RuntimeRejectedError extends Error {
  override readonly name: string = 'RuntimeRejectedError';
}

/** What ran out when the platform's own quota refused a job: one resource each. */
export interface QuotaExcess {
  readonly resource: string;
  readonly requested: string;
  readonly used: string;
  readonly limited: string;
}

/**
 * The platform's own quota (not the tier's: say, the account namespace's ResourceQuota)
 * does not admit the job. At activation the API answers QUOTA_EXCEEDED; met while
 * applying, it is permanent for this spec like any RuntimeRejectedError.
 */
export class RuntimeQuotaError extends RuntimeRejectedError {
  override readonly name: string = 'RuntimeQuotaError';
  constructor(
    message: string,
    readonly exceeded: readonly QuotaExcess[],
  ) {
    super(message);
  }
}
