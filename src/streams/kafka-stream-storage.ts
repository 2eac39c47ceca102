import {
  Admin,
  Consumer,
  FetchIsolationLevels,
  GenericError,
  IS_CONTROL,
  MultipleErrors,
  Producer,
  ProduceAcks,
  stringSerializers,
} from '@platformatic/kafka';
import type { Logger } from '../platform/logger.js';
import { clientOptions, type KafkaEndpoint, type StreamAccess } from './kafka-endpoint.js';
import { KafkaPrincipals, type JobPrincipalRef } from './kafka-principals.js';
import { committedBatches } from './kafka-transactions.js';
import { platformServerNamed } from './platform-servers.js';
import { StreamStorageError, type ReadOptions, type StoredRecord, type StreamStorage } from './stream-storage.js';
import { SECOND } from '../platform/time.js';

/**
 * Streams as topics of the local Kafka broker: `weir.<accountUuid>.<streamUuid>`, one
 * partition each (one partition keeps a stream's order total, and a publish one batch).
 * The broker starts on the first call that needs it. The gateway is the cluster's admin;
 * jobs and previews get principals of their own (KafkaPrincipals).
 */
export interface KafkaStreamStorageOptions {
  readonly broker: {
    /** Returns the same object for as long as the broker's address and admin stay the same. */
    ensureStarted(): Promise<KafkaEndpoint>;
    /** Every `host:port` the platform's brokers listen on, for platformServerNamed. */
    listenerAddresses(): Promise<readonly string[]>;
  };
  readonly logger: Logger;
  /** Bound on one `read`, start-up of an idle broker excluded. */
  readonly readTimeoutMs?: number;
  /** Bound on one `publish` (and topic creation), start-up of an idle broker excluded. */
  readonly writeTimeoutMs?: number;
}

interface Clients {
  readonly endpoint: KafkaEndpoint;
  readonly admin: Admin;
  readonly producer: Producer<string, string, string, string>;
  /** Used for group-less reads only (listOffsets, fetch): it never joins its group. */
  readonly reader: Consumer;
}

const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;
const FETCH_MAX_BYTES = 8 * 1024 * 1024;

export class KafkaStreamStorage implements StreamStorage {
  readonly #options: KafkaStreamStorageOptions;
  readonly #log: Logger;
  #clients: Clients | undefined;
  #connecting: Promise<Clients> | undefined;
  /** Topics known to exist, or being created (concurrent callers share one creation). */
  readonly #topics = new Map<string, Promise<void>>();
  #closed = false;
  readonly #principals: KafkaPrincipals;

  constructor(options: KafkaStreamStorageOptions) {
    this.#options = options;
    this.#log = options.logger.child({ component: 'kafka-stream-storage' });
    this.#principals = new KafkaPrincipals({ endpoint: async () => (await this.#connect()).endpoint, logger: options.logger });
  }

  topicFor(accountId: string, streamId: string): string {
    const topic = `weir.${accountId}.${streamId}`.toLowerCase();
    if (!TOPIC_NAME.test(topic)) throw new Error(`not a valid topic name: ${topic}`);
    return topic;
  }

  grantJob(job: JobPrincipalRef): Promise<StreamAccess> {
    return this.#principals.grantJob(job);
  }

  revokeJob(job: JobPrincipalRef): Promise<void> {
    return this.#principals.revokeJob(job);
  }

  grantPreview(accountId: string): Promise<StreamAccess> {
    return this.#principals.grantPreview(accountId);
  }

