import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionResult } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/platform/logger.js';
import { LandedOnUsedTaskManagerError, type Lease } from '../../src/preview/preview-backend.js';
import { findMarkedProcesses, isAlive } from '../../src/runtime/local/processes.js';
import { createLocalRuntime, type LocalRuntimeParts } from '../../src/runtime/create-runtime.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { waitFor } from '../helpers/local.js';

/**
 * Previews against a real session cluster (JobManager, SQL Gateway, one-slot
 * TaskManagers) and a real Kafka broker. JVM-heavy: every wait is bounded generously.
 */
let t: TestApp;
let parts: LocalRuntimeParts;
let dataDir: string;
let key: string;

const SLOW = 300_000;
const PREVIEW = `subscription ($input: PreviewInput!) { preview(input: $input) {
  __typename
  ... on PreviewQueued { position }
  ... on PreviewStarted { columns { name type } taskManager leaseMs }
  ... on PreviewRows { rows { kind values } }
  ... on PreviewEnded { reason message line column } } }`;

async function ok(query: string, variables: Record<string, unknown> = {}) {
  const result = await t.gql(query, variables, { key });
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  return result.data!;
}

/** Runs a preview over SSE to its end (or until `stopAfter` says to leave); returns the events. */
async function preview(input: Record<string, unknown>, stopAfter?: (events: any[]) => boolean): Promise<any[]> {
  const abort = new AbortController();
  const response = await t.app.yoga.fetch(
    new Request('http://weir.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${key}` },
      body: JSON.stringify({ query: PREVIEW, variables: { input } }),
      signal: abort.signal,
    }),
  );
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const events: any[] = [];
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const data = buffer
          .slice(0, end)
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trim())
          .join('\n');
        buffer = buffer.slice(end + 2);
        if (!data) continue;
        const result = JSON.parse(data) as ExecutionResult<any>;
        if (result.errors) return [{ __typename: 'errors', errors: result.errors }];
        events.push(result.data!.preview);
      }
      if (events.at(-1)?.__typename === 'PreviewEnded') break;
      if (stopAfter?.(events)) break;
    }
  } finally {
    abort.abort();
    await reader.cancel().catch(() => {});
  }
  return events;
}

const rowsOf = (events: any[]) => events.filter((e) => e.__typename === 'PreviewRows').flatMap((e) => e.rows);
const endOf = (events: any[]) => events.find((e) => e.__typename === 'PreviewEnded');
const startOf = (events: any[]) => events.find((e) => e.__typename === 'PreviewStarted');

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'weir-preview-'));
  const logger = createLogger(process.env.WEIR_TEST_LOG_LEVEL ?? 'warn');
  parts = createLocalRuntime({ dataDir, cacheDir: undefined, checkpointIntervalMs: 1000, previewPoolSize: 2 }, logger);
  t = await startTestApp({ runtime: parts.runtime, storage: parts.storage!, config: { dataDir } });
  // The gateway under test gets the preview cluster the way main.ts wires it.
  const { buildApp } = await import('../../src/app.js');
  const app = buildApp({
    config: t.config,
    logger,
    db: t.database.db,
    secret: 'test-secret-test-secret-test-secret!',
    runtime: parts.runtime,
    storage: parts.storage,
    preview: parts.preview,
  });
  (t as { app: typeof app }).app = app;
  ({ key } = await t.signUp('Preview'));
  await parts.preview!.pool.start();
}, 600_000);

afterAll(async () => {
  const hash = parts?.preview?.cluster.hash;
  await parts?.close();
  await t?.close();
  await rm(dataDir, { recursive: true, force: true });
  // Nothing this test started outlives it (other test files' processes are theirs).
  expect(await parts.processes()).toEqual([]);
  expect(await findMarkedProcesses(`weir-preview-`).then((found) => found.filter((p) => p.marker.includes(`:${hash}`)))).toEqual([]);
}, 120_000);

