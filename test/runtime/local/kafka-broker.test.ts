import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/platform/logger.js';
import { flinkDistribution } from '../../../src/runtime/local/flink-distribution.js';
import { KafkaBroker, KafkaBrokerError } from '../../../src/runtime/local/kafka-broker.js';
import { KafkaStreamStorage } from '../../../src/streams/kafka-stream-storage.js';
import { findMarkedProcesses, hasExited, residentBytes } from '../../../src/runtime/local/processes.js';
import { codes, startTestApp, type TestApp } from '../../helpers/app.js';

/**
 * The local Kafka broker and the stream storage over it, against a real Apache Kafka
 * 4.x (KRaft) started from the jars of scripts/flink-setup.sh. One broker serves the
 * whole file; every test leaves it running, afterAll stops it.
 */
const logger = createLogger(process.env.WEIR_TEST_LOG_LEVEL ?? 'silent');
const distribution = flinkDistribution({ logger });
const kafkaClasspath = async () => (await distribution()).kafkaClasspath;

let dataDir: string;
let broker: KafkaBroker;
let storage: KafkaStreamStorage;
const brokers: KafkaBroker[] = [];
const tempDirs: string[] = [];
const firstStart = { ms: 0, bootstrap: '' };

function newBroker(dir = dataDir, classpath = kafkaClasspath, host?: string): KafkaBroker {
  const b = new KafkaBroker({ dataDir: dir, kafkaClasspath: classpath, logger, host });
  brokers.push(b);
  return b;
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'weir-kafka-'));
  tempDirs.push(dir);
  return dir;
}

beforeAll(async () => {
  await kafkaClasspath(); // resolve the jars (Maven) outside the timings below
  dataDir = await tempDir();
  broker = newBroker();
  storage = new KafkaStreamStorage({ broker, logger });
}, 600_000);

afterAll(async () => {
  await storage?.close();
  for (const b of brokers) await b.stop();
  for (const dir of tempDirs) await rm(dir, { recursive: true, force: true });
}, 120_000);

describe('KafkaBroker', { timeout: 180_000 }, () => {
  it('starts nothing until first use, then one broker for concurrent callers', async () => {
    expect(broker.pid()).toBeUndefined();
    expect(await findMarkedProcesses(broker.marker)).toEqual([]);

    const started = Date.now();
    const answers = await Promise.all([broker.ensureStarted(), broker.ensureStarted(), storage.ensureTopic('first-use')]);
    firstStart.ms = Date.now() - started;
    const endpoint = answers[0];
    firstStart.bootstrap = endpoint.bootstrapServers;

    expect(answers[1]).toBe(endpoint);
    expect(endpoint.bootstrapServers).toMatch(/^127\.0\.0\.1:\d+$/);
    const running = await findMarkedProcesses(broker.marker);
    expect(running.map((p) => p.pid)).toEqual([broker.pid()]);
    const port = (await readFile(join(dataDir, 'kafka', 'port'), 'utf8')).trim();
    expect(endpoint.bootstrapServers).toBe(`127.0.0.1:${port}`);
    expect(await broker.listenerAddresses()).toContain(endpoint.bootstrapServers);
    // Already running: answered without another start.
    expect(await broker.ensureStarted()).toBe(endpoint);
    expect((await findMarkedProcesses(broker.marker)).length).toBe(1);

    const rss = (await residentBytes(broker.pid()!))!;
    logger.info({ startMs: firstStart.ms, rssMb: Math.round(rss / 2 ** 20) }, 'broker started');
    expect(rss).toBeLessThan(512 * 2 ** 20);
  });

  it('fails with a clear error carrying the log tail when the broker cannot start', async () => {
    const bad = newBroker(await tempDir(), async () => '/nonexistent/kafka.jar');
    const error = await bad.ensureStarted().then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(KafkaBrokerError);
    expect((error as Error).message).toMatch(/formatting the Kafka storage failed \(exit 1\):\n.*(kafka\.tools\.StorageTool|main class)/s);
    expect(bad.pid()).toBeUndefined();
    expect(await findMarkedProcesses(bad.marker)).toEqual([]);
  });
});

