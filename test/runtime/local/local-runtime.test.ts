import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { decodeId } from '../../../src/graphql/global-id.js';
import { processesOfScope } from '../../../src/runtime/local/processes.js';
import { latestCheckpoint } from '../../../src/runtime/local/state-files.js';
import { codes } from '../../helpers/app.js';
import { readCommittedWithKafkaConsumer, startExternalKafka } from '../../helpers/kafka.js';
import { startLocalApp, type LocalTestApp } from '../../helpers/local.js';
import { waitFor } from '../../helpers/wait-for.js';

/**
 * The local runtime against real Flink and Kafka processes. Slow by nature (each job is
 * a JVM): every wait is for a condition, bounded generously for a loaded 2-core machine.
 */
let t: LocalTestApp;
let key: string;
let accountUuid: string;
/** Gateways replaced by a successor: their database is closed last. */
const predecessors: LocalTestApp[] = [];

async function ok(query: string, variables: Record<string, unknown> = {}, k = key) {
  const result = await t.gql(query, variables, { key: k });
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  return result.data!;
}

async function stream(name: string, fields: string) {
  const data = await ok(`mutation { createStream(input: { name: "${name}", kind: APPEND, fields: [${fields}] }) { id } }`);
  return data.createStream.id as string;
}

async function datagen(name: string, streamId: string, properties: Record<string, unknown>, deliveryGuarantee = 'EXACTLY_ONCE') {
  const data = await ok(
    'mutation ($input: CreateConnectionInput!) { createConnection(input: $input) { id } }',
    { input: { name, connector: 'datagen', type: 'SOURCE', streamId, properties, deliveryGuarantee } },
  );
  return data.createConnection.id as string;
}

async function pipeline(name: string, sql: string, deliveryGuarantee = 'EXACTLY_ONCE') {
  const data = await ok('mutation ($input: CreatePipelineInput!) { createPipeline(input: $input) { id } }', {
    input: { name, sql, deliveryGuarantee },
  });
  return data.createPipeline.id as string;
}

async function records(streamId: string, limit = 1000): Promise<Record<string, any>[]> {
  const data = await ok('query ($id: ID!, $limit: Int) { streamRecords(streamId: $id, from: EARLIEST, limit: $limit) { value } }', {
    id: streamId,
    limit,
  });
  return data.streamRecords.map((r: { value: Record<string, any> }) => r.value);
}

async function jobState(kind: 'pipeline' | 'connection', id: string) {
  const data = await ok(`query ($id: ID!) { ${kind}(id: $id) { actualState actualReason history { edges { node { state reason } } } } }`, {
    id,
  });
  return data[kind] as {
    actualState: string;
    actualReason: string | null;
    history: { edges: { node: { state: string; reason: string | null } }[] };
  };
}

const until = (kind: 'pipeline' | 'connection', id: string, state: string, timeoutMs = 90_000) =>
  waitFor(`${kind} ${state}`, async () => {
    const s = await jobState(kind, id);
    return s.actualState === state ? s : undefined;
  }, timeoutMs);

const activate = (kind: 'Pipeline' | 'Connection', id: string) => ok(`mutation ($id: ID!) { activate${kind}(id: $id) { id } }`, { id });
const deactivate = (kind: 'Pipeline' | 'Connection', id: string) => ok(`mutation ($id: ID!) { deactivate${kind}(id: $id) { id } }`, { id });

const reasons = (s: Awaited<ReturnType<typeof jobState>>) => s.history.edges.map((e) => e.node.reason);

/** The job RUNNING in exactly one process, not `oldPid`. */
const runningInNewProcess = (kind: 'pipeline' | 'connection', id: string, oldPid: number) =>
  waitFor(`${kind} RUNNING in a new process`, async () => {
    const pids = (await t.runtime.pids()).get(decodeId(id, kind === 'pipeline' ? 'Pipeline' : 'Connection')) ?? [];
    const s = await jobState(kind, id);
    return s.actualState === 'RUNNING' && pids.length === 1 && pids[0] !== oldPid ? s : undefined;
  }, 180_000);

/**
 * Freezes a job process (SIGSTOP: there, but it never answers), runs `whileFrozen`, then
 * waits for Weir to stop it. Returns how long that took; the process is killed in any case.
 */
