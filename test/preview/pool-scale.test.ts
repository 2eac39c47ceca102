import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionResult } from 'graphql';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { createLogger } from '../../src/platform/logger.js';
import { findMarkedProcesses } from '../../src/runtime/local/processes.js';
import { createLocalRuntime, type LocalRuntimeParts } from '../../src/runtime/create-runtime.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { waitFor } from '../helpers/local.js';

/**
 * Issue 4, acceptance 3: the TaskManager pool under sequential and concurrent previews
 * against a real session cluster and Kafka. 30 previews one after another, then 6 at
 * once from three accounts (set to tier PAID in the database: FREE allows one concurrent
 * preview per account). Afterwards: as many TaskManager processes as the pool size,
 * every preview on a TaskManager of its own, and no job left running on the JobManager.
 */
const POOL_SIZE = 2;
const SEQUENTIAL = 30;
const CONCURRENT_ACCOUNTS = 3;
const CONCURRENT_PER_ACCOUNT = 2;
const RECORDS = 10;
const SLOW = 900_000;

const PREVIEW = `subscription ($input: PreviewInput!) { preview(input: $input) {
  __typename
  ... on PreviewQueued { position }
  ... on PreviewStarted { taskManager leaseMs }
  ... on PreviewRows { rows { kind values } }
  ... on PreviewEnded { reason message } } }`;

let t: TestApp;
let parts: LocalRuntimeParts;
let dataDir: string;
let app: ReturnType<typeof buildApp>;
let hash: string;

interface Account {
  readonly key: string;
  readonly accountUuid: string;
}

async function ok(key: string, query: string, variables: Record<string, unknown> = {}) {
  const result = await t.gql(query, variables, { key });
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  return result.data!;
}

/** Runs one preview over SSE to its PreviewEnded; returns the events. */
async function preview(key: string, input: Record<string, unknown>): Promise<any[]> {
  const abort = new AbortController();
  const response = await app.yoga.fetch(
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

/** An account with a stream `events` of RECORDS records. */
async function accountWithStream(name: string): Promise<Account> {
  const { key, accountUuid } = await t.signUp(name);
  const created = await ok(key, 'mutation { createStream(input: { name: "events", kind: APPEND, fields: [{ name: "id", type: "BIGINT" }] }) { id } }');
  await ok(key, 'mutation ($id: ID!, $r: [JSON!]!) { publishRecords(streamId: $id, records: $r) { count } }', {
    id: created.createStream.id,
    r: Array.from({ length: RECORDS }, (_, i) => ({ id: i + 1 })),
  });
  return { key, accountUuid };
}

/** A bounded preview: RECORDS rows over EARLIEST, then ROW_LIMIT. */
const INPUT = { sql: 'SELECT id FROM events', rowLimit: RECORDS, timeLimitSeconds: 120 };

function expectRowLimit(events: any[]): string {
  expect(endOf(events), JSON.stringify(events)).toMatchObject({ reason: 'ROW_LIMIT' });
  expect(rowsOf(events)).toHaveLength(RECORDS);
  const started = startOf(events);
  expect(started?.taskManager, JSON.stringify(events)).toMatch(/^weir-tm-\d+$/);
  return started.taskManager as string;
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'weir-pool-scale-'));
  const logger = createLogger(process.env.WEIR_TEST_LOG_LEVEL ?? 'warn');
  parts = createLocalRuntime(
    // The queue bound is raised from 30 s: six previews at once start four TaskManagers
    // together on a 2-core machine, which can take longer than 30 s.
    { dataDir, cacheDir: undefined, checkpointIntervalMs: 1000, previewPoolSize: POOL_SIZE, previewQueueTimeoutMs: 180_000 },
    logger,
  );
  hash = parts.preview!.cluster.hash;
  t = await startTestApp({ runtime: parts.runtime, storage: parts.storage!, config: { dataDir } });
  app = buildApp({
    config: t.config,
    logger,
    db: t.database.db,
    secret: 'test-secret-test-secret-test-secret!',
    runtime: parts.runtime,
    storage: parts.storage,
    preview: parts.preview,
  });
  await parts.preview!.pool.start();
}, 600_000);

