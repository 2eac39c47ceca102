import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeId } from '../../../src/graphql/global-id.js';
import { startLocalApp, type LocalTestApp } from '../../helpers/local.js';
import { startTestPostgres, type TestPostgres } from '../../helpers/postgres.js';
import { waitFor } from '../../helpers/wait-for.js';

/**
 * Postgres in and out on the local runtime, against real servers: a `postgres-cdc`
 * connection reads a table of one server (wal_level=logical) into a CHANGE stream, a
 * pipeline filters and projects it, and a `jdbc` connection writes the result into a
 * table of another server. The sink must equal the source query's result row for row,
 * after the snapshot and again after a burst of updates, deletes and inserts.
 */

const ROWS = 1000;
const SOURCE_PASSWORD = 'source pw: ünïcode & quotes \'"';
const SINK_PASSWORD = 'sink-pw';
/** What the pipeline computes, as the source would answer it. */
const EXPECTED = `SELECT id, customer, amount FROM orders WHERE status <> 'cancelled' ORDER BY id`;

let t: LocalTestApp;
let key: string;
let source: TestPostgres;
let target: TestPostgres;
let sourceDb: pg.Client;
let sinkDb: pg.Client;

async function ok(query: string, variables: Record<string, unknown> = {}) {
  const result = await t.gql(query, variables, { key });
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  return result.data!;
}

async function changeStream(name: string, fields: string) {
  const data = await ok(`mutation { createStream(input: { name: "${name}", kind: CHANGE, primaryKey: ["id"], fields: [${fields}] }) { id } }`);
  return data.createStream.id as string;
}

async function connection(input: Record<string, unknown>) {
  const data = await ok('mutation ($input: CreateConnectionInput!) { createConnection(input: $input) { id } }', { input });
  return data.createConnection.id as string;
}

async function actualState(kind: 'pipeline' | 'connection', id: string): Promise<string> {
  const data = await ok(`query ($id: ID!) { ${kind}(id: $id) { actualState actualReason } }`, { id });
  return data[kind].actualState as string;
}

const until = (kind: 'pipeline' | 'connection', id: string, state: string) =>
  waitFor(`${kind} ${state}`, async () => ((await actualState(kind, id)) === state ? true : undefined), 240_000);

function serverOf(url: string) {
  const parsed = new URL(url);
  return { hostname: parsed.hostname, port: Number(parsed.port), 'database-name': parsed.pathname.slice(1), username: 'weir' };
}

async function rows(client: pg.Client, query: string) {
  return (await client.query(query)).rows as { id: string; customer: string; amount: number }[];
}

/** A query on the source through a connection of its own (the server may have restarted since). */
async function onSource(query: string) {
  const client = new pg.Client({ connectionString: source.url });
  client.on('error', () => {});
  await client.connect();
  try {
    return await client.query(query);
  } finally {
    await client.end();
  }
}

/** Waits until the sink query's rows equal the source query's, and returns how long that took. */
async function tablesEqual(sourceQuery: string, sinkQuery: string, label = 'the sink equal to the source'): Promise<number> {
  const started = Date.now();
  let last = { expected: 0, actual: 0 };
  await waitFor(
    label,
    async () => {
      const expected = (await onSource(sourceQuery)).rows;
      const actual = (await sinkDb.query(sinkQuery)).rows;
      last = { expected: expected.length, actual: actual.length };
      return JSON.stringify(actual) === JSON.stringify(expected) ? true : undefined;
    },
    240_000,
  ).catch((error: unknown) => {
    throw new Error(`${String(error)} (source query: ${last.expected} rows, sink: ${last.actual} rows)`);
  });
  return Date.now() - started;
}

const sinkEqualsSource = (label: string) => tablesEqual(EXPECTED, 'SELECT id, customer, amount FROM big_orders ORDER BY id', label);

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

beforeAll(async () => {
  [source, target] = await Promise.all([
    startTestPostgres({ settings: { wal_level: 'logical' }, password: SOURCE_PASSWORD }),
    startTestPostgres({ password: SINK_PASSWORD }),
  ]);
  sourceDb = new pg.Client({ connectionString: source.url });
  sinkDb = new pg.Client({ connectionString: target.url });
  sourceDb.on('error', () => {});
  await Promise.all([sourceDb.connect(), sinkDb.connect()]);
  await sourceDb.query(`
    CREATE TABLE orders (id bigint PRIMARY KEY, customer text NOT NULL, amount integer NOT NULL, status text NOT NULL);
    INSERT INTO orders SELECT i, 'customer-' || (i % 37), (i * 7) % 100, CASE WHEN i % 10 = 0 THEN 'cancelled' ELSE 'open' END
      FROM generate_series(1, ${ROWS}) AS i;`);
  await sinkDb.query('CREATE TABLE big_orders (id bigint PRIMARY KEY, customer text NOT NULL, amount integer NOT NULL)');
  t = await startLocalApp();
  ({ key } = await t.signUp('Postgres connectors'));
  // Three jobs at once: FREE allows two.
  await sql`UPDATE accounts SET tier = 'PAID'`.execute(t.database.db);
}, 600_000);

