import type { StreamAccess } from './kafka-endpoint.js';

/**
 * Where a stream's records live: one log per stream (a Kafka topic in the local runtime),
 * created on the stream's first use. Values are JSON texts in the form Flink's `json`
 * format reads (see record-validation.ts); keys, for CHANGE streams, likewise.
 */
export type RecordPosition = 'EARLIEST' | 'LATEST';

export interface StoredRecord {
  readonly partition: number;
  /** A 64-bit offset, as a decimal string. */
  readonly offset: string;
  readonly timestamp: Date;
  readonly key: string | null;
  readonly value: string;
}

export interface ReadOptions {
  /** EARLIEST: the first `limit` records; LATEST: the last `limit` records. Oldest first either way. */
  readonly from: RecordPosition;
  readonly limit: number;
}

export interface StreamStorage {
  /** The log of one stream; stable for the stream's lifetime. */
  topicFor(accountId: string, streamId: string): string;
  /** Creates the log if it does not exist yet; idempotent. */
  ensureTopic(topic: string): Promise<void>;
  /**
   * Appends the records as one write: either all of them are appended or none is.
   * `keys`, when given, has one entry per value.
   */
  publish(topic: string, values: readonly string[], keys?: readonly (string | null)[]): Promise<void>;
  /**
   * The offset the next committed record of the log will have: where a reader that starts
   * now at read_committed begins with what is new (the last stable offset). Creates the log
   * if needed.
   */
  endOffset(topic: string): Promise<bigint>;
  /** Reads without waiting for new records; bounded by a short timeout. */
  read(topic: string, options: ReadOptions): Promise<StoredRecord[]>;
  /**
   * Credentials for one job, good for its account's streams only (and its own consumer
   * group and transactional ids). A new password on every call: call it on each
   * deployment. Starts the broker if needed.
   */
  grantJob(job: { readonly accountId: string; readonly id: string }): Promise<StreamAccess>;
  /** Takes the job's credentials away; fine when it has none. */
  revokeJob(job: { readonly accountId: string; readonly id: string }): Promise<void>;
  /** Read-only credentials for the account's previews. */
  grantPreview(accountId: string): Promise<StreamAccess>;
  /** The first of `servers` (a `bootstrap.servers` list) that is one of the platform's own brokers. */
  platformServerNamed(servers: string): Promise<string | undefined>;
  close(): Promise<void>;
}

/** The storage could not do what was asked (its broker did not start, or did not answer in time). */
export class StreamStorageError extends Error {
  override readonly name = 'StreamStorageError';
}