describe('preview on the session cluster', () => {
  let orders: string;

  it('returns exactly the matching records over EARLIEST, BIGINT and DECIMAL without rounding', async () => {
    const created = await ok(
      'mutation { createStream(input: { name: "orders", kind: APPEND, fields: [{ name: "id", type: "BIGINT" }, { name: "amount", type: "DECIMAL(20, 2)" }, { name: "who", type: "STRING" }] }) { id } }',
    );
    orders = created.createStream.id;
    const records = Array.from({ length: 20 }, (_, i) => ({ id: i + 1, amount: `${i * 10}.50`, who: i % 2 ? 'b' : 'a' }));
    records.push({ id: '9007199254740993', amount: '123456789012345678.25', who: 'a' } as never);
    await ok('mutation ($id: ID!, $r: [JSON!]!) { publishRecords(streamId: $id, records: $r) { count } }', { id: orders, r: records });

    const events = await preview({ sql: "SELECT id, amount FROM orders WHERE who = 'a' AND amount > 50", timeLimitSeconds: 60 }, (e) => rowsOf(e).length >= 8);
    const started = startOf(events);
    expect(started, JSON.stringify(events)).toBeDefined();
    expect(started.columns).toEqual([
      { name: 'id', type: 'BIGINT' },
      { name: 'amount', type: 'DECIMAL(20, 2)' },
    ]);
    expect(started.taskManager).toMatch(/^weir-tm-\d+$/);
    const rows = rowsOf(events);
    const expected = records.filter((r) => r.who === 'a' && Number(r.amount) > 50);
    expect(rows.map((r: any) => r.kind)).toEqual(expected.map(() => 'INSERT'));
    expect(rows.map((r: any) => String(r.values[0]))).toEqual(expected.map((r) => String(r.id)));
    expect(rows.at(-1).values).toEqual(['9007199254740993', '123456789012345678.25']);
  }, SLOW);

  it('shows UPDATE_BEFORE / UPDATE_AFTER for a GROUP BY', async () => {
    const events = await preview({ sql: 'SELECT who, COUNT(*) AS n FROM orders GROUP BY who', timeLimitSeconds: 60 }, (e) =>
      rowsOf(e).some((r: any) => r.kind === 'UPDATE_AFTER' && r.values[0] === 'a' && r.values[1] === 11),
    );
    const kinds = new Set(rowsOf(events).map((r: any) => r.kind));
    expect(kinds).toContain('UPDATE_BEFORE');
    expect(kinds).toContain('UPDATE_AFTER');
  }, SLOW);

  it('ends TIMEOUT after about 5 s on an unbounded stream, and its TaskManager process is gone', async () => {
    const started = Date.now();
    const events = await preview({ sql: 'SELECT id FROM orders', timeLimitSeconds: 5 });
    const elapsed = Date.now() - started;
    expect(endOf(events)).toMatchObject({ reason: 'TIMEOUT' });
    expect(elapsed).toBeGreaterThan(4_500);
    expect(elapsed).toBeLessThan(9_000);
    const tm = startOf(events).taskManager as string;
    await waitFor('the TaskManager gone', async () => ((await findMarkedProcesses(`weir-preview-tm:${parts.preview!.cluster.hash}:${tm}`)).length === 0 ? true : undefined), 20_000);
  }, SLOW);

  it('cancels the job and retires the TaskManager when the subscription is closed', async () => {
    const events = await preview({ sql: 'SELECT id FROM orders', timeLimitSeconds: 120 }, (e) => rowsOf(e).length > 0);
    const tm = startOf(events).taskManager as string;
    const pids = await findMarkedProcesses(`weir-preview-tm:${parts.preview!.cluster.hash}:${tm}`);
    await waitFor('the TaskManager gone', async () => (pids.every((p) => !isAlive(p.pid)) ? true : undefined), 20_000);
    const { jobManagerUrl } = await parts.preview!.cluster.start();
    await waitFor('no running job', async () => {
      const { jobs } = (await (await fetch(`${jobManagerUrl}/jobs`)).json()) as { jobs: { status: string }[] };
      return jobs.every((j) => ['CANCELED', 'FAILED', 'FINISHED'].includes(j.status)) ? true : undefined;
    }, 30_000);
  }, SLOW);

  it('submits again on a new lease when the job lands on a used TaskManager, and shows nothing of the first try', async () => {
    // The race this guards against (a preview that ended by itself frees its slot while
    // another submission window is open) cannot be timed from outside; the pool's answer
    // to it is: the first lease reports the job landed on a used TaskManager.
    const pool = parts.preview.pool;
    const realLease = pool.lease.bind(pool);
    const leased: string[] = [];
    let second: Lease | undefined;
    let firstJobLanded: readonly string[] = [];
    pool.lease = async (...args: Parameters<typeof pool.lease>) => {
      const lease = await realLease(...args);
      leased.push(lease.taskManagerId);
      if (leased.length > 1) return (second = lease);
      return {
        get taskManagerId() {
          return lease.taskManagerId;
        },
        leaseMs: lease.leaseMs,
        landed(ids: readonly string[]) {
          lease.landed(ids);
          firstJobLanded = ids;
          throw new LandedOnUsedTaskManagerError(lease.taskManagerId, ['weir-tm-used']);
        },
        release: () => lease.release(),
      };
    };
    try {
      const events = await preview({ sql: "SELECT id FROM orders WHERE who = 'b'", rowLimit: 10, timeLimitSeconds: 60 });
      expect(endOf(events), JSON.stringify(events)).toMatchObject({ reason: 'ROW_LIMIT' });
      expect(events.filter((e) => e.__typename === 'PreviewStarted')).toHaveLength(1);
      expect(leased).toHaveLength(2);
      expect(firstJobLanded).toEqual([leased[0]]);
      // (Flink may pick another fresh TaskManager than the leased one: the lease moves.)
      expect(startOf(events).taskManager).toBe(second!.taskManagerId);
      expect(startOf(events).taskManager).not.toBe(leased[0]);
      expect(rowsOf(events).map((r: any) => Number(r.values[0]))).toEqual([2, 4, 6, 8, 10, 12, 14, 16, 18, 20]);
      // The first try's TaskManager is retired and its job does not run on.
      await waitFor('the first TaskManager gone', async () => ((await findMarkedProcesses(`weir-preview-tm:${parts.preview.cluster.hash}:${leased[0]}`)).length === 0 ? true : undefined), 20_000);
      const { jobManagerUrl } = await parts.preview.cluster.start();
      await waitFor('no running job', async () => {
        const { jobs } = (await (await fetch(`${jobManagerUrl}/jobs`)).json()) as { jobs: { status: string }[] };
        return jobs.every((j) => ['CANCELED', 'FAILED', 'FINISHED'].includes(j.status)) ? true : undefined;
      }, 30_000);
    } finally {
      pool.lease = realLease;
    }
  }, SLOW);

  it('keeps its idle TaskManagers pre-warmed: the classes a preview needs are loaded before they register', async () => {
    const dir = join(dataDir, 'preview', 'tm');
    const warmups = await waitFor('an idle TaskManager warmed up', async () => {
      const lines: string[] = [];
      for (const tm of await readdir(dir)) {
        const log = await readFile(join(dir, tm, 'taskmanager.log'), 'utf8').catch(() => '');
        const line = /WEIR_WARMUP loaded=(\d+) missing=(\d+) ms=(\d+)/.exec(log);
        if (line) lines.push(line[0]);
      }
      return lines.length > 0 ? lines : undefined;
    }, 60_000);
    for (const line of warmups) {
      const [, loaded, missing] = /loaded=(\d+) missing=(\d+)/.exec(line)!;
      // Every listed class exists in the pinned Flink/Kafka versions (a drift shows here).
      expect(Number(missing), line).toBe(0);
      expect(Number(loaded), line).toBeGreaterThan(1000);
    }
  }, SLOW);

  it('reports Flink’s error with its SQL position', async () => {
    const events = await preview({ sql: 'SELECT idd FROM orders', timeLimitSeconds: 30 });
    expect(endOf(events)).toMatchObject({ reason: 'ERROR', line: 1, column: 8 });
    expect(endOf(events).message).toMatch(/idd/);
  }, SLOW);

  it('rejects sandbox violations before anything reaches Flink', async () => {
    const events = await preview({ sql: "SELECT * FROM orders /*+ OPTIONS('topic' = 'x') */" });
    expect(events[0].errors[0].extensions.code).toBe('VALIDATION');
  }, SLOW);
});