  async platformServerNamed(servers: string): Promise<string | undefined> {
    return platformServerNamed(servers, await this.#options.broker.listenerAddresses());
  }

  ensureTopic(topic: string): Promise<void> {
    let pending = this.#topics.get(topic);
    if (!pending) {
      pending = this.#createTopic(topic).catch((error: unknown) => {
        this.#topics.delete(topic);
        throw error;
      });
      this.#topics.set(topic, pending);
    }
    return pending;
  }

  async publish(topic: string, values: readonly string[], keys?: readonly (string | null)[]): Promise<void> {
    if (keys && keys.length !== values.length) {
      throw new Error(`publish: ${keys.length} keys for ${values.length} values`);
    }
    if (values.length === 0) return;
    await this.ensureTopic(topic);
    const { producer } = await this.#connect();
    // One topic, one partition: the client sends one Produce request carrying one record
    // batch, which the broker appends whole or not at all.
    const messages = values.map((value, index) => {
      const key = keys?.[index];
      return { topic, partition: 0, value, ...(key != null ? { key } : {}) };
    });
    await this.#bounded(producer.send({ messages, acks: ProduceAcks.ALL }), this.#writeTimeoutMs, `publishing to ${topic}`);
  }

  async read(topic: string, options: ReadOptions): Promise<StoredRecord[]> {
    const limit = Math.max(0, Math.floor(options.limit));
    if (limit === 0) return [];
    await this.ensureTopic(topic);
    const clients = await this.#connect();
    return this.#bounded(this.#readRange(clients, topic, options.from, limit), this.#readTimeoutMs, `reading ${topic}`);
  }

  async endOffset(topic: string): Promise<bigint> {
    await this.ensureTopic(topic);
    const { reader } = await this.#connect();
    const isolationLevel = FetchIsolationLevels.READ_COMMITTED;
    const offsets = await this.#bounded(reader.listOffsets({ topics: [topic], timestamp: -1n, isolationLevel }), this.#readTimeoutMs, `reading the end of ${topic}`);
    return offsets.get(topic)?.[0] ?? 0n;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const clients = this.#clients ?? (await this.#connecting?.catch(() => undefined));
    this.#clients = undefined;
    if (clients) await closeClients(clients);
    await this.#principals.close();
  }

  get #readTimeoutMs(): number {
    return this.#options.readTimeoutMs ?? 5 * SECOND;
  }

  get #writeTimeoutMs(): number {
    return this.#options.writeTimeoutMs ?? 15 * SECOND;
  }

  async #readRange(clients: Clients, topic: string, from: ReadOptions['from'], limit: number): Promise<StoredRecord[]> {
    const { reader } = clients;
    const isolationLevel = FetchIsolationLevels.READ_COMMITTED;
    const [earliest, latest] = await Promise.all([
      reader.listOffsets({ topics: [topic], timestamp: -2n, isolationLevel }),
      reader.listOffsets({ topics: [topic], timestamp: -1n, isolationLevel }),
    ]);
    const low = earliest.get(topic)?.[0] ?? 0n;
    const high = latest.get(topic)?.[0] ?? 0n;
    // Up to the last stable offset: records of open transactions are not shown.
    let next = from === 'EARLIEST' ? low : maxBigInt(low, high - BigInt(limit));
    const end = high;
    const records: StoredRecord[] = [];
    if (next >= end) return records;

    const metadata = await reader.metadata({ topics: [topic] });
    const partition = metadata.topics.get(topic)?.partitions[0];
    const topicId = metadata.topics.get(topic)?.id;
    if (!partition || !topicId) throw new StreamStorageError(`topic ${topic} has no partition 0`);
    while (next < end && records.length < limit) {
      const response = await reader.fetch({
        node: partition.leader,
        maxWaitTime: 0,
        minBytes: 1,
        maxBytes: FETCH_MAX_BYTES,
        isolationLevel,
        topics: [
          {
            topicId,
            partitions: [
              { partition: 0, currentLeaderEpoch: -1, fetchOffset: next, lastFetchedEpoch: -1, partitionMaxBytes: FETCH_MAX_BYTES },
            ],
          },
        ],
      });
      const data = response.responses[0]?.partitions[0];
      if (!data || data.errorCode !== 0) {
        throw new StreamStorageError(`fetching ${topic} at offset ${next} failed (Kafka error ${data?.errorCode ?? 'no data'})`);
      }
      const before = next;
      const fetched = data.records ?? [];
      for (const batch of committedBatches(fetched, data.abortedTransactions ?? [])) {
        const control = (batch.attributes & IS_CONTROL) !== 0;
        // Timestamp type bit: LogAppendTime batches carry the broker's time in maxTimestamp.
        const logAppendTime = (batch.attributes & 0b1000) !== 0;
        for (const record of batch.records) {
          const offset = batch.firstOffset + BigInt(record.offsetDelta);
          if (offset < next || offset >= end || records.length >= limit) continue;
          next = offset + 1n;
          if (control || record.value === null) continue;
          const timestamp = logAppendTime ? batch.maxTimestamp : batch.firstTimestamp + record.timestampDelta;
          records.push({
            partition: 0,
            offset: offset.toString(),
            timestamp: new Date(Number(timestamp)),
            key: record.key === null ? null : record.key.toString('utf8'),
            value: record.value.toString('utf8'),
          });
        }
      }
      // Unless the limit stopped it, the position moves past every batch fetched: past a
      // control batch, and past the batches dropped as aborted (or a transaction aborted
      // over more than one fetch would be fetched again and again).
      const last = fetched.at(-1);
      const fetchedEnd = last ? last.firstOffset + BigInt(last.lastOffsetDelta) + 1n : next;
      if (records.length < limit && fetchedEnd > next) next = fetchedEnd < end ? fetchedEnd : end;
      // Nothing readable below `end` (aborted or compacted away): stop rather than spin.
      if (next === before) break;
    }
    return records;
  }

  async #createTopic(topic: string): Promise<void> {
    if (!TOPIC_NAME.test(topic)) throw new Error(`not a valid topic name: ${topic}`);
    const { admin } = await this.#connect();
    const create = async () => {
      try {
        await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 });
        this.#log.info({ topic }, 'topic created');
      } catch (error) {
        if (!isTopicExists(error)) throw error;
      }
      // Created is not yet led: wait until the partition has a leader, or the first
      // produce or fetch races it.
      for (let attempt = 0; ; attempt += 1) {
        const metadata = await admin.metadata({ topics: [topic], forceUpdate: true });
        const leader = metadata.topics.get(topic)?.partitions[0]?.leader ?? -1;
        if (leader >= 0) return;
        await new Promise((resolveWait) => setTimeout(resolveWait, Math.min(20 * 2 ** attempt, 200)));
      }
    };
    await this.#bounded(create(), this.#writeTimeoutMs, `creating topic ${topic}`);
  }

  /** Clients for the broker's current address; the broker is started or adopted first. */
  async #connect(): Promise<Clients> {
    if (this.#closed) throw new StreamStorageError('the stream storage is closed');
    let endpoint: KafkaEndpoint;
    try {
      endpoint = await this.#options.broker.ensureStarted();
    } catch (error) {
      throw new StreamStorageError(`the Kafka broker is not available: ${(error as Error).message}`, { cause: error });
    }
    if (this.#clients?.endpoint === endpoint) return this.#clients;
    this.#connecting ??= (async () => {
      const previous = this.#clients;
      this.#clients = undefined;
      if (previous) await closeClients(previous);
      const clients = createClients(endpoint);
      this.#clients = clients;
      return clients;
    })().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #bounded<T>(work: Promise<T>, timeoutMs: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new StreamStorageError(`${what} took longer than ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([work, timeout]);
    } catch (error) {
      if (error instanceof StreamStorageError) throw error;
      if (GenericError.isGenericError(error as Error) || error instanceof MultipleErrors) {
        throw new StreamStorageError(`${what} failed: ${(error as Error).message}`, { cause: error });
      }
      throw error;
    } finally {
      clearTimeout(timer);
      // A lost race leaves the work running; its late failure is of no interest.
      work.catch(() => undefined);
    }
  }
}

function createClients(endpoint: KafkaEndpoint): Clients {
  const common = {
    ...clientOptions(endpoint),
    connectTimeout: 2 * SECOND,
    requestTimeout: 5 * SECOND,
    retries: 3,
    retryDelay: 100,
    autocreateTopics: false,
  };
  return {
    endpoint,
    admin: new Admin({ ...common, clientId: 'weir-admin' }),
    producer: new Producer({ ...common, clientId: 'weir-publish', serializers: stringSerializers, acks: ProduceAcks.ALL }),
    reader: new Consumer({ ...common, clientId: 'weir-read', groupId: 'weir-read-unused' }),
  };
}

async function closeClients(clients: Clients): Promise<void> {
  await Promise.allSettled([clients.admin.close(), clients.producer.close(), clients.reader.close()]);
}

function isTopicExists(error: unknown): boolean {
  if (error instanceof MultipleErrors) return error.findBy('apiId', 'TOPIC_ALREADY_EXISTS') !== null;
  if (error instanceof GenericError) return error.findBy('apiId', 'TOPIC_ALREADY_EXISTS') !== null;
  return false;
}

const maxBigInt = (a: bigint, b: bigint) => (a > b ? a : b);
