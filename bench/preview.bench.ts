/**
 * `npm run bench:preview`: previews on the real session cluster and Kafka, from one run:
 *
 *  - time to first row (subscribe → first PreviewRows at a graphql-ws client) with a warm
 *    pool (size 2, waiting before each run until both TaskManagers are idle) versus pool
 *    size 0 (each preview starts its TaskManager cold); medians over RUNS each, ratio.
 *    One untimed preview first in each phase (the cluster's first SQL compile).
 *  - rows per second (request → 5,000th row) of a 5,000-row preview delivered to a graphql-ws client over a real
 *    HTTP server versus the same SQL over the same records fetched directly from the SQL
 *    Gateway REST API (SqlGatewayClient, same TaskManager lease, same fetch backoff as
 *    the service); medians over THROUGHPUT_RUNS each, interleaved, ratio.
 *
 * RUNS (default 9, env BENCH_RUNS) and THROUGHPUT_RUNS (default 7, env
 * BENCH_THROUGHPUT_RUNS): on a 2-core machine single runs vary by ±30 %, and with 5 and 3
 * the ratios moved by more than their margins from one run to the next.
 *
 * Prints a table and writes bench/results/preview.json.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { buildApp } from '../src/app.js';
import { createHttpServer, type HttpServer } from '../src/http/server.js';
import { createLogger } from '../src/platform/logger.js';
import { flinkJson } from '../src/flink/flink-rest.js';
import { waitForPlacement } from '../src/flink/job-placement.js';
import { LocalPreviewCluster } from '../src/runtime/local/preview-cluster.js';
import { FetchBackoff, SqlGatewayClient } from '../src/preview/sql-gateway-client.js';
import { LocalPreviewPool } from '../src/runtime/local/preview-pool.js';
import { createLocalRuntime } from '../src/runtime/create-runtime.js';
import { flinkDistribution } from '../src/runtime/local/flink-distribution.js';
import { previewStreamTable } from '../src/flink/job-sql.js';
import { previewGroupOf } from '../src/streams/kafka-principals.js';
import { startTestApp } from '../test/helpers/app.js';
import { waitFor } from '../test/helpers/wait-for.js';
import { testConfig } from '../src/config.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 9);
const THROUGHPUT_RUNS = Number(process.env.BENCH_THROUGHPUT_RUNS ?? 7);
const WARM_POOL = 2;
const BIG = 5000;
const TARGETS = { warmFirstRowMs: 1500, coldOverWarm: 3, subscriptionOverDirect: 0.8 };

const PREVIEW = `subscription ($input: PreviewInput!) { preview(input: $input) {
  __typename
  ... on PreviewStarted { taskManager leaseMs }
  ... on PreviewRows { rows { kind values } }
  ... on PreviewEnded { reason message } } }`;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const round = (x: number, digits = 0) => Math.round(x * 10 ** digits) / 10 ** digits;
const out = (line = '') => process.stdout.write(`${line}\n`);

const dataDir = await mkdtemp(join(tmpdir(), 'weir-bench-preview-'));
const logger = createLogger(process.env.WEIR_BENCH_LOG_LEVEL ?? 'warn');
const parts = createLocalRuntime(
  testConfig({ dataDir, checkpointIntervalMs: 1000, previewPoolSize: WARM_POOL, previewQueueTimeoutMs: 120_000 }),
  logger,
);
const t = await startTestApp({ runtime: parts.runtime, storage: parts.storage!, config: { dataDir, requestTimeoutMs: 180_000 } });
const storage = parts.storage!;
let coldCluster: LocalPreviewCluster | undefined;
let coldPool: LocalPreviewPool | undefined;
const servers: { http: HttpServer; client: Client }[] = [];

/** A gateway on a real HTTP server with this preview cluster, and a graphql-ws client of it. */
async function serve(preview: { cluster: LocalPreviewCluster; pool: LocalPreviewPool }, key: string) {
  const app = buildApp({ config: t.config, logger, db: t.database.db, secret: 'test-secret-test-secret-test-secret!' /* startTestApp's: the keys signed up there must verify */, runtime: parts.runtime, storage, preview });
  const http = createHttpServer({ app, config: { ...t.config, host: '127.0.0.1', port: 0 }, ready: async () => {} });
  await http.listen();
  const client = createClient({
    url: `${http.url().replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${key}` },
    lazy: true,
    retryAttempts: 0,
  });
  servers.push({ http, client });
  return { app, client };
}

interface Run {
  readonly firstRowMs: number;
  readonly lastRowMs: number;
  readonly rows: number;
  readonly reason: string;
  readonly taskManager: string | undefined;
  readonly leaseMs: number | undefined;
}

