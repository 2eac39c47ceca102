/**
 * `npm run bench:cdc`: Postgres change data capture on the local runtime, from one run,
 * against real Postgres 15 servers (a source with wal_level=logical, a sink):
 *
 *  1. snapshot: a table of SNAPSHOT_ROWS (default 100,000) rows through `postgres-cdc` →
 *     a CHANGE stream → `jdbc`; rows/s from the CDC job RUNNING to the last row in the
 *     sink table (and the time from activation);
 *  2. change latency at a steady CHANGE_RATE (default 500 changes/s) for CHANGE_SECONDS
 *     (default 30): source commit → the row in the sink table (a trigger there records
 *     when each version arrived), median and p99, beside the same changes read straight
 *     from a slot of their own by `pg_recvlogical` (test_decoding), the physical
 *     reference, in the same seconds. Reports the ratio.
 *
 * Prints the figures and writes bench/results/cdc.json. About 3 minutes on 2 cores.
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import pg from 'pg';
import { startLocalApp } from '../test/helpers/local.js';
import { startTestPostgres } from '../test/helpers/postgres.js';
import { waitFor } from '../test/helpers/wait-for.js';

const SNAPSHOT_ROWS = Number(process.env.BENCH_SNAPSHOT_ROWS ?? 100_000);
const CHANGE_RATE = Number(process.env.BENCH_CHANGE_RATE ?? 500);
const CHANGE_SECONDS = Number(process.env.BENCH_CHANGE_SECONDS ?? 30);
/** Changes are written in small transactions this often. */
const TICK_MS = 50;
const PASSWORD = 'bench-pw';
const RECVLOGICAL = '/usr/lib/postgresql/15/bin/pg_recvlogical';

const out = (line: string) => process.stdout.write(`${line}\n`);
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

const [source, target] = await Promise.all([
  startTestPostgres({ settings: { wal_level: 'logical', max_replication_slots: '20' }, password: PASSWORD }),
  startTestPostgres({ password: PASSWORD }),
]);
const src = new pg.Client({ connectionString: source.url });
const dst = new pg.Client({ connectionString: target.url });
await Promise.all([src.connect(), dst.connect()]);
const t = await startLocalApp({ reconcileIntervalMs: 200 });
let recvlogical: ReturnType<typeof spawn> | undefined;