async function frozenUntilStopped(uuid: string, pid: number, timeoutMs: number, whileFrozen = async () => {}): Promise<number> {
  const frozenAt = Date.now();
  process.kill(pid, 'SIGSTOP');
  try {
    await whileFrozen();
    await waitFor('the frozen process gone', async () => ((await t.runtime.pids()).get(uuid)?.includes(pid) ? undefined : true), timeoutMs);
    return Date.now() - frozenAt;
  } finally {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone, as it should be */
    }
  }
}

async function jobPids(): Promise<number[]> {
  return [...(await t.runtime.pids()).values()].flat();
}

/**
 * The bounds on hung job processes (WEIR_JOB_UNRESPONSIVE_MS, WEIR_JOB_START_TIMEOUT_MS),
 * shorter than in production but generous for a loaded machine: a job process submits its
 * job 6.5–12.5 s after it starts here.
 */
const UNRESPONSIVE_MS = 20_000;
const START_TIMEOUT_MS = 45_000;

beforeAll(async () => {
  t = await startLocalApp({ limits: { jobUnresponsiveMs: UNRESPONSIVE_MS, jobStartTimeoutMs: START_TIMEOUT_MS } });
}, 600_000);

// An account per test: a test that fails with jobs still active must not use up the
// next one's quota (FREE: 2 active jobs), nor leave it names that are taken.
beforeEach(async () => {
  ({ key, accountUuid } = await t.signUp('Local runtime'));
});

afterAll(async () => {
  await t?.close();
  for (const old of predecessors) await old.database.close();
  // Nothing of this test may outlive it.
  expect(await processesOfScope(join(t.dataDir, 'local'))).toEqual([]);
}, 120_000);

/** Per test: JVMs start slowly on a loaded 2-core machine; every wait inside is bounded too. */
const SLOW = 360_000;

