import type { StreamField, StreamKind } from '../streams/stream.table.js';
import type { ConnectionType, PropertyValue } from '../connections/connection.table.js';
import type { JobKind, TaskSize } from '../jobs/job.table.js';

/** A stream as a job sees it: enough to register it as a table. */
export interface StreamBinding {
  readonly id: string;
  readonly name: string;
  readonly kind: StreamKind;
  readonly fields: readonly StreamField[];
  readonly primaryKey: readonly string[];
}

export type JobProgram =
  | {
      readonly type: 'PIPELINE';
      readonly sql: string;
      readonly inputs: readonly StreamBinding[];
      readonly output: StreamBinding;
    }
  | {
      readonly type: 'CONNECTION';
      readonly connector: string;
      readonly connectionType: ConnectionType;
      readonly properties: Readonly<Record<string, PropertyValue>>;
      /** Handed to the runtime only; never logged, never returned over the API. */
      readonly secretProperties: Readonly<Record<string, PropertyValue>>;
      readonly stream: StreamBinding;
    };

export interface JobRef {
  readonly kind: JobKind;
  readonly id: string;
  readonly accountId: string;
}

/** Everything a runtime needs to run one job: its own Flink application cluster. */
export interface JobSpec extends JobRef {
  readonly name: string;
  /** Bumped on every change of what runs; a runtime re-deploys when it differs. */
  readonly specVersion: number;
  readonly taskSize: TaskSize;
  /** Parallelism of the job. */
  readonly taskCount: number;
  readonly program: JobProgram;
}

/** What a runtime reports of a job it holds. Stopped jobs are simply absent. */
/** FINISHED: a bounded job (e.g. datagen with number-of-rows) ran to its end. */
export type ObservedPhase = 'STARTING' | 'RUNNING' | 'RECOVERING' | 'FAILED' | 'FINISHED';

export interface ObservedJob extends JobRef {
  readonly specVersion: number;
  /**
   * null: the job is there but its state cannot be told right now (its process is up but
   * did not answer: busy, or dying after a kill). Nothing is recorded for it; the next
   * observation tells.
   */
  readonly phase: ObservedPhase | null;
  readonly reason: string | null;
}

/**
 * Where Flink processes live (local processes, Kubernetes objects). Every call is
 * idempotent so the reconciler can repeat it after any crash.
 */
export interface Runtime {
  readonly name: string;
  /** Makes the job run with this spec. A job already at this spec version is left alone. */
  apply(spec: JobSpec): Promise<void>;
  /** Stops the job and frees what it held (checkpoints excepted). Absent jobs are fine. */
  remove(ref: JobRef): Promise<void>;
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
   * account namespace's ResourceQuota). Throws an error with `code: 'QUOTA_EXCEEDED'`
   * and a readable message when it would not.
   */
  admit?(spec: JobSpec): Promise<void>;
}

/**
 * The runtime will never run this spec as it is (a permanent failure): the job is
 * marked FAILED with this message and not retried until its spec changes.
 */
export class RuntimeRejectedError extends Error {
  override readonly name = 'RuntimeRejectedError';
}
