/**
 * `npm run bench:api`: the gateway as `npm start` serves it (real HTTP server, embedded
 * PGlite persisted in a temp dir, silent logs) measured from one run:
 *
 *  - signUp latency (p50/p95/p99/max) over sequential signups, keep-alive fetch;
 *  - req/s of a 50-pipeline page beside req/s of `{ __typename }`, with N concurrent
 *    clients for a fixed time after a warm-up.
 *
 * The server runs on the main thread; the clients run in a worker thread (this same
 * file), so load generation does not steal the server's event loop. Figures are printed
 * and written to bench/results/api.json. `--profile` (or a missed signUp target) adds a
 * breakdown of where a signUp's time goes.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { sql } from 'kysely';
import { buildApp } from '../src/app.js';
import { ApiKeyCodec } from '../src/accounts/api-key-codec.js';
import { testConfig } from '../src/config.js';
import { createHttpServer } from '../src/http/server.js';
import { openDatabase } from '../src/platform/database.js';
import { newId } from '../src/platform/ids.js';
import { createLogger } from '../src/platform/logger.js';
import { migrateToLatest } from '../src/platform/migrator.js';
import { loadOrCreateSecret } from '../src/platform/secret.js';
import { NoRuntime } from '../src/runtime/no-runtime.js';

const SETTINGS = Object.freeze({
  signUpWarmup: 50,
  signUps: 1000,
  concurrency: 16,
  warmupMs: 2000,
  durationMs: 5000,
  pipelines: 50,
  signUpP99TargetMs: 25,
});

const PIPELINES_QUERY = '{ pipelines(first: 50) { edges { node { id name sql actualState } } } }';
const TYPENAME_QUERY = '{ __typename }';
const SIGN_UP = 'mutation ($name: String!) { signUp(input: { name: $name }) { secret } }';

// ---------------------------------------------------------------------------------------
// Shared: statistics and one GraphQL request.

interface Latency {
  readonly n: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

function latency(samples: number[]): Latency {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
  const round = (ms: number) => Math.round(ms * 1000) / 1000;
  return {
    n: sorted.length,
    meanMs: round(sorted.reduce((sum, x) => sum + x, 0) / sorted.length),
    p50Ms: round(at(0.5)),
    p95Ms: round(at(0.95)),
    p99Ms: round(at(0.99)),
    maxMs: round(sorted[sorted.length - 1] ?? Number.NaN),
  };
}

interface GraphQLResponse {
  data?: Record<string, any> | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

async function graphql(url: string, query: string, variables: Record<string, unknown> = {}, key?: string) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as GraphQLResponse;
  return { ok: response.ok && !body.errors?.length, body };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------
// Worker thread: the clients.

type Command =
  | { readonly kind: 'signUps'; readonly url: string; readonly count: number; readonly prefix: string }
  | {
      readonly kind: 'load';
      readonly url: string;
      readonly query: string;
      readonly key: string | undefined;
      readonly concurrency: number;
      readonly warmupMs: number;
      readonly durationMs: number;
    };

interface SignUpsResult {
  readonly latency: Latency;
  readonly failures: number;
}

interface LoadResult {
  readonly requests: number;
  readonly errors: number;
  readonly seconds: number;
  readonly reqPerSec: number;
  readonly latency: Latency;
}

async function signUps(command: Extract<Command, { kind: 'signUps' }>): Promise<SignUpsResult> {
  const samples: number[] = [];
  let failures = 0;
  for (let i = 0; i < command.count; i++) {
    const start = performance.now();
    const { ok } = await graphql(command.url, SIGN_UP, { name: `${command.prefix}-${i}` });
    samples.push(performance.now() - start);
    if (!ok) failures += 1;
  }
  return { latency: latency(samples), failures };
}

async function load(command: Extract<Command, { kind: 'load' }>): Promise<LoadResult> {
  let measuring = false;
  let stopped = false;
  let errors = 0;
  const samples: number[] = [];
  const client = async () => {
    while (!stopped) {
      const start = performance.now();
      const { ok } = await graphql(command.url, command.query, {}, command.key);
      if (!measuring) continue;
      samples.push(performance.now() - start);
      if (!ok) errors += 1;
    }
  };
  const clients = Array.from({ length: command.concurrency }, client);
  await sleep(command.warmupMs);
  measuring = true;
  const start = performance.now();
  await sleep(command.durationMs);
  measuring = false;
  const seconds = (performance.now() - start) / 1000;
  stopped = true;
  await Promise.all(clients);
  return {
    requests: samples.length,
    errors,
    seconds: Math.round(seconds * 1000) / 1000,
    reqPerSec: Math.round(samples.length / seconds),
    latency: latency(samples),
  };
}

function runWorker(): void {
  parentPort!.on('message', (command: Command) => {
    const run = command.kind === 'signUps' ? signUps(command) : load(command);
    run.then(
      (result) => parentPort!.postMessage({ result }),
      (error: unknown) => parentPort!.postMessage({ error: error instanceof Error ? error.stack : String(error) }),
    );
  });
}

// ---------------------------------------------------------------------------------------
// Main thread: the gateway, setup, and the report.

function startClients() {
  // The worker is this same TypeScript file, so it registers tsx's loader before loading it.
  const bootstrap = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
    .then(({ register }) => { register(); return import(${JSON.stringify(import.meta.url)}); })`;
  const worker = new Worker(bootstrap, { eval: true, workerData: { role: 'clients' } });
  const ask = <T>(command: Command): Promise<T> =>
    new Promise((resolve, reject) => {
      worker.once('message', (message: { result?: T; error?: string }) =>
        message.error ? reject(new Error(message.error)) : resolve(message.result as T),
      );
      worker.once('error', reject);
      worker.postMessage(command);
    });
  return { ask, stop: () => worker.terminate() };
}

async function startGateway(dataDir: string) {
  const config = testConfig({
    logLevel: 'silent',
    host: '127.0.0.1',
    port: 0,
    dataDir,
    graphiql: false,
    signupRatePerMinute: 10_000_000,
  });
  const logger = createLogger(config.logLevel);
  const database = await openDatabase({ databaseUrl: undefined, pgliteDir: join(dataDir, 'pgdata') });
  await migrateToLatest(database.db);
  const secret = await loadOrCreateSecret(undefined, dataDir);
  const runtime = new NoRuntime(); // this benchmark measures the API, not Flink
  const app = buildApp({ config, logger, db: database.db, secret, runtime });
  const http = createHttpServer({ app, config, ready: async () => void (await sql`select 1`.execute(database.db)) });
  await http.listen();
  const stop = new AbortController();
  app.loop.start(stop.signal);
  return {
    app,
    database,
    secret,
    url: `${http.url()}/graphql`,
    async close() {
      await http.close();
      stop.abort();
      await app.loop.done();
      await runtime.close();
      await database.close();
    },
  };
}

type Gateway = Awaited<ReturnType<typeof startGateway>>;

async function must(url: string, query: string, variables: Record<string, unknown>, key?: string) {
  const { ok, body } = await graphql(url, query, variables, key);
  if (!ok) throw new Error(`setup failed: ${JSON.stringify(body.errors)}`);
  return body.data!;
}

/** An account with `count` pipelines `INSERT INTO sink SELECT id FROM src`; returns its key. */
async function accountWithPipelines(url: string, count: number): Promise<string> {
  const { signUp } = await must(url, SIGN_UP, { name: 'bench-pipelines' });
  const key: string = signUp.secret;
  for (const name of ['src', 'sink']) {
    await must(
      url,
      'mutation ($name: String!) { createStream(input: { name: $name, kind: APPEND, fields: [{ name: "id", type: "BIGINT" }] }) { id } }',
      { name },
      key,
    );
  }
  for (let i = 0; i < count; i++) {
    await must(
      url,
      'mutation ($name: String!) { createPipeline(input: { name: $name, sql: "INSERT INTO sink SELECT id FROM src" }) { id } }',
      { name: `p${String(i).padStart(2, '0')}` },
      key,
    );
  }
  const { pipelines } = await must(url, PIPELINES_QUERY, {}, key);
  if (pipelines.edges.length !== count) throw new Error(`expected ${count} pipelines, got ${pipelines.edges.length}`);
  return key;
}

