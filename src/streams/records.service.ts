import type { Actor } from '../accounts/actor.js';
import { requireRole } from '../accounts/actor.js';
import { UnavailableError, ValidationError } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import { validateRecords } from './record-validation.js';
import type { StreamService } from './stream.service.js';
import { StreamStorageError, type RecordPosition, type StreamStorage } from './stream-storage.js';
import { parseStoredJson } from './stored-json.js';

export const DEFAULT_READ_LIMIT = 100;
export const MAX_READ_LIMIT = 1000;

export interface StreamRecordView {
  readonly offset: string;
  readonly partition: number;
  readonly timestamp: Date;
  /** The record as stored; numbers a double cannot hold exactly are strings. */
  readonly value: unknown;
}

export interface ReadRecordsInput {
  readonly from?: RecordPosition | null;
  readonly limit?: number | null;
}

/**
 * Records into and out of a stream's log, for clients that bring their own data and
 * for looking at what a pipeline wrote. `storage` is undefined when the gateway runs
 * no stream storage (WEIR_RUNTIME=none): then both operations are UNAVAILABLE.
 */
export class RecordsService {
  constructor(
    private readonly streams: StreamService,
    private readonly storage: StreamStorage | undefined,
    private readonly logger: Logger,
  ) {}

  /** Validates every record first; then writes them as one batch (all or none). */
  async publish(actor: Actor | null, streamId: string, records: readonly unknown[]): Promise<{ count: number }> {
    const a = requireRole(actor, 'MEMBER');
    // The stream first: an id of another account is NOT_FOUND whether or not storage runs.
    const stream = await this.streams.get(a, streamId);
    const storage = this.requireStorage();
    const values = validateRecords(stream.fields, records);
    if (values.length === 0) return { count: 0 };
    const keys = stream.kind === 'CHANGE' ? this.keysOf(stream.fields, stream.primary_key, records) : undefined;
    const topic = storage.topicFor(stream.account_id, stream.id);
    await this.guard(() => storage.publish(topic, values, keys), { accountId: a.accountId, streamId });
    this.logger.info({ accountId: a.accountId, streamId, count: values.length }, 'records published');
    return { count: values.length };
  }

  /** The first (EARLIEST) or last (LATEST) `limit` records, oldest first. */
  async read(actor: Actor | null, streamId: string, input: ReadRecordsInput = {}): Promise<StreamRecordView[]> {
    const a = requireRole(actor, 'VIEWER');
    const limit = input.limit ?? DEFAULT_READ_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_READ_LIMIT) {
      throw ValidationError.of(['limit'], `limit must be from 1 to ${MAX_READ_LIMIT}, got ${limit}`);
    }
    const stream = await this.streams.get(a, streamId);
    const storage = this.requireStorage();
    const topic = storage.topicFor(stream.account_id, stream.id);
    const stored = await this.guard(() => storage.read(topic, { from: input.from ?? 'EARLIEST', limit }), {
      accountId: a.accountId,
      streamId,
    });
    return stored.map((record) => ({
      offset: record.offset,
      partition: record.partition,
      timestamp: record.timestamp,
      value: parseOrRaw(record.value),
    }));
  }

  private requireStorage(): StreamStorage {
    if (!this.storage) {
      throw new UnavailableError(
        'This gateway has no stream storage (WEIR_RUNTIME=none), so records can be neither published nor read.',
      );
    }
    return this.storage;
  }

  /** CHANGE streams are upsert logs keyed by the primary key, as Flink's upsert-kafka writes them. */
  private keysOf(
    fields: readonly { name: string; type: string; nullable: boolean }[],
    primaryKey: readonly string[],
    records: readonly unknown[],
  ): string[] {
    const keyFields = primaryKey.map((name) => fields.find((field) => field.name === name)!);
    const keyRecords = records.map((record) =>
      Object.fromEntries(primaryKey.map((name) => [name, (record as Record<string, unknown>)[name]])),
    );
    return validateRecords(keyFields, keyRecords);
  }

  private async guard<T>(work: () => Promise<T>, scope: { accountId: string; streamId: string }): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (!(error instanceof StreamStorageError)) throw error;
      this.logger.error({ err: error, ...scope }, 'stream storage failed');
      throw new UnavailableError('The stream storage is not available right now; try again shortly.', { cause: error });
    }
  }
}

function parseOrRaw(text: string): unknown {
  try {
    return parseStoredJson(text);
  } catch {
    return text; // not JSON: written by something other than Weir or Flink's json format
  }
}