afterAll(async () => {
  await t?.close();
  await Promise.all([sourceDb?.end().catch(() => {}), sinkDb?.end()]);
  await Promise.all([source?.stop(), target?.stop()]);
}, 120_000);

describe('postgres-cdc → pipeline → jdbc on the local runtime', () => {
  it('copies a table’s snapshot and then its changes, so the sink equals the source query row for row', async () => {
    const fields = '{ name: "id", type: "BIGINT", nullable: false }, { name: "customer", type: "STRING" }, { name: "amount", type: "INT" }';
    const orders = await changeStream('orders', `${fields}, { name: "status", type: "STRING" }`);
    const bigOrders = await changeStream('big_orders', fields);
    const cdc = await connection({
      name: 'orders_cdc',
      connector: 'postgres-cdc',
      type: 'SOURCE',
      streamId: orders,
      properties: { ...serverOf(source.url), 'table-name': 'orders', password: SOURCE_PASSWORD },
    });
    const pipeline = (
      await ok('mutation ($sql: String!) { createPipeline(input: { name: "open_orders", sql: $sql }) { id } }', {
        sql: "INSERT INTO big_orders SELECT id, customer, amount FROM orders WHERE status <> 'cancelled'",
      })
    ).createPipeline.id as string;
    const sink = await connection({
      name: 'big_orders_out',
      connector: 'jdbc',
      type: 'SINK',
      streamId: bigOrders,
      properties: { ...serverOf(target.url), 'table-name': 'big_orders', password: SINK_PASSWORD },
    });
    const jobs = [['Connection', cdc], ['Pipeline', pipeline], ['Connection', sink]] as const;
    const kindOf = (kind: 'Connection' | 'Pipeline') => (kind === 'Connection' ? 'connection' : 'pipeline');
    const activateAll = async () => {
      for (const [kind, id] of jobs) await ok(`mutation ($id: ID!) { activate${kind}(id: $id) { id } }`, { id });
      for (const [kind, id] of jobs) await until(kindOf(kind), id, 'RUNNING');
    };
    const deactivateAll = async () => {
      for (const [kind, id] of [...jobs].reverse()) await ok(`mutation ($id: ID!) { deactivate${kind}(id: $id) { id } }`, { id });
      for (const [kind, id] of jobs) await until(kindOf(kind), id, 'STOPPED');
    };
    const activated = Date.now();
    await activateAll();

    const snapshotMs = await sinkEqualsSource('the snapshot in the sink');
    expect((await rows(sinkDb, 'SELECT id FROM big_orders')).length).toBe(ROWS - ROWS / 10);
    console.info(`snapshot of ${ROWS} rows in the sink ${Date.now() - activated} ms after activation (${snapshotMs} ms after RUNNING)`);

    // 200 updates, 100 deletes, 100 inserts, some of which move rows in or out of the filter.
    await sourceDb.query(`
      UPDATE orders SET amount = amount + 1 WHERE id BETWEEN 1 AND 150;
      UPDATE orders SET status = CASE WHEN status = 'open' THEN 'cancelled' ELSE 'open' END WHERE id BETWEEN 151 AND 200;
      DELETE FROM orders WHERE id BETWEEN 901 AND 1000;
      INSERT INTO orders SELECT i, 'new-' || i, i % 100, 'open' FROM generate_series(${ROWS + 1}, ${ROWS + 100}) AS i;`);
    const changesMs = await sinkEqualsSource('the changes in the sink');
    console.info(`400 changes in the sink within ${changesMs} ms`);

    await deactivateAll();
    // Deactivation keeps the slot: a resumed connection reads on from where it stopped.
    const slots = await sourceDb.query('SELECT slot_name, active FROM pg_replication_slots');
    expect(slots.rows).toEqual([{ slot_name: expect.stringMatching(/^weir_[0-9a-f]{32}$/), active: false }]);
    const publications = "SELECT pubname FROM pg_publication WHERE pubname LIKE 'weir\\_%'";
    expect((await sourceDb.query(publications)).rows).toEqual([{ pubname: slots.rows[0].slot_name }]);

    // Changes made while it is inactive arrive once it is active again: the slot held them.
    await sourceDb.query(`
      UPDATE orders SET amount = amount + 2 WHERE id BETWEEN 300 AND 349;
      DELETE FROM orders WHERE id BETWEEN 350 AND 359;
      INSERT INTO orders SELECT i, 'late-' || i, 77, 'open' FROM generate_series(${ROWS + 101}, ${ROWS + 110}) AS i;`);
    await activateAll();
    const resumedMs = await sinkEqualsSource('the changes made while inactive in the sink');
    console.info(`70 changes made while inactive in the sink within ${resumedMs} ms of the jobs RUNNING again`);
    await deactivateAll();
    expect((await sourceDb.query('SELECT slot_name FROM pg_replication_slots')).rows).toEqual([{ slot_name: slots.rows[0].slot_name }]);

    // The passwords are in no log, and only in files of the owner's alone.
    for (const file of await filesUnder(t.dataDir)) {
      const text = await readFile(file, 'latin1');
      const holds = [SOURCE_PASSWORD, SINK_PASSWORD].some((password) => text.includes(Buffer.from(password.split("'")[0]!, 'utf8').toString('latin1')));
      if (!holds) continue;
      expect(file, 'a log holds a password').not.toMatch(/\.log$/);
      expect(((await stat(file)).mode & 0o077).toString(8), `${file} holds a password and is readable by others`).toBe('0');
    }

    // Deleting the connection drops its slot and the publication Weir made.
    await ok('mutation ($id: ID!) { deleteConnection(id: $id) { deletedId } }', { id: cdc });
    expect((await sourceDb.query('SELECT slot_name FROM pg_replication_slots')).rows).toEqual([]);
    expect((await sourceDb.query(publications)).rows).toEqual([]);
  }, 900_000);

  it('loses and doubles no change across a kill -9 of the CDC job and a 10 s outage of the source', async () => {
    await onSource(`CREATE TABLE payments (id bigint PRIMARY KEY, amount integer NOT NULL);
      INSERT INTO payments SELECT i, i FROM generate_series(1, 200) AS i;`);
    await sinkDb.query('CREATE TABLE payments (id bigint PRIMARY KEY, amount integer NOT NULL)');
    const stream = await changeStream('payments', '{ name: "id", type: "BIGINT", nullable: false }, { name: "amount", type: "INT" }');
    const cdc = await connection({
      name: 'payments_cdc', connector: 'postgres-cdc', type: 'SOURCE', streamId: stream,
      properties: { ...serverOf(source.url), 'table-name': 'payments', password: SOURCE_PASSWORD },
    });
    const sink = await connection({
      name: 'payments_out', connector: 'jdbc', type: 'SINK', streamId: stream,
      properties: { ...serverOf(target.url), 'table-name': 'payments', password: SINK_PASSWORD },
    });
    for (const id of [cdc, sink]) await ok('mutation ($id: ID!) { activateConnection(id: $id) { id } }', { id });
    await until('connection', cdc, 'RUNNING');
    await until('connection', sink, 'RUNNING');
    const same = () => tablesEqual('SELECT id, amount FROM payments ORDER BY id', 'SELECT id, amount FROM payments ORDER BY id');
    await same();

    // Changes before, while and after the CDC job dies.
    let round = 0;
    const changes = () => {
      round++;
      return onSource(`UPDATE payments SET amount = amount + ${round} WHERE id % 7 = ${round % 7};
        DELETE FROM payments WHERE id IN (SELECT id FROM payments ORDER BY id LIMIT 3);
        INSERT INTO payments SELECT i, i FROM generate_series(${1000 * round}, ${1000 * round + 9}) AS i;`);
    };
    await changes();
    const uuid = decodeId(cdc, 'Connection');
    const [pid] = (await t.runtime.pids()).get(uuid) ?? [];
    expect(pid).toBeGreaterThan(0);
    process.kill(pid!, 'SIGKILL');
    await changes();
    await waitFor('the CDC job RUNNING in a new process', async () => {
      const pids = (await t.runtime.pids()).get(uuid) ?? [];
      return pids.length === 1 && pids[0] !== pid && (await actualState('connection', cdc)) === 'RUNNING' ? true : undefined;
    }, 240_000);
    await changes();
    console.info(`after kill -9: sink equal within ${await same()} ms`);

    await source.stopFor(10_000);
    await changes();
    console.info(`after the source's 10 s outage: sink equal within ${await same()} ms`);
    const slots = (await onSource('SELECT slot_name FROM pg_replication_slots')).rows.map((r) => r.slot_name);
    expect(slots).toContain(`weir_${uuid.replaceAll('-', '')}`);

    for (const id of [sink, cdc]) await ok('mutation ($id: ID!) { deactivateConnection(id: $id) { id } }', { id });
    await until('connection', cdc, 'STOPPED');
    await until('connection', sink, 'STOPPED');
    await ok('mutation ($id: ID!) { deleteConnection(id: $id) { deletedId } }', { id: cdc });
  }, 900_000);
});