/** One preview through graphql-ws; times from subscribe, on the client. */
async function subscribe(client: Client, input: Record<string, unknown>): Promise<Run> {
  const started = performance.now();
  let firstRowMs = Number.NaN;
  let lastRowMs = Number.NaN;
  let rows = 0;
  let reason = 'none';
  let taskManager: string | undefined;
  let leaseMs: number | undefined;
  for await (const result of client.iterate<{ preview: any }>({ query: PREVIEW, variables: { input } })) {
    if (result.errors) throw new Error(JSON.stringify(result.errors));
    const event = result.data!.preview;
    if (event.__typename === 'PreviewStarted') ({ taskManager, leaseMs } = event);
    if (event.__typename === 'PreviewRows') {
      const now = performance.now() - started;
      if (rows === 0) firstRowMs = now;
      rows += event.rows.length;
      lastRowMs = now;
    }
    if (event.__typename === 'PreviewEnded') {
      reason = event.reason;
      if (event.message) reason += `: ${event.message}`;
      break;
    }
  }
  return { firstRowMs, lastRowMs, rows, reason, taskManager, leaseMs };
}

/** The pool is at rest: `idle` TaskManagers idle, none starting or retiring, no stray processes. */
async function poolAtRest(cluster: LocalPreviewCluster, pool: LocalPreviewPool, idle: number): Promise<void> {
  await waitFor(
    `${idle} idle TaskManagers`,
    async () => {
      const s = pool.stats();
      const tms = (await cluster.pids()).tm.length;
      return s.idle === idle && s.starting === 0 && s.retiring === 0 && s.leased === 0 && tms === idle ? true : undefined;
    },
    180_000,
    50,
  );
}