afterAll(async () => {
  await parts?.close();
  await t?.close();
  await rm(dataDir, { recursive: true, force: true });
  // Nothing this test started outlives it (other test files' processes are theirs).
  expect(await parts.processes()).toEqual([]);
  expect(await findMarkedProcesses('weir-preview-').then((found) => found.filter((p) => p.marker.includes(`:${hash}`)))).toEqual([]);
}, 120_000);

describe('the preview TaskManager pool at scale', () => {
  const used: string[] = [];

  it(`runs ${SEQUENTIAL} previews one after another, each on a TaskManager of its own`, async () => {
    const account = await accountWithStream('Sequential');
    for (let i = 0; i < SEQUENTIAL; i++) {
      used.push(expectRowLimit(await preview(account.key, INPUT)));
    }
    expect(new Set(used).size).toBe(SEQUENTIAL);
  }, SLOW);

  it(`runs ${CONCURRENT_ACCOUNTS * CONCURRENT_PER_ACCOUNT} previews at once from ${CONCURRENT_ACCOUNTS} PAID accounts`, async () => {
    const accounts: Account[] = [];
    for (let i = 0; i < CONCURRENT_ACCOUNTS; i++) accounts.push(await accountWithStream(`Concurrent ${i}`));
    // FREE allows 1 concurrent preview per account; PAID allows 5. Keys carry the tier
    // from the database at each request, so the update applies at once.
    await sql`UPDATE accounts SET tier = 'PAID' WHERE id IN (${sql.join(accounts.map((a) => a.accountUuid))})`.execute(t.database.db);
    const runs = await Promise.all(
      accounts.flatMap((account) => Array.from({ length: CONCURRENT_PER_ACCOUNT }, () => preview(account.key, INPUT))),
    );
    for (const events of runs) used.push(expectRowLimit(events));
    // Some waited for a TaskManager: six at once with a pool of two.
    expect(runs.some((events) => events.some((e) => e.__typename === 'PreviewQueued'))).toBe(true);
  }, SLOW);

  it('leaves the pool size of TaskManagers, every preview on a TaskManager no other used, and no job on the JobManager', async () => {
    expect(used).toHaveLength(SEQUENTIAL + CONCURRENT_ACCOUNTS * CONCURRENT_PER_ACCOUNT);
    expect(new Set(used).size).toBe(used.length);

    const cluster = parts.preview!.cluster;
    const pool = parts.preview!.pool;
    // The replacements register; the retired ones are gone.
    await waitFor(
      `${POOL_SIZE} idle TaskManagers and as many processes`,
      async () => {
        const stats = pool.stats();
        const processes = (await cluster.pids()).tm;
        return stats.idle === POOL_SIZE && stats.starting === 0 && stats.leased === 0 && stats.retiring === 0 && processes.length === POOL_SIZE
          ? true
          : undefined;
      },
      180_000,
    );
    const { jobManagerUrl } = await cluster.start();
    const registered = (await (await fetch(`${jobManagerUrl}/taskmanagers`)).json()) as { taskmanagers: { id: string }[] };
    expect(registered.taskmanagers).toHaveLength(POOL_SIZE);
    // The pool's TaskManagers never ran a preview.
    for (const tm of registered.taskmanagers) expect(used).not.toContain(tm.id);

    const overview = await waitFor(
      'every job terminal',
      async () => {
        const { jobs } = (await (await fetch(`${jobManagerUrl}/jobs/overview`)).json()) as { jobs: { jid: string; state: string }[] };
        return jobs.every((j) => ['FINISHED', 'FAILED', 'CANCELED'].includes(j.state)) ? jobs : undefined;
      },
      60_000,
    );
    expect(overview).toHaveLength(used.length);
    expect(overview.filter((j) => !['FINISHED', 'FAILED', 'CANCELED'].includes(j.state))).toEqual([]);
  }, SLOW);
});