try {
  out(`Weir CDC benchmark: ${SNAPSHOT_ROWS} snapshot rows, ${CHANGE_RATE} changes/s for ${CHANGE_SECONDS} s; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  await src.query(`CREATE TABLE items (id bigint PRIMARY KEY, amount integer NOT NULL, sent_ms bigint NOT NULL);
    INSERT INTO items SELECT i, i % 1000, 0 FROM generate_series(1, ${SNAPSHOT_ROWS}) AS i;`);
  // Each version's arrival, recorded by the sink server itself as the JDBC sink writes it
  // (AFTER triggers: an upsert fires the one of the action it took, a BEFORE INSERT both).
  await dst.query(`CREATE TABLE items (id bigint PRIMARY KEY, amount integer NOT NULL, sent_ms bigint NOT NULL);
    CREATE TABLE arrivals (sent_ms bigint NOT NULL, arrived_ms bigint NOT NULL);
    CREATE FUNCTION arrived() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.sent_ms > 0 THEN
          INSERT INTO arrivals VALUES (NEW.sent_ms, (extract(epoch FROM clock_timestamp()) * 1000)::bigint);
        END IF;
        RETURN NEW;
      END $$;
    CREATE TRIGGER arrived AFTER INSERT OR UPDATE ON items FOR EACH ROW EXECUTE FUNCTION arrived();`);

  const { key } = await t.signUp('bench');
  await sql`UPDATE accounts SET tier = 'PAID'`.execute(t.database.db);
  const gql = async (query: string, variables: Record<string, unknown> = {}) => {
    const result = await t.gql(query, variables, { key });
    if (result.errors) throw new Error(JSON.stringify(result.errors));
    return result.data!;
  };
  const server = (url: string) => {
    const parsed = new URL(url);
    return { hostname: parsed.hostname, port: Number(parsed.port), 'database-name': parsed.pathname.slice(1), username: 'weir', password: PASSWORD, 'table-name': 'items' };
  };
  const stream = (
    await gql(`mutation { createStream(input: { name: "items", kind: CHANGE, primaryKey: ["id"], fields: [
      { name: "id", type: "BIGINT", nullable: false }, { name: "amount", type: "INT" }, { name: "sent_ms", type: "BIGINT" }] }) { id } }`)
  ).createStream.id as string;
  const connection = async (name: string, connector: string, type: string, properties: Record<string, unknown>) =>
    (await gql('mutation ($input: CreateConnectionInput!) { createConnection(input: $input) { id } }', { input: { name, connector, type, streamId: stream, properties } }))
      .createConnection.id as string;
  const state = async (id: string) => (await gql('query ($id: ID!) { connection(id: $id) { actualState actualReason } }', { id })).connection;
  const running = (id: string) =>
    waitFor('RUNNING', async () => {
      const s = await state(id);
      if (s.actualState === 'FAILED') throw new Error(s.actualReason);
      return s.actualState === 'RUNNING' ? true : undefined;
    }, 300_000, 50);
  const sinkRows = async () => Number((await dst.query('SELECT count(*) AS n FROM items')).rows[0].n);

  // The sink first, so that the snapshot's time is the source's and the path's.
  const sink = await connection('items_out', 'jdbc', 'SINK', { ...server(target.url), 'sink.buffer-flush.max-rows': 5000 });
  await gql('mutation ($id: ID!) { activateConnection(id: $id) { id } }', { id: sink });
  await running(sink);
  const cdc = await connection('items_cdc', 'postgres-cdc', 'SOURCE', server(source.url));
  const activated = Date.now();
  await gql('mutation ($id: ID!) { activateConnection(id: $id) { id } }', { id: cdc });
  await running(cdc);
  const runningAt = Date.now();
  await waitFor('the snapshot in the sink', async () => ((await sinkRows()) >= SNAPSHOT_ROWS ? true : undefined), 600_000, 100);
  const snapshotMs = Date.now() - runningAt;
  const snapshot = { rows: SNAPSHOT_ROWS, activateToRunningMs: runningAt - activated, runningToLastRowMs: snapshotMs, rowsPerSecond: Math.round(SNAPSHOT_ROWS / (snapshotMs / 1000)) };
  out(`snapshot: ${SNAPSHOT_ROWS} rows in the sink ${snapshotMs} ms after the CDC job was RUNNING (${snapshot.rowsPerSecond} rows/s); activation → RUNNING ${snapshot.activateToRunningMs} ms`);

  // The reference: the same changes, decoded by Postgres into a slot of their own.
  await src.query("SELECT pg_create_logical_replication_slot('bench_reference', 'test_decoding')");
  const reference: number[] = [];
  recvlogical = spawn(RECVLOGICAL, ['-d', source.url, '--slot', 'bench_reference', '--start', '-f', '-', '-F', '0', '-s', '1'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: recvlogical.stdout! });
  lines.on('line', (line) => {
    const sent = /sent_ms\[bigint\]:(\d+)/.exec(line);
    if (sent && Number(sent[1]) > 0) reference.push(Date.now() - Number(sent[1]));
  });

  // Steady changes: each tick updates a slice of rows, stamping when it was sent.
  const perTick = Math.max(1, Math.round((CHANGE_RATE * TICK_MS) / 1000));
  const ticks = Math.round((CHANGE_SECONDS * 1000) / TICK_MS);
  const steadyStart = Date.now();
  let sent = 0;
  for (let tick = 0; tick < ticks; tick++) {
    const first = (tick * perTick) % SNAPSHOT_ROWS;
    await src.query(
      `UPDATE items SET amount = amount + 1, sent_ms = (extract(epoch FROM clock_timestamp()) * 1000)::bigint WHERE id > $1 AND id <= $2`,
      [first, first + perTick],
    );
    sent += perTick;
    const behind = steadyStart + (tick + 1) * TICK_MS - Date.now();
    if (behind > 0) await sleep(behind);
  }
  const achievedRate = Math.round(sent / ((Date.now() - steadyStart) / 1000));
  await waitFor('every change in the sink', async () => {
    const n = Number((await dst.query('SELECT count(*) AS n FROM arrivals')).rows[0].n);
    return n >= sent && reference.length >= sent ? true : undefined;
  }, 300_000, 200);
  const weir = (await dst.query('SELECT arrived_ms - sent_ms AS ms FROM arrivals')).rows.map((r) => Number(r.ms));
  const latency = {
    weir: { changes: weir.length, medianMs: quantile(weir, 0.5), p99Ms: quantile(weir, 0.99) },
    pgRecvlogical: { changes: reference.length, medianMs: quantile(reference, 0.5), p99Ms: quantile(reference, 0.99) },
  };
  const ratio = { median: latency.weir.medianMs / latency.pgRecvlogical.medianMs, p99: latency.weir.p99Ms / latency.pgRecvlogical.p99Ms };
  out(`changes: ${sent} sent at ${achievedRate}/s (asked ${CHANGE_RATE}/s)`);
  out(`change latency, source commit → sink table: median ${latency.weir.medianMs} ms, p99 ${latency.weir.p99Ms} ms (${latency.weir.changes} versions)`);
  out(`the same changes by pg_recvlogical from a slot: median ${latency.pgRecvlogical.medianMs} ms, p99 ${latency.pgRecvlogical.p99Ms} ms`);
  out(`Weir ÷ pg_recvlogical: median ${ratio.median.toFixed(1)}×, p99 ${ratio.p99.toFixed(1)}×`);

  for (const id of [cdc, sink]) await gql('mutation ($id: ID!) { deactivateConnection(id: $id) { id } }', { id });
  for (const id of [cdc, sink]) await waitFor('STOPPED', async () => ((await state(id)).actualState === 'STOPPED' ? true : undefined), 120_000);
  await gql('mutation ($id: ID!) { deleteConnection(id: $id) { deletedId } }', { id: cdc });

  await mkdir('bench/results', { recursive: true });
  await writeFile(
    'bench/results/cdc.json',
    `${JSON.stringify({ at: new Date().toISOString(), loadAverage: loadavg(), snapshot, changes: { asked: CHANGE_RATE, achieved: achievedRate, seconds: CHANGE_SECONDS, sent }, latency, ratio }, null, 2)}\n`,
  );
  out('wrote bench/results/cdc.json');
} finally {
  recvlogical?.kill('SIGTERM');
  await t.close();
  await Promise.all([src.end(), dst.end()]);
  await Promise.all([source.stop(), target.stop()]);
}
