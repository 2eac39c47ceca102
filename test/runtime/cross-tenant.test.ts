import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Consumer, Producer, ProduceAcks, stringSerializers } from '@platformatic/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertConnection } from '../../src/connections/connection.repository.js';
import { decodeId } from '../../src/graphql/global-id.js';
import { globalId, newId } from '../../src/platform/ids.js';
import { codes } from '../helpers/app.js';
import { startLocalApp, type LocalTestApp } from '../helpers/local.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * The cross-tenant attacks of issue 9, through the API on the real local runtime: account
 * B goes after account A's stream topic with kafka connections, with a job's stolen
 * credentials in a raw client, and with a connection that slipped past validation.
 */
let t: LocalTestApp;
let a: { key: string; accountUuid: string };
let b: { key: string; accountUuid: string };
let topicA: string;
let brokerPort: string;

const SLOW = 420_000;

async function ok(key: string, query: string, variables: Record<string, unknown> = {}) {
  const result = await t.gql(query, variables, { key });
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  return result.data!;
}

const createStream = async (key: string, name: string) =>
  (await ok(key, `mutation { createStream(input: { name: "${name}", kind: APPEND, fields: [{ name: "id", type: "BIGINT" }, { name: "note", type: "STRING" }] }) { id } }`))
    .createStream.id as string;

const recordsOf = async (key: string, streamId: string) =>
  (await ok(key, 'query ($id: ID!) { streamRecords(streamId: $id, from: EARLIEST, limit: 100) { value } }', { id: streamId })).streamRecords.map(
    (r: { value: unknown }) => r.value,
  );

const stateOf = async (key: string, kind: 'pipeline' | 'connection', id: string) =>
  (await ok(key, `query ($id: ID!) { ${kind}(id: $id) { actualState actualReason } }`, { id }))[kind] as {
    actualState: string;
    actualReason: string | null;
  };

const until = (key: string, kind: 'pipeline' | 'connection', id: string, state: string) =>
  waitFor(`${kind} ${state}`, async () => ((await stateOf(key, kind, id)).actualState === state ? true : undefined), 300_000);

let streamA: string;
let streamB: string;
const A_RECORDS = [{ id: 1, note: 'of A' }, { id: 2, note: 'also of A' }];

beforeAll(async () => {
  t = await startLocalApp();
  a = await t.signUp('A');
  b = await t.signUp('B');
  streamA = await createStream(a.key, 'orders');
  streamB = await createStream(b.key, 'loot');
  await ok(a.key, 'mutation ($id: ID!, $r: [JSON!]!) { publishRecords(streamId: $id, records: $r) { count } }', { id: streamA, r: A_RECORDS });
  topicA = t.parts.storage!.topicFor(a.accountUuid, decodeId(streamA, 'Stream'));
  brokerPort = (await readFile(join(t.dataDir, 'local', 'kafka', 'port'), 'utf8')).trim();
}, 600_000);

afterAll(async () => {
  await t?.close();
}, 120_000);

