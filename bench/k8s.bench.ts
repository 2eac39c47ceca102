/**
 * `npm run bench:k8s`: the gateway (in process, PGlite in memory) with the Kubernetes
 * runtime against a real kube-apiserver (scripts/kube-testenv.sh), for 50 and then 200
 * jobs, each size on a fresh control plane:
 *
 *  - activations: N `activatePipeline` mutations (16 in flight) until every job's
 *    FlinkDeployment is created and confirmed by the apiserver (the runtime's watch cache),
 *    with the per-job latency from its mutation;
 *  - status changes → observe(): the test plays the operator and writes STABLE/RUNNING
 *    into N FlinkDeployments' status (16 in flight), reconciler idle; time until the
 *    runtime's observe() shows all N RUNNING, and the latency of each change;
 *  - status changes → API: the same for a second change (job RESTARTING → RECOVERING)
 *    with the reconciler woken by the runtime's watch, until the API (`pipelines` query)
 *    shows all N.
 *
 * Jobs are spread over accounts of 10 (so N/10 account namespaces are set up as well).
 * The reconcile loop is woken by activations and by the runtime's watch. Figures are
 * printed and written to bench/results/k8s.json; the growth from 50 to 200 is the ratio
 * of the times (4.0 = linear).
 */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { decodeId } from '../src/graphql/global-id.js';
import type { KubernetesRuntime } from '../src/runtime/kubernetes/kubernetes-runtime.js';
import { tierLimitsFromDb } from '../src/runtime/kubernetes/tier-limits.js';
import type { Db } from '../src/platform/database.js';
import { startTestApp, type TestApp } from '../test/helpers/app.js';
import { startKubeTestEnv, type KubeTestEnv } from '../test/helpers/kube.js';
import { waitFor } from '../test/helpers/wait-for.js';
import { clients, newRuntime } from '../test/runtime/kubernetes/fixtures.js';

const SIZES = [50, 200] as const;
const JOBS_PER_ACCOUNT = 10;
const IN_FLIGHT = 16;

interface Latency {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

function latency(samples: number[]): Latency {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN);
  return { p50Ms: at(0.5), p99Ms: at(0.99), maxMs: Math.round(sorted.at(-1) ?? Number.NaN) };
}

/** Runs `work` over `items` with at most `limit` in flight. */
async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

interface Job {
  readonly key: string;
  readonly id: string;
  readonly uuid: string;
  readonly accountUuid: string;
}

async function createJobs(t: TestApp, db: Db, n: number): Promise<Job[]> {
  const jobs: Job[] = [];
  for (let a = 0; a < n / JOBS_PER_ACCOUNT; a += 1) {
    const { key, accountUuid } = await t.signUp(`bench-${a}`);
    await db.updateTable('accounts').set({ tier: 'PAID' }).where('id', '=', accountUuid).execute();
    for (const name of ['orders', 'big_orders']) {
      const r = await t.gql(
        `mutation ($name: String!) { createStream(input: { name: $name, kind: APPEND, fields: [{ name: "id", type: "BIGINT" }, { name: "amount", type: "INT" }] }) { id } }`,
        { name },
        { key },
      );
      if (r.errors) throw new Error(JSON.stringify(r.errors));
    }
    for (let p = 0; p < JOBS_PER_ACCOUNT; p += 1) {
      const r = await t.gql(
        `mutation ($name: String!) { createPipeline(input: { name: $name, sql: "INSERT INTO big_orders SELECT id, amount FROM orders WHERE amount > 100" }) { id } }`,
        { name: `p${p}` },
        { key },
      );
      if (r.errors) throw new Error(JSON.stringify(r.errors));
      const id = r.data!.createPipeline.id as string;
      jobs.push({ key, id, uuid: decodeId(id, 'Pipeline'), accountUuid });
    }
  }
  return jobs;
}

/** Resolves with the time each awaited job first met `ready`, checked on every change of the runtime's cache. */
function track(runtime: KubernetesRuntime, ready: (id: string, job: { specVersion: number; phase: string | null }) => boolean, ids: string[]) {
  const seenAt = new Map<string, number>();
  let resolveAll!: () => void;
  const all = new Promise<void>((resolve) => (resolveAll = resolve));
  const check = async () => {
    for (const job of await runtime.observe()) {
      if (!seenAt.has(job.id) && ids.includes(job.id) && ready(job.id, job)) seenAt.set(job.id, performance.now());
    }
    if (seenAt.size === ids.length) resolveAll();
  };
  const stop = runtime.onChange(() => void check());
  void check();
  return { seenAt, all: all.finally(stop) };
}