/** Where a signUp's time goes: the same work with the layers above it peeled off one by one. */
async function profileSignUp(gateway: Gateway, n: number) {
  const time = async (run: (i: number) => Promise<unknown> | unknown) => {
    const samples: number[] = [];
    for (let i = 0; i < n; i++) {
      const start = performance.now();
      await run(i);
      samples.push(performance.now() - start);
    }
    return latency(samples);
  };
  const codec = new ApiKeyCodec(gateway.secret);
  const db = gateway.database.db;
  const yogaRequest = async (i: number) => {
    const request = new Request('http://bench/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: SIGN_UP, variables: { name: `profile-yoga-${i}` } }),
    });
    const response = await gateway.app.yoga.fetch(request, { clientAddress: '127.0.0.1' });
    return response.json();
  };
  return {
    'key issue (randomBytes + HMAC-SHA256)': await time(() => codec.issue()),
    'PGlite: select 1': await time(() => sql`select 1`.execute(db)),
    'PGlite: transaction, 2 inserts (as signUp)': await time(async () => {
      const issued = codec.issue();
      const accountId = newId();
      await db.transaction().execute(async (trx) => {
        await trx.insertInto('accounts').values({ id: accountId, name: 'profile', tier: 'FREE' }).returningAll().executeTakeFirstOrThrow();
        await trx
          .insertInto('api_keys')
          .values({ id: newId(), account_id: accountId, name: 'default', role: 'ADMIN', prefix: issued.prefix, key_hash: issued.hash })
          .returningAll()
          .executeTakeFirstOrThrow();
      });
    }),
    'AccountService.signUp (no GraphQL)': await time((i) =>
      gateway.app.services.accounts.signUp({ name: `profile-service-${i}` }, '127.0.0.1'),
    ),
    'yoga.fetch signUp (GraphQL, no socket)': await time(yogaRequest),
  };
}