describe('account B against account A', { timeout: SLOW }, () => {
  it('cannot make a kafka connection to the platform’s brokers, nor name a topic list', async () => {
    for (const type of ['SOURCE', 'SINK']) {
      for (const servers of [`127.0.0.1:${brokerPort}`, `localhost:${brokerPort}`, `kafka.example.com:9092,[::1]:${brokerPort}`]) {
        const result = await t.gql(
          'mutation ($input: CreateConnectionInput!) { createConnection(input: $input) { id } }',
          { input: { name: 'grab', connector: 'kafka', type, streamId: streamB, properties: { topic: topicA, 'properties.bootstrap.servers': servers } } },
          { key: b.key },
        );
        expect(codes(result), `${type} ${servers}`).toEqual(['VALIDATION']);
        expect(result.errors![0]!.extensions!.field).toEqual(['input', 'properties', 'properties.bootstrap.servers']);
        expect(result.errors![0]!.message).toMatch(/platform's own Kafka/);
      }
    }
    const list = await t.gql(
      'mutation ($input: CreateConnectionInput!) { createConnection(input: $input) { id } }',
      { input: { name: 'grab', connector: 'kafka', type: 'SOURCE', streamId: streamB, properties: { topic: `${topicA};other`, 'properties.bootstrap.servers': 'kafka.example.com:9092' } } },
      { key: b.key },
    );
    expect(codes(list)).toEqual(['VALIDATION']);
    expect(list.errors![0]!.extensions!.field).toEqual(['input', 'properties', 'topic']);
    expect((await ok(b.key, '{ connections { edges { node { id } } } }')).connections.edges).toEqual([]);
  });

  it('cannot read or write A’s topic with its own job’s credentials, raw or from a Flink job, and A’s records stay A’s', async () => {
    // B's own pipeline runs with credentials of its own; B is assumed to have got hold of them.
    const out = await createStream(b.key, 'copy');
    const pipeline = (await ok(b.key, 'mutation { createPipeline(input: { name: "copier", sql: "INSERT INTO copy SELECT * FROM loot" }) { id } }')).createPipeline
      .id as string;
    await ok(b.key, 'mutation ($id: ID!) { activatePipeline(id: $id) { id } }', { id: pipeline });
    await until(b.key, 'pipeline', pipeline, 'RUNNING');
    const spec = JSON.parse(await readFile(join(t.dataDir, 'local', 'jobs', decodeId(pipeline, 'Pipeline'), 'runner-spec.json'), 'utf8')) as { statements: string[] };
    const [, username, password] = /username="([^"]+)" password="([^"]+)"/.exec(spec.statements[0]!)!;
    const sasl = { mechanism: 'SCRAM-SHA-512' as const, username: username!, password: password! };
    const common = { bootstrapBrokers: [`127.0.0.1:${brokerPort}`], sasl, connectTimeout: 2000, requestTimeout: 3000, retries: 0, clientId: 'thief' };

    const consumer = new Consumer({ ...common, groupId: 'thief' });
    const producer = new Producer({ ...common, serializers: stringSerializers, acks: ProduceAcks.ALL });
    try {
      const own = t.parts.storage!.topicFor(b.accountUuid, decodeId(streamB, 'Stream'));
      expect(await consumer.listOffsets({ topics: [own], timestamp: -2n })).toBeInstanceOf(Map); // the credentials work…
      const read = await consumer.listOffsets({ topics: [topicA], timestamp: -2n }).then(() => 'read', (e: Error) => explain(e));
      expect(read).toMatch(/TOPIC_AUTHORIZATION_FAILED|authoriz/i); // …but not on A's topic
      const wrote = await producer.send({ messages: [{ topic: topicA, partition: 0, value: '{"id":666,"note":"from B"}' }] }).then(() => 'wrote', (e: Error) => explain(e));
      expect(wrote).toMatch(/TOPIC_AUTHORIZATION_FAILED|authoriz/i);
    } finally {
      await consumer.close().catch(() => undefined);
      await producer.close().catch(() => undefined);
    }

    // A connection that got past validation (as if the checks had a hole), reading A's
    // topic from the platform broker with those credentials: Flink is refused, the job FAILS.
    const smuggled = await insertConnection(t.database.db, {
      id: newId(),
      account_id: b.accountUuid,
      name: 'smuggled',
      connector: 'kafka',
      type: 'SOURCE',
      stream_id: decodeId(streamB, 'Stream'),
      properties: {
        topic: topicA,
        'properties.bootstrap.servers': `127.0.0.1:${brokerPort}`,
        'properties.security.protocol': 'SASL_PLAINTEXT',
        'properties.sasl.mechanism': 'SCRAM-SHA-512',
        'sasl.username': username!,
        'properties.group.id': `weir-${decodeId(pipeline, 'Pipeline')}`,
      },
      secret_properties: { 'sasl.password': password! },
      task_size: 'S',
      task_count: 1,
      delivery_guarantee: 'EXACTLY_ONCE',
      checkpoint_interval_ms: null,
    });
    const smuggledId = globalId('Connection', smuggled.id);
    await ok(b.key, 'mutation ($id: ID!) { activateConnection(id: $id) { id } }', { id: smuggledId });
    await until(b.key, 'connection', smuggledId, 'FAILED');
    expect((await stateOf(b.key, 'connection', smuggledId)).actualReason).toMatch(/authoriz/i);

    expect(await recordsOf(b.key, streamB)).toEqual([]);
    expect(await recordsOf(b.key, out)).toEqual([]);
    expect(await recordsOf(a.key, streamA)).toEqual(A_RECORDS);
    await ok(b.key, 'mutation ($id: ID!) { deactivateConnection(id: $id) { id } }', { id: smuggledId });
    await ok(b.key, 'mutation ($id: ID!) { deactivatePipeline(id: $id) { id } }', { id: pipeline });
    await until(b.key, 'pipeline', pipeline, 'STOPPED');
    await until(b.key, 'connection', smuggledId, 'STOPPED');
  });
});

function explain(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const nested = (error as Error & { errors?: unknown[] }).errors ?? [];
  return [error.message, ...nested.map(explain), ...(error.cause === undefined ? [] : [explain(error.cause)])].join(' | ');
}
