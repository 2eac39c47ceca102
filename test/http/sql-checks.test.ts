import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeId } from '../../src/graphql/global-id.js';
import * as pipelineRepo from '../../src/pipelines/pipeline.repository.js';
import { newId } from '../../src/platform/ids.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { sseResults } from '../helpers/sse.js';

/**
 * SQL built to keep the parser busy (found by an attacker: `ABS(` 200 deep took 4 s of
 * the event loop, 1,000 deep 33 s) is refused fast with a typed error, and the gateway
 * stays responsive meanwhile: `/readyz` on the real server is measured while each runs.
 */
const TIME_LIMIT_MS = 1000;
/** What /readyz takes, at the median, while SQL is being checked. */
const READY_MS = 100;
/**
 * What any one /readyz may take: on a loaded 2-core CI machine an idle gateway's slowest
 * of 100 answers took 200 ms (its median 2 ms), and 584 ms once with a second test run
 * beside it (2026-12-04); one that waited for a parse would take the parse's time, a
 * second or more.
 */
const READY_MAX_MS = 800;

const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

let server: TestServer;
let base: string;
let key: string;
let viewerKey: string;
let accountUuid: string;
let streamIds: { orders: string; big: string };

const nested = (open: string, inner: string, close: string, depth: number) => open.repeat(depth) + inner + close.repeat(depth);
const ABS_200 = nested('ABS(', 'amount', ')', 200);
const ABS_1000 = nested('ABS(', 'amount', ')', 1000);
const IF_120 = nested('IF(flag, ', 'amount', ', 0)', 120);
const CAST_200 = nested('CAST(', 'amount', ' AS BIGINT)', 200);
/** Under the nesting limit, yet seconds of parsing (about 10 s on a loaded machine): the time limit stops it. */
const MINUS_1000 = `${'- '.repeat(1000)}amount`;

beforeAll(async () => {
  server = await startTestServer({ config: { sqlCheckTimeoutMs: TIME_LIMIT_MS } });
  base = server.url.replace(/\/graphql$/, '');
  const account = await server.testApp.signUp('SQL checks');
  ({ key, accountUuid } = account);
  const stream = async (name: string, fields: string) => {
    const result = await server.testApp.gql(`mutation { createStream(input: { name: "${name}", kind: APPEND, fields: [${fields}] }) { id } }`, {}, { key });
    return decodeId(result.data!.createStream.id, 'Stream');
  };
  streamIds = {
    orders: await stream('orders', '{ name: "id", type: "BIGINT" }, { name: "amount", type: "BIGINT" }, { name: "flag", type: "BOOLEAN" }'),
    big: await stream('big', '{ name: "amount", type: "BIGINT" }'),
  };
  const viewer = await server.testApp.gql('mutation { createApiKey(input: { name: "v", role: VIEWER }) { secret } }', {}, { key });
  viewerKey = viewer.data!.createApiKey.secret;
  // Started before the measurements: a starting worker competes for the CPU.
  await server.app.sql.warm();
});
afterAll(async () => {
  await server?.close();
  expect(server.app.sql.stats().workers).toBe(0);
});

/** How long each /readyz took while `work` ran (at least one probe). */
async function readyzDuring(work: Promise<unknown>): Promise<number[]> {
  let settled = false;
  void work.finally(() => (settled = true)).catch(() => undefined);
  const latencies: number[] = [];
  do {
    const started = performance.now();
    const response = await fetch(`${base}/readyz`);
    expect(response.status).toBe(200);
    await response.text();
    latencies.push(performance.now() - started);
  } while (!settled);
  return latencies;
}

/** Runs `request`, probing /readyz meanwhile; its error's code and how long it took. */
async function measured(request: () => Promise<{ errors?: readonly any[] }>) {
  const started = performance.now();
  const work = request().then((result) => ({ result, tookMs: performance.now() - started }));
  const latencies = await readyzDuring(work);
  const { result, tookMs } = await work;
  return { error: result.errors?.[0], tookMs, latencies };
}

async function createPipeline(select: string, apiKey = key) {
  const response = await fetch(server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({
      query: 'mutation ($sql: String!) { createPipeline(input: { name: "p", sql: $sql }) { id } }',
      variables: { sql: `INSERT INTO big SELECT ${select} FROM orders` },
    }),
  });
  return (await response.json()) as { data?: any; errors?: any[] };
}

const PREVIEW = 'subscription ($input: PreviewInput!) { preview(input: $input) { __typename } }';
async function preview(input: Record<string, unknown>, apiKey = viewerKey) {
  const [first] = await sseResults(server.testApp, PREVIEW, { input }, apiKey);
  return first ?? {};
}