describe('KafkaStreamStorage', { timeout: 120_000 }, () => {
  const accountId = '01900000-0000-7000-8000-000000000001';

  it('names a topic per account and stream', () => {
    expect(storage.topicFor(accountId, '01900000-0000-7000-8000-0000000000aa')).toBe(
      'weir.01900000-0000-7000-8000-000000000001.01900000-0000-7000-8000-0000000000aa',
    );
  });

  it('creates topics idempotently, also concurrently', async () => {
    const topic = storage.topicFor(accountId, 'create-twice');
    await Promise.all([storage.ensureTopic(topic), storage.ensureTopic(topic)]);
    await storage.ensureTopic(topic);
    // A second storage (another gateway) finds it already there.
    const other = new KafkaStreamStorage({ broker, logger });
    await other.ensureTopic(topic);
    await other.close();
    expect(await storage.read(topic, { from: 'EARLIEST', limit: 10 })).toEqual([]);
  });

  it('publishes a batch and reads it from the earliest or the latest end', async () => {
    const topic = storage.topicFor(accountId, 'publish-read');
    const before = Date.now();
    await storage.publish(
      topic,
      [0, 1, 2, 3, 4].map((i) => JSON.stringify({ i })),
      ['k0', null, 'k2', null, 'k4'],
    );
    await storage.publish(topic, []); // nothing to write
    await storage.publish(topic, ['{"i":5}']);

    const earliest = await storage.read(topic, { from: 'EARLIEST', limit: 3 });
    expect(earliest.map((r) => [r.partition, r.offset, r.key, r.value])).toEqual([
      [0, '0', 'k0', '{"i":0}'],
      [0, '1', null, '{"i":1}'],
      [0, '2', 'k2', '{"i":2}'],
    ]);
    for (const record of earliest) {
      expect(record.timestamp.getTime()).toBeGreaterThanOrEqual(before - 1000);
      expect(record.timestamp.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
    }
    const latest = await storage.read(topic, { from: 'LATEST', limit: 2 });
    expect(latest.map((r) => r.value)).toEqual(['{"i":4}', '{"i":5}']);
    expect((await storage.read(topic, { from: 'LATEST', limit: 100 })).map((r) => r.offset)).toEqual(['0', '1', '2', '3', '4', '5']);
    expect(await storage.read(topic, { from: 'EARLIEST', limit: 0 })).toEqual([]);
  });

  it('reads a thousand records of a batch quickly', async () => {
    const topic = storage.topicFor(accountId, 'thousand');
    const values = Array.from({ length: 1000 }, (_, i) => JSON.stringify({ i, pad: 'x'.repeat(900) }));
    await storage.publish(topic, values);
    const started = Date.now();
    const all = await storage.read(topic, { from: 'EARLIEST', limit: 1000 });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(all).toHaveLength(1000);
    expect(all[999]!.value).toBe(values[999]);
    expect((await storage.read(topic, { from: 'LATEST', limit: 1 }))[0]!.offset).toBe('999');
  });
});

describe('records over the API, on the real broker', { timeout: 120_000 }, () => {
  let t: TestApp;
  let key: string;

  beforeAll(async () => {
    t = await startTestApp({ storage });
    key = (await t.signUp('records')).key;
  });

  afterAll(async () => {
    await t?.close();
  });

  async function createStream(input: Record<string, unknown>, k = key): Promise<string> {
    const result = await t.gql('mutation ($input: CreateStreamInput!) { createStream(input: $input) { id } }', { input }, { key: k });
    expect(result.errors).toBeUndefined();
    return result.data!.createStream.id as string;
  }

  const publish = (streamId: string, records: unknown[], k = key) =>
    t.gql('mutation ($id: ID!, $records: [JSON!]!) { publishRecords(streamId: $id, records: $records) { count } }', { id: streamId, records }, { key: k });
  const read = (streamId: string, from = 'EARLIEST', limit = 100, k = key) =>
    t.gql(
      'query ($id: ID!, $from: RecordPosition, $limit: Int) { streamRecords(streamId: $id, from: $from, limit: $limit) { offset partition timestamp value } }',
      { id: streamId, from, limit },
      { key: k },
    );

  const orders = {
    name: 'orders',
    kind: 'APPEND',
    fields: [
      { name: 'order_id', type: 'BIGINT', nullable: false },
      { name: 'customer', type: 'STRING' },
      { name: 'amount', type: 'DECIMAL(10, 2)' },
      { name: 'at', type: 'TIMESTAMP(3)' },
    ],
  };

  it('writes none of a batch with a bad record, naming the first bad one', async () => {
    const id = await createStream(orders);
    const records = [0, 1, 2, 3, 4].map((i) => ({ order_id: i, amount: i === 3 ? 1.234 : '1.50' }));
    records[4] = { order_id: 4, amount: 'nope' };
    const rejected = await publish(id, records);
    expect(codes(rejected)).toEqual(['VALIDATION']);
    expect(rejected.errors![0]!.extensions).toMatchObject({
      field: ['records', 3, 'amount'],
      problems: [{ path: ['records', 3, 'amount'], message: 'record 3, field amount: DECIMAL(10, 2) allows 2 decimals, got 1.234' }],
    });
    const after = await read(id);
    expect(after.errors).toBeUndefined();
    expect(after.data!.streamRecords).toEqual([]);
  });

  it('publishes and reads back values in Flink’s json form, big numbers kept exact', async () => {
    const id = await createStream({ ...orders, name: 'orders2' });
    const published = await publish(id, [
      { order_id: 1, customer: 'Ann', amount: 12.5, at: '2024-05-01T12:30:00' },
      { order_id: '9223372036854775807', amount: '99999999.99' },
    ]);
    expect(published.errors).toBeUndefined();
    expect(published.data!.publishRecords).toEqual({ count: 2 });

    const earliest = await read(id);
    expect(earliest.errors).toBeUndefined();
    expect(earliest.data!.streamRecords).toMatchObject([
      { offset: '0', partition: 0, value: { order_id: 1, customer: 'Ann', amount: 12.5, at: '2024-05-01 12:30:00.000' } },
      { offset: '1', partition: 0, value: { order_id: '9223372036854775807', customer: null, amount: 99999999.99, at: null } },
    ]);
    expect(new Date(earliest.data!.streamRecords[0].timestamp).getTime()).toBeGreaterThan(Date.now() - 60_000);
    const latest = await read(id, 'LATEST', 1);
    expect(latest.data!.streamRecords.map((r: { offset: string }) => r.offset)).toEqual(['1']);
  });

  it('keys CHANGE streams by their primary key, as upsert-kafka does', async () => {
    const id = await createStream({
      name: 'users',
      kind: 'CHANGE',
      fields: [
        { name: 'name', type: 'STRING' },
        { name: 'id', type: 'BIGINT' },
      ],
      primaryKey: ['id'],
    });
    expect((await publish(id, [{ id: 7, name: 'x' }])).errors).toBeUndefined();
    const streamUuid = Buffer.from(id, 'base64').toString('utf8').split(':')[1]!;
    const topics = await findTopicRecords(streamUuid);
    expect(topics.map((r) => [r.key, r.value])).toEqual([['{"id":7}', '{"name":"x","id":7}']]);
  });

  /** The stored records of a stream of the test account, read straight from the storage. */
  async function findTopicRecords(streamUuid: string) {
    const me = await t.app.authenticate(`Bearer ${key}`);
    return storage.read(storage.topicFor(me!.accountId, streamUuid), { from: 'EARLIEST', limit: 10 });
  }

  it('answers NOT_FOUND for another account’s stream, FORBIDDEN for a VIEWER publishing', async () => {
    const id = await createStream({ ...orders, name: 'mine' });
    const other = await t.signUp('other');
    expect(codes(await publish(id, [{ order_id: 1 }], other.key))).toEqual(['NOT_FOUND']);
    expect(codes(await read(id, 'EARLIEST', 10, other.key))).toEqual(['NOT_FOUND']);

    const viewer = await t.gql('mutation { createApiKey(input: { name: "v", role: VIEWER }) { secret } }', {}, { key });
    const viewerKey = viewer.data!.createApiKey.secret as string;
    expect(codes(await publish(id, [{ order_id: 1 }], viewerKey))).toEqual(['FORBIDDEN']);
    expect((await read(id, 'EARLIEST', 10, viewerKey)).errors).toBeUndefined();
    expect(codes(await read(id, 'EARLIEST', 1001))).toEqual(['VALIDATION']);
  });
});

describe('records without stream storage', () => {
  it('answers UNAVAILABLE for publishRecords and streamRecords', async () => {
    const t = await startTestApp();
    try {
      const { key } = await t.signUp();
      const created = await t.gql('mutation { createStream(input: { name: "s", kind: APPEND, fields: [{ name: "a", type: "INT" }] }) { id } }', {}, { key });
      const id = created.data!.createStream.id as string;
      const published = await t.gql('mutation ($id: ID!) { publishRecords(streamId: $id, records: [{ a: 1 }]) { count } }', { id }, { key });
      expect(codes(published)).toEqual(['UNAVAILABLE']);
      expect(published.errors![0]!.message).toMatch(/no stream storage \(WEIR_RUNTIME=none\)/);
      const read = await t.gql('query ($id: ID!) { streamRecords(streamId: $id) { offset } }', { id }, { key });
      expect(codes(read)).toEqual(['UNAVAILABLE']);
    } finally {
      await t.close();
    }
  });
});

describe('KafkaBroker across gateway restarts', { timeout: 180_000 }, () => {
  it('a second KafkaBroker on the same data dir adopts the running process', async () => {
    const pid = broker.pid()!;
    const successor = newBroker();
    const started = Date.now();
    expect((await successor.ensureStarted()).bootstrapServers).toBe(firstStart.bootstrap);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(successor.pid()).toBe(pid);
    expect((await findMarkedProcesses(successor.marker)).map((p) => p.pid)).toEqual([pid]);
    // The data is the same broker's.
    const next = new KafkaStreamStorage({ broker: successor, logger });
    try {
      const records = await next.read(next.topicFor('01900000-0000-7000-8000-000000000001', 'publish-read'), { from: 'EARLIEST', limit: 1 });
      expect(records.map((r) => r.value)).toEqual(['{"i":0}']);
    } finally {
      await next.close();
    }
  });

  it('stops gracefully, leaving no process; starts again on the same port with its data', async () => {
    const [running] = await findMarkedProcesses(broker.marker);
    expect(running?.pid).toBe(broker.pid());
    await broker.stop();
    expect(await hasExited(running!)).toBe(true); // stop() returns once it exited; it may not be reaped yet
    expect(await findMarkedProcesses(broker.marker)).toEqual([]);
    expect(broker.pid()).toBeUndefined();

    // Next use starts it again: same port (running Flink jobs keep their bootstrap servers), same data.
    const records = await storage.read(storage.topicFor('01900000-0000-7000-8000-000000000001', 'publish-read'), {
      from: 'LATEST',
      limit: 1,
    });
    expect(records.map((r) => r.value)).toEqual(['{"i":5}']);
    expect((await broker.ensureStarted()).bootstrapServers).toBe(firstStart.bootstrap);
    expect(broker.pid()).not.toBe(running!.pid);
  });

  it('asked for another host, replaces the running broker with one that listens and advertises only there', async () => {
    const before = broker.pid();
    const port = Number(firstStart.bootstrap.split(':')[1]);
    // 127.0.0.2 is loopback too, yet another address: what a node IP is for pods.
    const moved = newBroker(dataDir, kafkaClasspath, '127.0.0.2');
    expect((await moved.ensureStarted()).bootstrapServers).toBe(`127.0.0.2:${port}`);
    expect(moved.pid()).not.toBe(before);
    expect(await findMarkedProcesses(moved.marker)).toHaveLength(1);
    await expect(connects('127.0.0.1', port)).resolves.toBe(false);
    await expect(connects('127.0.0.2', port)).resolves.toBe(true);

    const next = new KafkaStreamStorage({ broker: moved, logger });
    try {
      const records = await next.read(next.topicFor('01900000-0000-7000-8000-000000000001', 'publish-read'), { from: 'LATEST', limit: 1 });
      expect(records.map((r) => r.value)).toEqual(['{"i":5}']); // the metadata it advertises names the new host
    } finally {
      await next.close();
    }
  });
});

function connects(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