async function measure(n: number) {
  const envStarted = performance.now();
  const env: KubeTestEnv = await startKubeTestEnv();
  const envStartMs = performance.now() - envStarted;
  let db: Db | undefined;
  const runtime = newRuntime(env.admin, { tierLimits: (accountId) => tierLimitsFromDb(db!)(accountId) });
  // Passes only when woken (activations; the watch in the last round), not on a timer.
  const t = await startTestApp({ runtime, config: { reconcileIntervalMs: 600_000 } });
  db = t.database.db;
  const stopLoop = new AbortController();
  try {
    const jobs = await createJobs(t, db, n);
    const kube = clients(env.admin);
    t.app.loop.start(stopLoop.signal);

    // Activations → FlinkDeployments created.
    const ids = jobs.map((j) => j.uuid);
    const created = track(runtime, (_, job) => job.specVersion === 1, ids);
    const sentAt = new Map<string, number>();
    const activationStart = performance.now();
    await pool(jobs, IN_FLIGHT, async (job) => {
      sentAt.set(job.uuid, performance.now());
      const r = await t.gql('mutation ($id: ID!) { activatePipeline(id: $id) { id } }', { id: job.id }, { key: job.key });
      if (r.errors) throw new Error(JSON.stringify(r.errors));
    });
    await created.all;
    const activationMs = performance.now() - activationStart;
    const activationLatency = latency(ids.map((id) => created.seenAt.get(id)! - sentAt.get(id)!));
    const namespaces = [...new Set(jobs.map((j) => runtime.namespaceOf(j.accountUuid)))];
    let counted = 0;
    for (const ns of namespaces) counted += (await kube.deployments(ns)).length;
    if (counted !== n) throw new Error(`expected ${n} FlinkDeployments, found ${counted}`);

    // Status changes → observe() → the API.
    const running = track(runtime, (_, job) => job.phase === 'RUNNING', ids);
    const writtenAt = new Map<string, number>();
    const statusStart = performance.now();
    await pool(jobs, IN_FLIGHT, async (job) => {
      writtenAt.set(job.uuid, performance.now());
      await kube.setStatus(runtime.namespaceOf(job.accountUuid), `pipe-${job.uuid}`, {
        lifecycleState: 'STABLE',
        jobManagerDeploymentStatus: 'READY',
        jobStatus: { state: 'RUNNING' },
      });
    });
    await running.all;
    const statusObserveMs = performance.now() - statusStart;
    const observeLatency = latency(ids.map((id) => running.seenAt.get(id)! - writtenAt.get(id)!));

    // Status changes → the API: buildApp wires the watch to wake the reconciler. First let
    // the RUNNING statuses above reach the API, so the next change starts from rest.
    const byAccount = new Map(jobs.map((j) => [j.accountUuid, j.key]));
    await waitFor('the API to show every job RUNNING', async () => {
      for (const key of byAccount.values()) {
        const r = await t.gql('{ pipelines(first: 50) { edges { node { actualState } } } }', {}, { key });
        if (r.data!.pipelines.edges.some((e: any) => e.node.actualState !== 'RUNNING')) return false;
      }
      return true;
    });
    const apiStart = performance.now();
    await pool(jobs, IN_FLIGHT, async (job) => {
      await kube.setStatus(runtime.namespaceOf(job.accountUuid), `pipe-${job.uuid}`, { jobStatus: { state: 'RESTARTING' } });
    });
    await waitFor('the API to show every job RECOVERING', async () => {
      for (const key of byAccount.values()) {
        const r = await t.gql('{ pipelines(first: 50) { edges { node { actualState } } } }', {}, { key });
        if (r.data!.pipelines.edges.some((e: any) => e.node.actualState !== 'RECOVERING')) return false;
      }
      return true;
    }, 300_000, 50);
    const statusApiMs = performance.now() - apiStart;

    return {
      jobs: n,
      accounts: byAccount.size,
      controlPlaneStartMs: Math.round(envStartMs),
      activationsToFlinkDeploymentsMs: Math.round(activationMs),
      activationLatency,
      statusChangesToObserveMs: Math.round(statusObserveMs),
      statusChangeToObserveLatency: observeLatency,
      statusChangesToApiMs: Math.round(statusApiMs),
      watch: { ...runtime.watchStats },
    };
  } finally {
    stopLoop.abort();
    await t.app.loop.done();
    await runtime.close();
    await t.close();
    await env.stop();
  }
}

async function main(): Promise<void> {
  const buildStart = performance.now();
  await promisify(execFile)(fileURLToPath(new URL('../scripts/kube-testenv.sh', import.meta.url)), ['build']);
  const cachedBuildMs = Math.round(performance.now() - buildStart);

  const results = [];
  for (const n of SIZES) {
    const result = await measure(n);
    results.push(result);
    process.stdout.write(
      `${n} jobs (${result.accounts} accounts): activations → FlinkDeployments ${result.activationsToFlinkDeploymentsMs} ms ` +
        `(per job p50 ${result.activationLatency.p50Ms} ms, p99 ${result.activationLatency.p99Ms} ms); ` +
        `status changes → observe() ${result.statusChangesToObserveMs} ms (per change p50 ${result.statusChangeToObserveLatency.p50Ms} ms, ` +
        `p99 ${result.statusChangeToObserveLatency.p99Ms} ms), → API ${result.statusChangesToApiMs} ms\n`,
    );
  }
  const [small, large] = results as [(typeof results)[0], (typeof results)[0]];
  const ratio = (a: number, b: number) => Math.round((b / a) * 100) / 100;
  const growth = {
    sizeRatio: SIZES[1] / SIZES[0],
    activations: ratio(small.activationsToFlinkDeploymentsMs, large.activationsToFlinkDeploymentsMs),
    statusToObserve: ratio(small.statusChangesToObserveMs, large.statusChangesToObserveMs),
    statusToApi: ratio(small.statusChangesToApiMs, large.statusChangesToApiMs),
  };
  process.stdout.write(
    `growth 50 → 200 (4.0 = linear): activations ×${growth.activations}, status → observe() ×${growth.statusToObserve}, ` +
      `status → API ×${growth.statusToApi}\n`,
  );
  const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));
  await mkdir(resultsDir, { recursive: true });
  const file = join(resultsDir, 'k8s.json');
  await writeFile(
    file,
    `${JSON.stringify(
      {
        at: new Date().toISOString(),
        machine: { cpus: cpus().length, loadavg: loadavg().map((l) => Math.round(l * 100) / 100), node: process.version },
        harness: { cachedBuildMs },
        settings: { sizes: SIZES, jobsPerAccount: JOBS_PER_ACCOUNT, inFlight: IN_FLIGHT },
        results,
        growth,
      },
      null,
      2,
    )}\n`,
  );
  process.stdout.write(`written to ${file}\n`);
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`bench:k8s failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