try {
  out(`Weir preview benchmark: ${RUNS} time-to-first-row runs per pool, ${THROUGHPUT_RUNS} throughput runs per path, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const { key } = await t.signUp('bench');
  const gql = async (query: string, variables: Record<string, unknown> = {}) => {
    const result = await t.gql(query, variables, { key });
    if (result.errors) throw new Error(JSON.stringify(result.errors));
    return result.data!;
  };
  const small = (await gql('mutation { createStream(input: { name: "small", kind: APPEND, fields: [{ name: "id", type: "BIGINT" }] }) { id } }')).createStream.id;
  const big = (await gql('mutation { createStream(input: { name: "big", kind: APPEND, fields: [{ name: "id", type: "BIGINT" }, { name: "amount", type: "DECIMAL(12, 2)" }, { name: "who", type: "STRING" }] }) { id } }'))
    .createStream.id;
  const publish = (id: string, records: unknown[]) => gql('mutation ($id: ID!, $r: [JSON!]!) { publishRecords(streamId: $id, records: $r) { count } }', { id, r: records });
  await publish(small, Array.from({ length: 100 }, (_, i) => ({ id: i })));
  for (let from = 0; from < BIG; from += 1000) {
    await publish(big, Array.from({ length: 1000 }, (_, i) => ({ id: from + i, amount: `${(from + i) % 997}.25`, who: `user-${(from + i) % 50}` })));
  }

  // ---- warm pool: time to first row, then throughput ------------------------------------
  const warm = parts.preview!;
  const clusterStarted = performance.now();
  await warm.pool.start();
  await poolAtRest(warm.cluster, warm.pool, WARM_POOL);
  const clusterStartMs = performance.now() - clusterStarted;
  out(`session cluster + ${WARM_POOL} TaskManagers ready in ${round(clusterStartMs)} ms`);
  const { app, client } = await serve(warm, key);
  const FIRST_ROW = { sql: 'SELECT id FROM small', rowLimit: 1, timeLimitSeconds: 60 };

  await subscribe(client, FIRST_ROW); // untimed
  const warmRuns: Run[] = [];
  for (let i = 0; i < RUNS; i++) {
    await poolAtRest(warm.cluster, warm.pool, WARM_POOL);
    const run = await subscribe(client, FIRST_ROW);
    if (!run.reason.startsWith('ROW_LIMIT')) throw new Error(`warm preview ended ${run.reason}`);
    warmRuns.push(run);
    out(`warm ${i + 1}: first row ${round(run.firstRowMs)} ms (lease ${run.leaseMs} ms, ${run.taskManager})`);
  }

  const BIG_SQL = 'SELECT id, amount, who FROM big';
  const BIG_INPUT = { sql: BIG_SQL, rowLimit: BIG, timeLimitSeconds: 120 };
  const actor = await app.services.accounts.authenticate(key);
  const plan = await app.services.previews.prepare(actor, BIG_INPUT);
  const access = await storage.grantPreview(actor.accountId);

  /** The same preview straight from the SQL Gateway, on a leased TaskManager. */
  async function direct(): Promise<Run> {
    const { jobManagerUrl, gatewayUrl } = await warm.cluster.start();
    const started = performance.now();
    const lease = await warm.pool.lease(actor.accountId, 5);
    const gateway = new SqlGatewayClient(gatewayUrl);
    let session: string | undefined;
    let operation: string | undefined;
    let jobId: string | undefined;
    let landing: Promise<void> | undefined;
    let firstRowMs = Number.NaN;
    let lastRowMs = Number.NaN;
    let rows = 0;
    try {
      session = await gateway.openSession('weir-bench-direct', {
        'parallelism.default': '1',
        'table.exec.resource.default-parallelism': '1',
        'execution.runtime-mode': 'streaming',
      });
      for (const stream of plan.streams) {
        const topic = storage.topicFor(actor.accountId, stream.id);
        await gateway.execute(session, previewStreamTable(stream, { access, groupId: previewGroupOf(actor.accountId), topic, from: 'EARLIEST' }));
      }
      operation = await gateway.submit(session, plan.query);
      let token = 0;
      const backoff = new FetchBackoff();
      while (rows < BIG) {
        const page = await gateway.fetch(session, operation, token);
        if (!jobId && page.jobId) {
          jobId = page.jobId;
          // Ends the pool's submission window, as the service does (off the fetch path).
          landing = waitForPlacement(jobManagerUrl, jobId, 60_000).then((ids) => lease.landed(ids));
        }
        if (page.rows.length) {
          const now = performance.now() - started;
          if (rows === 0) firstRowMs = now;
          rows += page.rows.length;
          lastRowMs = now;
        }
        if (page.nextToken === undefined) break;
        token = page.nextToken;
        const wait = backoff.next(page.rows.length);
        if (wait > 0) await sleep(wait);
      }
      await landing;
      return { firstRowMs, lastRowMs, rows: Math.min(rows, BIG), reason: rows >= BIG ? 'ROW_LIMIT' : 'EOS', taskManager: lease.taskManagerId, leaseMs: lease.leaseMs };
    } finally {
      if (!landing) {
        try {
          lease.landed([]);
        } catch {
          /* nothing ran */
        }
      }
      if (session && operation) await gateway.closeOperation(session, operation).catch(() => undefined);
      if (session) await gateway.closeSession(session).catch(() => undefined);
      await lease.release();
      if (jobId) {
        await waitFor('the direct job ended', async () => {
          const job = await flinkJson<{ state: string }>(`${jobManagerUrl}/jobs/${jobId}`);
          return ['FINISHED', 'FAILED', 'CANCELED'].includes(job.state) ? true : undefined;
        }, 60_000, 50);
      }
    }
  }

  const rate = (r: Run) => (r.rows - 0) / ((r.lastRowMs - r.firstRowMs) / 1000);
  const endToEnd = (r: Run) => r.rows / (r.lastRowMs / 1000);
  const subRuns: Run[] = [];
  const directRuns: Run[] = [];
  await direct(); // untimed: the first 5,000-row job
  for (let i = 0; i < THROUGHPUT_RUNS; i++) {
    await poolAtRest(warm.cluster, warm.pool, WARM_POOL);
    const s = await subscribe(client, BIG_INPUT);
    if (s.rows !== BIG) throw new Error(`subscription delivered ${s.rows} rows (${s.reason})`);
    subRuns.push(s);
    await poolAtRest(warm.cluster, warm.pool, WARM_POOL);
    const d = await direct();
    if (d.rows !== BIG) throw new Error(`direct fetch got ${d.rows} rows`);
    directRuns.push(d);
    out(
      `throughput ${i + 1}: subscription ${round(rate(s))} rows/s (first→last ${round(s.lastRowMs - s.firstRowMs)} ms, request→last ${round(s.lastRowMs)} ms) | ` +
        `direct ${round(rate(d))} rows/s (first→last ${round(d.lastRowMs - d.firstRowMs)} ms, request→last ${round(d.lastRowMs)} ms)`,
    );
  }

  // ---- cold: pool size 0 on a second session cluster (the warm one is stopped first) ---
  await poolAtRest(warm.cluster, warm.pool, WARM_POOL); // the last preview's cleanup is done
  await parts.preview!.pool.close();
  await parts.preview!.cluster.close();
  coldCluster = new LocalPreviewCluster({ dir: join(dataDir, 'preview-cold'), distribution: flinkDistribution({ cacheDir: undefined, logger }), logger });
  coldPool = new LocalPreviewPool({ cluster: coldCluster, size: 0, queueTimeoutMs: 120_000, logger });
  await coldPool.start();
  const cold = await serve({ cluster: coldCluster, pool: coldPool }, key);
  await subscribe(cold.client, FIRST_ROW); // untimed
  const coldRuns: Run[] = [];
  for (let i = 0; i < RUNS; i++) {
    await poolAtRest(coldCluster, coldPool, 0);
    const run = await subscribe(cold.client, FIRST_ROW);
    if (!run.reason.startsWith('ROW_LIMIT')) throw new Error(`cold preview ended ${run.reason}`);
    coldRuns.push(run);
    out(`cold ${i + 1}: first row ${round(run.firstRowMs)} ms (lease ${run.leaseMs} ms, ${run.taskManager})`);
  }

  await poolAtRest(coldCluster, coldPool, 0);
  const warmMs = median(warmRuns.map((r) => r.firstRowMs));
  const coldMs = median(coldRuns.map((r) => r.firstRowMs));
  // Primary: request → 5,000th row. First → last row is reported too, but it is
  // degenerate here: Flink has all 5,000 rows buffered before the first fetch returns.
  const subRate = median(subRuns.map(endToEnd));
  const directRate = median(directRuns.map(endToEnd));
  const subE2e = median(subRuns.map(rate));
  const directE2e = median(directRuns.map(rate));
  const summary = {
    runs: RUNS,
    throughputRuns: THROUGHPUT_RUNS,
    loadAverage: loadavg(),
    clusterStartMs: round(clusterStartMs),
    timeToFirstRow: {
      warmPoolSize: WARM_POOL,
      medianWarmMs: round(warmMs),
      medianColdMs: round(coldMs),
      coldOverWarm: round(coldMs / warmMs, 2),
      medianWarmLeaseMs: median(warmRuns.map((r) => r.leaseMs ?? Number.NaN)),
      medianColdLeaseMs: median(coldRuns.map((r) => r.leaseMs ?? Number.NaN)),
      warm: warmRuns.map((r) => round(r.firstRowMs)),
      cold: coldRuns.map((r) => round(r.firstRowMs)),
    },
    throughput: {
      rows: BIG,
      sql: BIG_SQL,
      medianSubscriptionRowsPerSec: round(subRate),
      medianDirectRowsPerSec: round(directRate),
      subscriptionOverDirect: round(subRate / directRate, 2),
      measuredAs: 'rows / (request → 5,000th row at the client)',
      medianSubscriptionFirstToLastRowsPerSec: round(subE2e),
      medianDirectFirstToLastRowsPerSec: round(directE2e),
      subscription: subRuns.map((r) => ({ firstRowMs: round(r.firstRowMs), lastRowMs: round(r.lastRowMs) })),
      direct: directRuns.map((r) => ({ firstRowMs: round(r.firstRowMs), lastRowMs: round(r.lastRowMs) })),
    },
    targets: TARGETS,
    met: {
      warmFirstRow: warmMs < TARGETS.warmFirstRowMs,
      coldOverWarm: coldMs / warmMs >= TARGETS.coldOverWarm,
      subscriptionOverDirect: subRate / directRate >= TARGETS.subscriptionOverDirect,
    },
  };
  out();
  out('| measure                                        | value          | target   |');
  out('|------------------------------------------------|----------------|----------|');
  out(`| time to first row, warm pool (${WARM_POOL}), median        | ${`${round(warmMs)} ms`.padEnd(14)} | < ${TARGETS.warmFirstRowMs} ms |`);
  out(`| time to first row, pool size 0 (cold), median  | ${`${round(coldMs)} ms`.padEnd(14)} |          |`);
  out(`| cold / warm                                    | ${`${summary.timeToFirstRow.coldOverWarm}x`.padEnd(14)} | >= ${TARGETS.coldOverWarm}x    |`);
  out(`| graphql-ws rows/s (request→last row), median  | ${String(round(subRate)).padEnd(14)} |          |`);
  out(`| SQL Gateway direct rows/s (same), median       | ${String(round(directRate)).padEnd(14)} |          |`);
  out(`| subscription / direct                          | ${`${summary.throughput.subscriptionOverDirect}x`.padEnd(14)} | >= ${TARGETS.subscriptionOverDirect}x   |`);
  out(`| first→last row rows/s: subscription | direct  | ${`${round(subE2e)} | ${round(directE2e)}`.padEnd(14)} | (buffered: degenerate) |`);
  out(`met: ${JSON.stringify(summary.met)}`);
  await mkdir('bench/results', { recursive: true });
  await writeFile('bench/results/preview.json', `${JSON.stringify(summary, null, 2)}\n`);
  out('wrote bench/results/preview.json');
} finally {
  for (const { http, client } of servers) {
    await client.dispose();
    await http.close();
  }
  await coldPool?.close();
  await coldCluster?.close();
  await parts.close();
  await t.close();
  await rm(dataDir, { recursive: true, force: true });
}
