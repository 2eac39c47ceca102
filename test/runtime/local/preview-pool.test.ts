import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../../helpers/app.js';
import { waitFor } from '../../helpers/wait-for.js';
import { endOf, rowsOf, runPreview, startOf, startPreviewGateway, type PreviewGateway } from '../../helpers/preview.js';

/**
 * Issue 4, acceptance 3: the TaskManager pool under sequential and concurrent previews
 * against a real session cluster and Kafka. 30 previews one after another, then 6 at
 * once from three accounts (set to tier PAID in the database: FREE allows one concurrent
 * preview per account). After each: as many TaskManager processes as the pool size,
 * every preview on a TaskManager of its own, and none of its jobs left running on the
 * JobManager. Each test stands alone: it checks what its own previews left.
 */
const POOL_SIZE = 2;
const SEQUENTIAL = 30;
const CONCURRENT_ACCOUNTS = 3;
const CONCURRENT_PER_ACCOUNT = 2;
const RECORDS = 10;
const SLOW = 900_000;

let gateway: PreviewGateway;
let t: TestApp;

interface Account {
  readonly key: string;
  readonly accountUuid: string;
}

async function ok(key: string, query: string, variables: Record<string, unknown> = {}) {
  const result = await t.gql(query, variables, { key });
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  return result.data!;
}

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

const TERMINAL = ['FINISHED', 'FAILED', 'CANCELED'];

async function jobsOnTheJobManager(): Promise<{ jid: string; state: string }[]> {
  const { jobManagerUrl } = await gateway.parts.preview.cluster.start();
  return ((await (await fetch(`${jobManagerUrl}/jobs/overview`)).json()) as { jobs: { jid: string; state: string }[] }).jobs;
}

/**
 * After a test's previews, which ran on the TaskManagers `used` and were the only jobs
 * submitted since `jobsBefore`: the pool is whole again, none of its TaskManagers ran
 * one of them, and each of their jobs ended (one job per preview: none was submitted twice).
 */
async function expectPoolWholeAfter(used: readonly string[], jobsBefore: ReadonlySet<string>) {
  const { cluster, pool } = gateway.parts.preview;
  // The replacements register; the retired ones are gone.
  await waitFor(
    `${POOL_SIZE} idle TaskManagers and as many processes`,
    async () => {
      const stats = pool.stats();
      const processes = (await cluster.pids()).tm;
      return stats.idle === POOL_SIZE && stats.starting === 0 && stats.leased === 0 && stats.retiring === 0 && processes.length === POOL_SIZE;
    },
    180_000,
  );
  const { jobManagerUrl } = await cluster.start();
  const registered = (await (await fetch(`${jobManagerUrl}/taskmanagers`)).json()) as { taskmanagers: { id: string }[] };
  expect(registered.taskmanagers).toHaveLength(POOL_SIZE);
  // The pool's TaskManagers never ran one of these previews.
  for (const tm of registered.taskmanagers) expect(used).not.toContain(tm.id);

  const jobs = await waitFor(
    'every job of these previews terminal',
    async () => {
      const since = (await jobsOnTheJobManager()).filter((j) => !jobsBefore.has(j.jid));
      return since.every((j) => TERMINAL.includes(j.state)) ? since : undefined;
    },
    60_000,
  );
  expect(jobs).toHaveLength(used.length);
}

beforeAll(async () => {
  // The queue bound is raised from 30 s: six previews at once start four TaskManagers
  // together on a 2-core machine, which can take longer than 30 s.
  gateway = await startPreviewGateway('pool-scale', { poolSize: POOL_SIZE, queueTimeoutMs: 180_000 });
  ({ t } = gateway);
}, 600_000);

afterAll(() => gateway?.close(), 120_000);

describe('the preview TaskManager pool at scale', () => {
  it(`runs ${SEQUENTIAL} previews one after another, each on a TaskManager of its own`, async () => {
    const jobsBefore = new Set((await jobsOnTheJobManager()).map((j) => j.jid));
    const account = await accountWithStream('Sequential');
    const used: string[] = [];
    for (let i = 0; i < SEQUENTIAL; i++) {
      used.push(expectRowLimit(await runPreview(t, account.key, INPUT)));
    }
    expect(new Set(used).size).toBe(SEQUENTIAL);
    await expectPoolWholeAfter(used, jobsBefore);
  }, SLOW);

  it(`runs ${CONCURRENT_ACCOUNTS * CONCURRENT_PER_ACCOUNT} previews at once from ${CONCURRENT_ACCOUNTS} PAID accounts, each on a TaskManager of its own`, async () => {
    const jobsBefore = new Set((await jobsOnTheJobManager()).map((j) => j.jid));
    const accounts: Account[] = [];
    for (let i = 0; i < CONCURRENT_ACCOUNTS; i++) accounts.push(await accountWithStream(`Concurrent ${i}`));
    // FREE allows 1 concurrent preview per account; PAID allows 5. Keys carry the tier
    // from the database at each request, so the update applies at once.
    await sql`UPDATE accounts SET tier = 'PAID' WHERE id IN (${sql.join(accounts.map((a) => a.accountUuid))})`.execute(t.database.db);
    const runs = await Promise.all(
      accounts.flatMap((account) => Array.from({ length: CONCURRENT_PER_ACCOUNT }, () => runPreview(t, account.key, INPUT))),
    );
    const used = runs.map(expectRowLimit);
    expect(new Set(used).size).toBe(used.length);
    // Some waited for a TaskManager: six at once with a pool of two.
    expect(runs.some((events) => events.some((e) => e.__typename === 'PreviewQueued'))).toBe(true);
    await expectPoolWholeAfter(used, jobsBefore);
  }, SLOW);
});