function table(rows: (string | number)[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => String(row[column]).length)));
  return rows
    .map((row, index) => {
      const line = row.map((cell, column) =>
        column === 0 ? String(cell).padEnd(widths[column]!) : String(cell).padStart(widths[column]!),
      );
      return index === 0 ? `${line.join('  ')}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : line.join('  ');
    })
    .join('\n');
}

const ms = (value: number) => value.toFixed(2);

async function main(): Promise<void> {
  const profile = process.argv.includes('--profile');
  const dataDir = await mkdtemp(join(tmpdir(), 'weir-bench-'));
  const gateway = await startGateway(dataDir);
  const clients = startClients();
  try {
    const url = gateway.url;
    // Other work on the machine moves these figures a lot: the load average goes with them.
    const loadBefore = loadavg().map((x) => Math.round(x * 100) / 100);
    process.stdout.write(
      `Weir API benchmark: ${url} (PGlite in ${dataDir}), node ${process.version}, ${cpus().length} CPUs, load average ${loadBefore.join(' ')}\n\n`,
    );

    await clients.ask<SignUpsResult>({ kind: 'signUps', url, count: SETTINGS.signUpWarmup, prefix: 'warmup' });
    const signUp = await clients.ask<SignUpsResult>({ kind: 'signUps', url, count: SETTINGS.signUps, prefix: 'bench' });

    const key = await accountWithPipelines(url, SETTINGS.pipelines);
    const loadOf = (query: string, withKey: string | undefined) =>
      clients.ask<LoadResult>({
        kind: 'load',
        url,
        query,
        key: withKey,
        concurrency: SETTINGS.concurrency,
        warmupMs: SETTINGS.warmupMs,
        durationMs: SETTINGS.durationMs,
      });
    const pipelines = await loadOf(PIPELINES_QUERY, key);
    const typename = await loadOf(TYPENAME_QUERY, key);
    const typenameAnonymous = await loadOf(TYPENAME_QUERY, undefined);
    const ratio = Math.round((pipelines.reqPerSec / typename.reqPerSec) * 1000) / 1000;
    const targetMet = signUp.latency.p99Ms < SETTINGS.signUpP99TargetMs;

    const s = signUp.latency;
    process.stdout.write(
      `signUp over HTTP: ${s.n} sequential (after ${SETTINGS.signUpWarmup} warm-up), ${signUp.failures} failed\n` +
        table([
          ['', 'mean', 'p50', 'p95', 'p99', 'max'],
          ['signUp (ms)', ms(s.meanMs), ms(s.p50Ms), ms(s.p95Ms), ms(s.p99Ms), ms(s.maxMs)],
        ]) +
        `\ntarget p99 < ${SETTINGS.signUpP99TargetMs} ms: ${targetMet ? 'met' : 'MISSED'}\n\n`,
    );
    process.stdout.write(
      `Throughput: ${SETTINGS.concurrency} concurrent keep-alive clients, ${SETTINGS.warmupMs / 1000} s warm-up, ${SETTINGS.durationMs / 1000} s measured\n` +
        table([
          ['query', 'req/s', 'requests', 'errors', 'p50 ms', 'p99 ms', 'max ms'],
          ...(
            [
              ['pipelines(first: 50), 50 pipelines', pipelines],
              ['{ __typename } (with key)', typename],
              ['{ __typename } (no key)', typenameAnonymous],
            ] as const
          ).map(([name, r]) => [
            name,
            r.reqPerSec,
            r.requests,
            r.errors,
            ms(r.latency.p50Ms),
            ms(r.latency.p99Ms),
            ms(r.latency.maxMs),
          ]),
        ]) +
        `\nratio pipelines ÷ __typename (both with key): ${ratio}\n`,
    );

    let breakdown: Record<string, Latency> | undefined;
    if (profile || !targetMet) {
      breakdown = await profileSignUp(gateway, 300);
      process.stdout.write(
        `\nWhere a signUp's time goes (300 sequential each, in process)\n` +
          table([
            ['layer', 'mean', 'p50', 'p95', 'p99', 'max'],
            ...Object.entries(breakdown).map(([name, l]) => [name, ms(l.meanMs), ms(l.p50Ms), ms(l.p95Ms), ms(l.p99Ms), ms(l.maxMs)]),
          ]) +
          '\n',
      );
    }

    const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));
    await mkdir(resultsDir, { recursive: true });
    const file = join(resultsDir, 'api.json');
    await writeFile(
      file,
      `${JSON.stringify(
        {
          at: new Date().toISOString(),
          node: process.version,
          platform: `${process.platform} ${process.arch}`,
          cpus: cpus().length,
          cpuModel: cpus()[0]?.model,
          loadAverage: { before: loadBefore, after: loadavg().map((x) => Math.round(x * 100) / 100) },
          database: 'pglite (file-backed, temp dir)',
          settings: SETTINGS,
          signUp: { ...signUp, targetP99Ms: SETTINGS.signUpP99TargetMs, targetMet },
          throughput: {
            pipelines: { query: PIPELINES_QUERY, ...pipelines },
            typename: { query: TYPENAME_QUERY, withKey: true, ...typename },
            typenameAnonymous: { query: TYPENAME_QUERY, withKey: false, ...typenameAnonymous },
            ratioPipelinesToTypename: ratio,
          },
          ...(breakdown ? { signUpBreakdown: breakdown } : {}),
        },
        null,
        2,
      )}\n`,
    );
    process.stdout.write(`\nwrote ${file}\n`);
  } finally {
    await clients.stop();
    await gateway.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

if (isMainThread) {
  main().catch((error) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
} else if ((workerData as { role?: string } | undefined)?.role === 'clients') {
  runWorker();
}
