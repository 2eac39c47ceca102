/**
 * What the preview service needs from wherever previews run: a session cluster (a
 * JobManager and a SQL Gateway) and a pool of one-slot TaskManagers, each running one
 * preview and then retired. Each backend implements both: locally as processes
 * (runtime/local/preview-cluster.ts, preview-pool.ts), on Kubernetes as a session-mode
 * FlinkDeployment and its pods (runtime/kubernetes/preview-cluster.ts, preview-pool.ts).
 */

/** Where the session cluster answers. */
export interface PreviewEndpoints {
  /** The JobManager's REST API (jobs, TaskManagers). */
  readonly jobManagerUrl: string;
  /** The Flink SQL Gateway's REST endpoint. */
  readonly gatewayUrl: string;
}

export interface PreviewCluster {
  /** Starts (or adopts, or just locates) the session cluster; idempotent. */
  start(): Promise<PreviewEndpoints>;
  close(): Promise<void>;
}

/** A TaskManager held for one preview; `release()` retires it (it never runs another job). */
export interface Lease {
  /** The TaskManager the preview runs on (after `landed`, the one Flink chose). */
  readonly taskManagerId: string;
  /** From the call to `lease()` to the grant, queueing included. */
  readonly leaseMs: number;
  /**
   * The job was observed running on `taskManagerIds`: ends the exclusive submission
   * window. Throws when it landed on a TaskManager that is not fresh.
   */
  landed(taskManagerIds: readonly string[]): void;
  /** Retires the TaskManager; idempotent. */
  release(): Promise<void>;
}

export type TaskManagerState = 'starting' | 'idle' | 'leased' | 'retiring';

export interface PreviewPool {
  /** Makes the pool ready (cluster up, leftovers of an earlier gateway retired); once. */
  start(): Promise<void>;
  /**
   * Waits for a fresh TaskManager (reporting the queue position while it waits). The
   * caller holds the submission window until it calls `landed()` or `release()`.
   * Fails with QUOTA_EXCEEDED beyond `maxForAccount` leases, UNAVAILABLE when the wait
   * is too long or `signal` aborts.
   */
  lease(accountId: string, maxForAccount: number, onPosition?: (position: number) => void, signal?: AbortSignal): Promise<Lease>;
  /** TaskManagers by state and waiting previews (tests, benchmarks, logs). */
  stats(): Record<TaskManagerState, number> & { queued: number };
  /** Fails the waiters; running previews end as their TaskManagers go. */
  close(): Promise<void>;
}

/**
 * `Lease.landed()`: Flink placed the preview's job on a TaskManager that is not fresh (one
 * whose earlier preview ended by itself, freeing its slot, while this submission window
 * was open). The preview must not run there: the caller cancels the job and submits again
 * on a new lease.
 */
export class LandedOnUsedTaskManagerError extends Error {
  override readonly name = 'LandedOnUsedTaskManagerError';
  constructor(
    readonly leased: string,
    readonly landedOn: readonly string[],
    detail = '',
  ) {
    super(`The preview job landed on TaskManager ${landedOn.join(', ')} instead of the leased ${leased}${detail}`);
  }
}