describe('local runtime', () => {
  it('starts nothing for a signup or for streams without data; the first publish starts only the broker', async () => {
    await stream('idle', '{ name: "id", type: "BIGINT" }');
    await ok('mutation { createPipeline(input: { name: "idle_copy", sql: "INSERT INTO idle SELECT id FROM idle_src" }) { id } }').catch(
      () => undefined,
    );
    expect(await t.parts.processes()).toEqual([]);

    const id = await stream('published', '{ name: "id", type: "BIGINT" }, { name: "label", type: "STRING" }');
    const bad = await t.gql(
      'mutation ($id: ID!, $r: [JSON!]!) { publishRecords(streamId: $id, records: $r) { count } }',
      { id, r: [{ id: 1, label: 'a' }, { id: 'two', label: 'b' }] },
      { key },
    );
    expect(codes(bad)).toEqual(['VALIDATION']);
    expect(bad.errors![0]!.extensions!.field).toEqual(['records', 1, 'id']);

    await ok('mutation ($id: ID!, $r: [JSON!]!) { publishRecords(streamId: $id, records: $r) { count } }', {
      id,
      r: [{ id: 1, label: 'a' }, { id: 2, label: 'b' }],
    });
    // The rejected batch wrote nothing: exactly the two good records are there.
    expect(await records(id)).toEqual([{ id: 1, label: 'a' }, { id: 2, label: 'b' }]);
    const processes = await t.parts.processes();
    expect(processes.map((p) => p.marker.split(':')[0])).toEqual(['weir-broker']);
  }, SLOW);

  it('runs a datagen connection and a filtering pipeline end to end, then leaves no process', async () => {
    const orders = await stream('orders', '{ name: "id", type: "BIGINT" }, { name: "amount", type: "INT" }');
    const doubled = await stream('doubled', '{ name: "id", type: "BIGINT" }, { name: "amount", type: "INT" }');
    const gen = await datagen('orders_gen', orders, {
      'rows-per-second': 50,
      'fields.id.kind': 'sequence',
      'fields.id.start': 1,
      'fields.id.end': 60,
      'fields.amount.min': 1,
      'fields.amount.max': 100,
    });
    const even = await pipeline('even_doubled', 'INSERT INTO doubled SELECT id, amount * 2 FROM orders WHERE MOD(id, 2) = 0');
    await activate('Connection', gen);
    await activate('Pipeline', even);

    await until('pipeline', even, 'RUNNING', 180_000);
    // The bounded source runs to its end.
    await until('connection', gen, 'FINISHED', 180_000);
    const input = await records(orders);
    expect(input.map((r) => r.id)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));

    const output = await waitFor('30 output records', async () => {
      const out = await records(doubled);
      return out.length >= 30 ? out : undefined;
    }, 90_000);
    const amountOf = new Map(input.map((r) => [r.id, r.amount]));
    expect(output).toHaveLength(30);
    for (const row of output) {
      expect(row.id % 2).toBe(0);
      expect(row.amount).toBe(2 * amountOf.get(row.id));
    }

    await deactivate('Pipeline', even);
    await deactivate('Connection', gen);
    await until('pipeline', even, 'STOPPED');
    await until('connection', gen, 'STOPPED');
    expect(await jobPids()).toEqual([]);
  }, SLOW);

  it('moves records in from an external Kafka topic and out to another (kafka SOURCE and SINK connections)', async () => {
    // The user's own Kafka: a broker apart from the platform's, reached with SASL.
    const external = await startExternalKafka();
    onTestFinished(() => external.close());
    const storage = external.storage;
    await storage.ensureTopic('external_in');
    await storage.ensureTopic('external_out');
    await storage.publish('external_in', [1, 2, 3].map((id) => JSON.stringify({ id, label: `ext-${id}` })));

    const inbound = await stream('inbound', '{ name: "id", type: "BIGINT" }, { name: "label", type: "STRING" }');
    const kafkaConnection = async (name: string, type: 'SOURCE' | 'SINK', topic: string) =>
      (
        await ok('mutation ($input: CreateConnectionInput!) { createConnection(input: $input) { id } }', {
          input: {
            name,
            connector: 'kafka',
            type,
            streamId: inbound,
            properties: {
              topic,
              ...external.connectionProperties,
              ...(type === 'SOURCE' ? { 'scan.startup.mode': 'earliest-offset', 'properties.group.id': `weir-test-${name}` } : {}),
            },
          },
        })
      ).createConnection.id as string;
    const source = await kafkaConnection('ext_in', 'SOURCE', 'external_in');
    const sink = await kafkaConnection('ext_out', 'SINK', 'external_out');
    await activate('Connection', source);
    await activate('Connection', sink);

    const arrived = await waitFor('the external records in the stream', async () => {
      const rows = await records(inbound);
      return rows.length >= 3 ? rows : undefined;
    }, 180_000);
    expect(arrived).toEqual([1, 2, 3].map((id) => ({ id, label: `ext-${id}` })));
    const out = await waitFor('the stream drained to the external topic', async () => {
      const rows = await storage.read('external_out', { from: 'EARLIEST', limit: 100 });
      return rows.length >= 3 ? rows : undefined;
    }, 180_000);
    expect(out.map((r) => JSON.parse(r.value))).toEqual([1, 2, 3].map((id) => ({ id, label: `ext-${id}` })));

    await deactivate('Connection', source);
    await deactivate('Connection', sink);
    await until('connection', source, 'STOPPED');
    await until('connection', sink, 'STOPPED');
  }, SLOW);

  it('fails a pipeline whose SQL Flink rejects, with Flink’s message, without hanging', async () => {
    await stream('src_bad', '{ name: "id", type: "BIGINT" }');
    await stream('out_bad', '{ name: "id", type: "BIGINT" }');
    // Weir checks the tables; Flink checks the columns.
    const bad = await pipeline('bad_column', 'INSERT INTO out_bad SELECT idd FROM src_bad');
    await activate('Pipeline', bad);
    const failed = await until('pipeline', bad, 'FAILED', 180_000);
    expect(failed.actualReason).toMatch(/Column 'idd' not found/);
    await deactivate('Pipeline', bad);
    await until('pipeline', bad, 'STOPPED');
  }, SLOW);

  it('brings killed jobs back from their checkpoints: EXACTLY_ONCE output is the input exactly, AT_LEAST_ONCE has every record', async () => {
    // Three jobs at once: FREE allows two.
    await sql`UPDATE accounts SET tier = 'PAID' WHERE id = ${accountUuid}`.execute(t.database.db);
    const src = await stream('events', '{ name: "id", type: "BIGINT" }');
    const exact = await stream('events_exact', '{ name: "id", type: "BIGINT" }');
    const loose = await stream('events_loose', '{ name: "id", type: "BIGINT" }');
    // At most 990 records (a read returns 1,000), for 66 s: still coming when the copiers
    // are killed. The source writes at once (AT_LEAST_ONCE), so its records come one by
    // one rather than a checkpoint's worth at a time, and the copiers are always amid some.
    const gen = await datagen(
      'events_gen',
      src,
      { 'rows-per-second': 15, 'fields.id.kind': 'sequence', 'fields.id.start': 1, 'fields.id.end': 990 },
      'AT_LEAST_ONCE',
    );
    const exactCopier = await pipeline('exact_copier', 'INSERT INTO events_exact SELECT id FROM events');
    const looseCopier = await pipeline('loose_copier', 'INSERT INTO events_loose SELECT id FROM events', 'AT_LEAST_ONCE');
    const guarantees = await ok('query ($a: ID!, $b: ID!) { a: pipeline(id: $a) { deliveryGuarantee } b: pipeline(id: $b) { deliveryGuarantee } }', {
      a: exactCopier,
      b: looseCopier,
    });
    expect([guarantees.a.deliveryGuarantee, guarantees.b.deliveryGuarantee]).toEqual(['EXACTLY_ONCE', 'AT_LEAST_ONCE']);
    await activate('Connection', gen);
    await activate('Pipeline', exactCopier);
    await activate('Pipeline', looseCopier);
    await until('pipeline', exactCopier, 'RUNNING', 180_000);
    await until('pipeline', looseCopier, 'RUNNING', 180_000);

    const killed: number[] = [];
    for (const copier of [exactCopier, looseCopier]) {
      const uuid = decodeId(copier, 'Pipeline');
      const checkpoints = join(t.dataDir, 'local', 'jobs', uuid, 'state', 'g1', 'checkpoints', uuid.replaceAll('-', ''));
      await waitFor('a completed checkpoint', () => latestCheckpoint(checkpoints), 90_000);
      const [pid] = (await t.runtime.pids()).get(uuid)!;
      killed.push(pid!);
    }
    // Both at once, mid-transaction for the exactly-once one: records since its last
    // checkpoint were written in a transaction that is never committed.
    for (const pid of killed) process.kill(pid, 'SIGKILL');
    for (const [i, copier] of [exactCopier, looseCopier].entries()) {
      const recovered = await runningInNewProcess('pipeline', copier, killed[i]!);
      expect(recovered.history.edges.map((e) => e.node.state)).toContain('RECOVERING');
    }

    // Stop the source, then every record it wrote must reach the copies.
    await deactivate('Connection', gen);
    await until('connection', gen, 'STOPPED');
    const input = (await records(src, 1000)).map((r) => r.id as number);
    expect(input.length).toBeGreaterThan(0);
    const complete = (streamId: string) =>
      waitFor('every input id in the copy', async () => {
        const out = (await records(streamId, 1000)).map((r) => r.id as number);
        const seen = new Set(out);
        return input.every((id) => seen.has(id)) ? out : undefined;
      }, 90_000);
    const exactOut = await complete(exact);
    const looseOut = await complete(loose);
    // Exactly once: every id once, none twice, read through the API…
    expect(exactOut.length).toBe(input.length);
    expect(new Set(exactOut).size).toBe(input.length);
    // …and by Kafka's own consumer at read_committed.
    const topic = t.parts.storage.topicFor(accountUuid, decodeId(exact, 'Stream'));
    const external = await readCommittedWithKafkaConsumer(await t.parts.broker.ensureStarted(), topic, { expected: input.length + 1, idleMs: 10_000 });
    const externalIds = external.map((line) => JSON.parse(line).id as number);
    expect(externalIds.length).toBe(input.length);
    expect(new Set(externalIds)).toEqual(new Set(input));
    // At least once: a restart may write again what followed the last checkpoint.
    const duplicates = looseOut.length - new Set(looseOut).size;
    console.info(
      `kill -9 recovery: ${input.length} input records; EXACTLY_ONCE ${exactOut.length} out (Kafka consumer: ${externalIds.length}); ` +
        `AT_LEAST_ONCE ${looseOut.length} out, ${duplicates} duplicates`,
    );
    for (const copier of [exactCopier, looseCopier]) await deactivate('Pipeline', copier);
    for (const copier of [exactCopier, looseCopier]) await until('pipeline', copier, 'STOPPED');
  }, SLOW);

  it('kills a job process that stops answering (SIGSTOP) after the limit, and brings it back', async () => {
    const out = await stream('frozen_out', '{ name: "id", type: "BIGINT" }');
    const gen = await datagen('frozen_gen', out, { 'rows-per-second': 5 });
    await activate('Connection', gen);
    await until('connection', gen, 'RUNNING', 180_000);
    const uuid = decodeId(gen, 'Connection');
    const [pid] = (await t.runtime.pids()).get(uuid)!;

    const frozenMs = await frozenUntilStopped(uuid, pid!, 120_000);
    expect(frozenMs).toBeGreaterThanOrEqual(UNRESPONSIVE_MS); // silence is tolerated up to the limit

    const recovered = await runningInNewProcess('connection', gen, pid!);
    const states = recovered.history.edges.map((e) => e.node.state);
    console.info(`frozen job process killed after ${frozenMs} ms (limit ${UNRESPONSIVE_MS} ms); history ${states.join(', ')}`);
    expect(reasons(recovered)).toContain(`The job process did not answer for ${UNRESPONSIVE_MS / 1000} s; it was stopped and restarts from its latest checkpoint.`);
    await deactivate('Connection', gen);
    await until('connection', gen, 'STOPPED');
  }, SLOW);

  it('stops a job process that hangs before it submits its job (SIGSTOP at start), and starts it again', async () => {
    const out = await stream('stuck_out', '{ name: "id", type: "BIGINT" }');
    const gen = await datagen('stuck_gen', out, { 'rows-per-second': 5 });
    const uuid = decodeId(gen, 'Connection');
    const activatedAt = Date.now();
    await activate('Connection', gen);
    // Frozen as soon as it is there: seconds before its job could be submitted.
    const pid = await waitFor('the job process', async () => (await t.runtime.pids()).get(uuid)?.[0], 60_000, 50);
    await frozenUntilStopped(uuid, pid, 180_000, async () => {
      const events = await readFile(join(t.dataDir, 'local', 'jobs', uuid, 'events.log'), 'utf8');
      expect(events).not.toContain('WEIR_JOB_SUBMITTED');
      expect((await jobState('connection', gen)).actualState).toBe('STARTING');
    });
    const stuckMs = Date.now() - activatedAt;
    expect(stuckMs).toBeGreaterThanOrEqual(START_TIMEOUT_MS);

    const recovered = await runningInNewProcess('connection', gen, pid);
    const states = recovered.history.edges.map((e) => e.node.state);
    console.info(`stuck job process stopped ${stuckMs} ms after activation (limit ${START_TIMEOUT_MS} ms); history ${states.join(', ')}`);
    expect(reasons(recovered)).toContain(`The job process did not start within ${START_TIMEOUT_MS / 1000} s; it was stopped and starts again.`);
    await deactivate('Connection', gen);
    await until('connection', gen, 'STOPPED');
  }, SLOW);

  it('adopts running jobs after a gateway crash: one process per active job, none for inactive ones', async () => {
    const a = await stream('adopt_in', '{ name: "id", type: "BIGINT" }');
    await stream('adopt_out', '{ name: "id", type: "BIGINT" }');
    const gen = await datagen('adopt_gen', a, { 'rows-per-second': 5 });
    const keep = await pipeline('adopt_keep', 'INSERT INTO adopt_out SELECT id FROM adopt_in');
    await activate('Connection', gen);
    await activate('Pipeline', keep);
    await until('pipeline', keep, 'RUNNING', 180_000);
    await until('connection', gen, 'RUNNING', 180_000);
    const before = await t.runtime.pids();

    // The gateway dies; while it is down, the connection is switched off in the database.
    await t.abandon();
    await t.database.db
      .updateTable('connections')
      .set({ desired_state: 'INACTIVE' })
      .where('id', '=', decodeId(gen, 'Connection'))
      .execute();
    const second = await startLocalApp({ dataDir: t.dataDir, database: t.database });
    predecessors.push(t);
    t = second;
    try {
      await until('connection', gen, 'STOPPED');
      const after = await t.runtime.pids();
      expect(after.get(decodeId(keep, 'Pipeline'))).toEqual(before.get(decodeId(keep, 'Pipeline')));
      expect(after.has(decodeId(gen, 'Connection'))).toBe(false);
      expect([...after.values()].every((pids) => pids.length === 1)).toBe(true);
    } finally {
      await deactivate('Pipeline', keep);
      await until('pipeline', keep, 'STOPPED');
    }
  }, SLOW);
});

describe('local runtime bookkeeping', () => {
  it('keeps checkpoints of a stopped job on disk', async () => {
    const jobs = await readdir(join(t.dataDir, 'local', 'jobs'));
    expect(jobs.length).toBeGreaterThan(0);
  }, SLOW);
});
