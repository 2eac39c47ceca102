import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Admin, Consumer, Producer, ProduceAcks, stringSerializers } from '@platformatic/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/platform/logger.js';
import { flinkDistribution } from '../../src/runtime/local/flink-distribution.js';
import { KafkaBroker } from '../../src/runtime/local/kafka-broker.js';
import { KafkaStreamStorage } from '../../src/streams/kafka-stream-storage.js';
import type { KafkaEndpoint, SaslCredentials, StreamAccess } from '../../src/streams/kafka-endpoint.js';
import { jobUserOf, previewGroupOf } from '../../src/streams/kafka-principals.js';

/**
 * The platform broker's tenancy against a real Kafka: who may read and write which topic,
 * checked with raw clients that hold a job's, a preview's, the wrong or no credentials.
 */
const logger = createLogger(process.env.WEIR_TEST_LOG_LEVEL ?? 'silent');
const distribution = flinkDistribution({ logger });

const A = '01900000-0000-7000-8000-00000000000a';
const B = '01900000-0000-7000-8000-00000000000b';
let dataDir: string;
let broker: KafkaBroker;
let storage: KafkaStreamStorage;
let endpoint: KafkaEndpoint;
let topicA: string;
let topicB: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'weir-tenancy-'));
  broker = new KafkaBroker({ dataDir, kafkaClasspath: async () => (await distribution()).kafkaClasspath, logger });
  storage = new KafkaStreamStorage({ broker, logger });
  endpoint = await broker.ensureStarted();
  topicA = storage.topicFor(A, '01900000-0000-7000-8000-0000000000a1');
  topicB = storage.topicFor(B, '01900000-0000-7000-8000-0000000000b1');
  await storage.publish(topicA, ['{"secret":"of A"}']);
  await storage.publish(topicB, ['{"mine":"B"}']);
}, 600_000);

afterAll(async () => {
  await storage?.close();
  await broker?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}, 120_000);