describe('SQL checks never hold the event loop', () => {
  it.each([
    ['ABS( 200 deep', ABS_200],
    ['ABS( 1,000 deep (5 KB)', ABS_1000],
    ['IF( 120 deep', IF_120],
    ['CAST( 200 deep', CAST_200],
  ])('createPipeline with %s is refused at once, naming the nesting limit', async (_name, select) => {
    const { error, tookMs, latencies } = await measured(() => createPipeline(select));
    expect(error.extensions).toMatchObject({ code: 'VALIDATION', field: ['input', 'sql'] });
    expect(error.message).toMatch(/nesting limit is 32/);
    expect(error.extensions.problems[0]).toMatchObject({ line: 1, column: expect.any(Number) });
    expect(tookMs).toBeLessThan(TIME_LIMIT_MS);
    expect(Math.max(...latencies)).toBeLessThan(READY_MAX_MS);
  });

  it.each([
    ['IF( 120 deep', IF_120],
    ['ABS( 1,000 deep', ABS_1000],
    ['CAST( 200 deep', CAST_200],
  ])('a preview (VIEWER key) of SQL with %s is refused at once', async (_name, select) => {
    const { error, tookMs, latencies } = await measured(() => preview({ sql: `SELECT ${select} FROM orders` }));
    expect(error.extensions).toMatchObject({ code: 'VALIDATION', field: ['input', 'sql'] });
    expect(error.message).toMatch(/nesting limit is 32/);
    expect(tookMs).toBeLessThan(TIME_LIMIT_MS);
    expect(Math.max(...latencies)).toBeLessThan(READY_MAX_MS);
  });

  it("a preview of a pipeline whose stored SQL nests too deeply (written before the limit) is refused", async () => {
    const id = newId();
    await pipelineRepo.insertPipeline(
      server.testApp.database.db,
      { id, account_id: accountUuid, name: 'old_deep', sql: `INSERT INTO big SELECT ${IF_120} FROM orders`, task_size: 'S', task_count: 1, delivery_guarantee: 'EXACTLY_ONCE', checkpoint_interval_ms: null },
      { outputId: streamIds.big, inputIds: [streamIds.orders] },
    );
    const pipelineId = (await server.testApp.gql('{ pipelines { edges { node { id name } } } }', {}, { key })).data!.pipelines.edges
      .map((edge: any) => edge.node)
      .find((node: any) => node.name === 'old_deep').id;
    const { error, latencies } = await measured(() => preview({ pipelineId }));
    expect(error.extensions).toMatchObject({ code: 'VALIDATION', field: ['input', 'pipelineId'] });
    expect(error.message).toMatch(/nesting limit is 32/);
    expect(Math.max(...latencies)).toBeLessThan(READY_MAX_MS);
  });

  it('SQL under the nesting limit that keeps the parser busy is stopped at the time limit, /readyz answering meanwhile', async () => {
    const before = server.app.sql.stats();
    const pipeline = await measured(() => createPipeline(MINUS_1000));
    expect(pipeline.error.extensions).toMatchObject({ code: 'SQL_TOO_COMPLEX', field: ['input', 'sql'], timeLimitMs: TIME_LIMIT_MS });
    expect(pipeline.tookMs).toBeGreaterThanOrEqual(TIME_LIMIT_MS);
    expect(pipeline.tookMs).toBeLessThan(3 * TIME_LIMIT_MS);
    // The check ran for a second: /readyz was asked many times, and never waited for it.
    expect(pipeline.latencies.length).toBeGreaterThanOrEqual(5);
    expect(median(pipeline.latencies)).toBeLessThan(READY_MS);
    expect(Math.max(...pipeline.latencies)).toBeLessThan(READY_MAX_MS);

    // The cut worker's replacement starts first: a starting worker competes for the CPU, not the event loop.
    await server.app.sql.warm();
    const previewed = await measured(() => preview({ sql: `SELECT ${MINUS_1000} FROM orders` }));
    expect(previewed.error.extensions).toMatchObject({ code: 'SQL_TOO_COMPLEX', field: ['input', 'sql'] });
    expect(previewed.latencies.length).toBeGreaterThanOrEqual(5);
    expect(median(previewed.latencies)).toBeLessThan(READY_MS);
    expect(Math.max(...previewed.latencies)).toBeLessThan(READY_MAX_MS);
    expect(server.app.sql.stats().cut).toBe(before.cut + 2);

    // The workers were replaced: a plain pipeline goes through.
    const created = await createPipeline('id AS amount');
    expect(created.errors).toBeUndefined();
    expect(created.data.createPipeline.id).toEqual(expect.any(String));
  });
});