/** The credentials inside a StreamAccess, as a client would be configured with them. */
function credentialsOf(access: StreamAccess): SaslCredentials {
  const match = /username="([^"]*)" password="([^"]*)"/.exec(access.clientProperties['sasl.jaas.config'] ?? '');
  if (!match) throw new Error('no credentials in the access');
  return { mechanism: access.clientProperties['sasl.mechanism'] as SaslCredentials['mechanism'], username: match[1]!, password: match[2]! };
}

const common = (sasl: SaslCredentials | undefined) => ({
  bootstrapBrokers: [endpoint.bootstrapServers],
  connectTimeout: 2000,
  requestTimeout: 3000,
  retries: 0,
  ...(sasl ? { sasl: { mechanism: sasl.mechanism, username: sasl.username, password: sasl.password } } : {}),
});

/** Resolves with what the error said, or 'ok'. */
async function outcome(work: () => Promise<unknown>): Promise<string> {
  try {
    await work();
    return 'ok';
  } catch (error) {
    return explain(error);
  }
}

function explain(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const nested = (error as Error & { errors?: unknown[] }).errors ?? [];
  const cause = error.cause === undefined ? [] : [explain(error.cause)];
  return [error.message, ...nested.map(explain), ...cause].join(' | ');
}

async function produce(sasl: SaslCredentials | undefined, topic: string): Promise<string> {
  const producer = new Producer({ ...common(sasl), clientId: 'tenancy-test', serializers: stringSerializers, acks: ProduceAcks.ALL });
  try {
    return await outcome(() => producer.send({ messages: [{ topic, partition: 0, value: '{"from":"elsewhere"}' }] }));
  } finally {
    await producer.close().catch(() => undefined);
  }
}

async function read(sasl: SaslCredentials | undefined, topic: string): Promise<string> {
  const consumer = new Consumer({ ...common(sasl), clientId: 'tenancy-test', groupId: 'tenancy-test-unused' });
  try {
    return await outcome(() => consumer.listOffsets({ topics: [topic], timestamp: -2n }));
  } finally {
    await consumer.close().catch(() => undefined);
  }
}

const job = (accountId: string, id: string) => ({ accountId, id });
const DENIED = /TOPIC_AUTHORIZATION_FAILED|not authorized|authoriz/i;
const UNAUTHENTICATED = /SASL|authenticat|closed|ECONNRESET|timeout|timed out/i;

describe('the platform broker', { timeout: 120_000 }, () => {
  it('lets a job read and write its own account’s topics and nothing else', async () => {
    const jobB = credentialsOf(await storage.grantJob(job(B, '01900000-0000-7000-8000-0000000000f1')));
    expect(jobB.username).toBe(jobUserOf('01900000-0000-7000-8000-0000000000f1'));
    expect(await read(jobB, topicB)).toBe('ok');
    expect(await produce(jobB, topicB)).toBe('ok');
    expect(await read(jobB, topicA)).toMatch(DENIED);
    expect(await produce(jobB, topicA)).toMatch(DENIED);
    // Nor may it make topics, inside its prefix or out.
    const admin = new Admin({ ...common(jobB), clientId: 'tenancy-test' });
    try {
      expect(await outcome(() => admin.createTopics({ topics: [`weir.${B}.made-up`], partitions: 1, replicas: 1 }))).toMatch(DENIED);
    } finally {
      await admin.close();
    }
    // A's records are where they were, untouched.
    expect((await storage.read(topicA, { from: 'EARLIEST', limit: 10 })).map((r) => r.value)).toEqual(['{"secret":"of A"}']);
  });

  it('lets nobody in without credentials, or with the wrong ones', async () => {
    expect(await read(undefined, topicA)).toMatch(UNAUTHENTICATED);
    expect(await produce(undefined, topicA)).toMatch(UNAUTHENTICATED);
    const guess: SaslCredentials = { mechanism: 'PLAIN', username: endpoint.admin.username, password: 'guessed' };
    expect(await read(guess, topicA)).toMatch(UNAUTHENTICATED);
    const otherJob: SaslCredentials = { mechanism: 'SCRAM-SHA-512', username: jobUserOf('never-granted'), password: 'x' };
    expect(await read(otherJob, topicA)).toMatch(UNAUTHENTICATED);
  });

  it('gives each deployment a new password, and a revoked job none', async () => {
    const ref = job(A, '01900000-0000-7000-8000-0000000000f2');
    const first = credentialsOf(await storage.grantJob(ref));
    expect(await read(first, topicA)).toBe('ok');
    const second = credentialsOf(await storage.grantJob(ref));
    expect(second.password).not.toBe(first.password);
    expect(await read(second, topicA)).toBe('ok');
    expect(await read(first, topicA)).toMatch(UNAUTHENTICATED);
    await storage.revokeJob(ref);
    expect(await read(second, topicA)).toMatch(UNAUTHENTICATED);
    await storage.revokeJob(ref); // a second revocation is fine
  });

  it('lets previews read their account’s topics only, and write none', async () => {
    const preview = credentialsOf(await storage.grantPreview(A));
    expect(await read(preview, topicA)).toBe('ok');
    expect(await read(preview, topicB)).toMatch(DENIED);
    expect(await produce(preview, topicA)).toMatch(DENIED);
    expect(previewGroupOf(A)).toBe(`weir-preview-${A}`);
  });

  it('knows its own listeners, under any name of this machine', async () => {
    const port = endpoint.bootstrapServers.split(':')[1];
    expect(await storage.platformServerNamed(`kafka.example.com:9092,localhost:${port}`)).toBe(`localhost:${port}`);
    expect(await storage.platformServerNamed(`127.0.0.2:${port}`)).toBe(`127.0.0.2:${port}`);
    expect(await storage.platformServerNamed('localhost:1')).toBeUndefined();
  });
});
