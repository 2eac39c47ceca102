/**
 * `npm run bench:k8s-e2e` (as root): Weir with `WEIR_RUNTIME=kubernetes` on the
 * single-node cluster (scripts/kube-node.sh) with the real Flink Kubernetes Operator,
 * through Weir's API, from one run:
 *
 *  - activation → RUNNING (the API, from the operator's status) of a Kafka → Kafka
 *    pipeline on real JobManager and TaskManager pods, and deactivation → every pod of it
 *    gone; median of RUNS (default 3, env BENCH_RUNS; 0 measures previews only);
 *  - memory per job: the resident memory (cgroup `total_rss`) of its JobManager pod plus its
 *    TaskManager pod, beside the local runtime's figure for the same pipeline (its one JVM's
 *    VmRSS, measured first in the same run);
 *  - preview time to first row (subscribe → first PreviewRows at a graphql-ws client) warm,
 *    with POOL_SIZE=2 idle pre-warmed TaskManager pods, versus cold: both idle pods deleted
 *    just before, so the preview waits for Flink to start and register a fresh pod (on
 *    Kubernetes the pool cannot start a TaskManager on demand: Flink's native resource
 *    manager starts them as idle spares, so WEIR_PREVIEW_POOL_SIZE=0 there means no
 *    previews). One untimed preview first (the SQL Gateway's first compile); medians over
 *    PREVIEW_RUNS (default 3, env BENCH_PREVIEW_RUNS) each, interleaved; the ratio. The
 *    environment's WEIR_K8S_PREVIEW_CPU_LIMIT, if set, is the session cluster's.
 *
 * Prints the figures and writes bench/results/k8s-e2e.json. Takes about 6 minutes on 2 cores.
 */
import { readFile, readdir, mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { decodeId } from '../src/graphql/global-id.js';
import { residentBytes } from '../src/runtime/local/processes.js';
import { startLocalApp } from '../test/helpers/local.js';
import { PREVIEW } from '../test/helpers/preview.js';
import { waitFor } from '../test/helpers/wait-for.js';
import { PLATFORM_NAMESPACE, podsOf, startWeirOnNode, type WeirOnNode } from '../test/runtime/kubernetes/e2e/weir-on-node.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const PREVIEW_RUNS = Number(process.env.BENCH_PREVIEW_RUNS ?? 3);
const POOL_SIZE = 2;
/** WEIR_K8S_PREVIEW_CPU_LIMIT for the session cluster's JobManager and SQL Gateway (unset: their requests). */
const PREVIEW_CPU_LIMIT = process.env.WEIR_K8S_PREVIEW_CPU_LIMIT;
const MB = 1024 * 1024;
const POD_START_MS = 360_000;

const out = (line: string) => process.stdout.write(`${line}\n`);
const median = (xs: number[]) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

if (process.getuid?.() !== 0) {
  process.stderr.write('bench:k8s-e2e needs root: the node runs a kubelet, containerd and network namespaces\n');
  process.exit(2);
}

const COPY_FIELDS = '[{ name: "id", type: "BIGINT" }, { name: "amount", type: "INT" }]';

/** The local runtime's figure: the same pipeline's one JVM, resident memory (MB). */
async function localJobRssMb(): Promise<number> {
  const t = await startLocalApp({ reconcileIntervalMs: 200 });
  try {
    const { key } = await t.signUp('bench-local');
    const gql = async (query: string, variables: Record<string, unknown> = {}) => {
      const result = await t.gql(query, variables, { key });
      if (result.errors) throw new Error(JSON.stringify(result.errors));
      return result.data!;
    };
    await gql(`mutation { createStream(input: { name: "src", kind: APPEND, fields: ${COPY_FIELDS} }) { id } }`);
    await gql(`mutation { createStream(input: { name: "dst", kind: APPEND, fields: ${COPY_FIELDS} }) { id } }`);
    const id = (await gql('mutation { createPipeline(input: { name: "copy", sql: "INSERT INTO dst SELECT id, amount FROM src" }) { id } }'))
      .createPipeline.id as string;
    await gql('mutation ($id: ID!) { activatePipeline(id: $id) { id } }', { id });
    await waitFor('local RUNNING', async () => {
      const s = (await gql('query ($id: ID!) { pipeline(id: $id) { actualState actualReason } }', { id })).pipeline;
      if (s.actualState === 'FAILED') throw new Error(s.actualReason);
      return s.actualState === 'RUNNING' || undefined;
    }, 300_000, 200);
    const pid = (await t.runtime.pids()).get(decodeId(id, 'Pipeline'))![0]!;
    const rss = ((await residentBytes(pid)) ?? 0) / MB;
    await gql('mutation ($id: ID!) { deactivatePipeline(id: $id) { id } }', { id });
    return rss;
  } finally {
    await t.close();
  }
}

/**
 * A pod's resident memory: `total_rss` of its memory cgroup (cgroup v1, the kubelet's
 * cgroupfs layout under the node's cgroup root, scripts/kube-node.sh: weir-node/kubepods/[<qos>/]pod<uid>).
 */
async function podRssMb(uid: string): Promise<number> {
  const want = `pod${uid}`;
  const search = async (dir: string, depth: number): Promise<string | undefined> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (!entry.isDirectory()) continue;
      if (entry.name === want) return join(dir, entry.name);
      if (depth > 0) {
        const found = await search(join(dir, entry.name), depth - 1);
        if (found) return found;
      }
    }
    return undefined;
  };
  const dir = await search('/sys/fs/cgroup/memory/weir-node/kubepods', 2);
  if (!dir) throw new Error(`no memory cgroup for pod ${uid}`);
  const stat = await readFile(join(dir, 'memory.stat'), 'utf8');
  return Number(/^total_rss (\d+)$/m.exec(stat)?.[1] ?? Number.NaN) / MB;
}

const pods = (weir: WeirOnNode, namespace: string, selector: string) => podsOf(weir.node, namespace, selector);

async function activations(weir: WeirOnNode) {
  const { key, accountUuid } = await weir.t.signUp('bench');
  const ok = (query: string, variables: Record<string, unknown> = {}) => weir.ok(query, variables, key);
  await ok(`mutation { createStream(input: { name: "src", kind: APPEND, fields: ${COPY_FIELDS} }) { id } }`);
  await ok(`mutation { createStream(input: { name: "dst", kind: APPEND, fields: ${COPY_FIELDS} }) { id } }`);
  const namespace = `weir-acct-${accountUuid}`;
  const runs: { activateToRunningMs: number; deactivateToPodsGoneMs: number; jobManagerRssMb: number; taskManagerRssMb: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    const id = (await ok(`mutation { createPipeline(input: { name: "copy${i}", sql: "INSERT INTO dst SELECT id, amount FROM src" }) { id } }`))
      .createPipeline.id as string;
    const name = `pipe-${decodeId(id, 'Pipeline')}`;
    const started = Date.now();
    await ok('mutation ($id: ID!) { activatePipeline(id: $id) { id } }', { id });
    await waitFor('RUNNING', async () => {
      const s = (await ok('query ($id: ID!) { pipeline(id: $id) { actualState actualReason } }', { id })).pipeline;
      if (s.actualState === 'FAILED') throw new Error(s.actualReason);
      return s.actualState === 'RUNNING' || undefined;
    }, POD_START_MS, 250);
    const activateToRunningMs = Date.now() - started;
    const running = await waitFor('both pods running', async () => {
      const found = await pods(weir, namespace, `app=${name}`);
      return found.length === 2 && found.every((p) => p.status.phase === 'Running') ? found : undefined;
    }, POD_START_MS, 500);
    const rssOf = (component: string) => podRssMb(running.find((p) => p.metadata.labels.component === component)!.metadata.uid);
    const jobManagerRssMb = await rssOf('jobmanager');
    const taskManagerRssMb = await rssOf('taskmanager');

    const stopping = Date.now();
    await ok('mutation ($id: ID!) { deactivatePipeline(id: $id) { id } }', { id });
    await waitFor('pods gone', async () => ((await pods(weir, namespace, `app=${name}`)).length === 0 || undefined), 300_000, 250);
    const deactivateToPodsGoneMs = Date.now() - stopping;
    runs.push({ activateToRunningMs, deactivateToPodsGoneMs, jobManagerRssMb, taskManagerRssMb });
    out(
      `activation ${i + 1}: →RUNNING ${activateToRunningMs} ms, deactivation → pods gone ${deactivateToPodsGoneMs} ms, ` +
        `JobManager pod ${jobManagerRssMb.toFixed(0)} MB + TaskManager pod ${taskManagerRssMb.toFixed(0)} MB`,
    );
  }
  return runs;
}

async function previews(weir: WeirOnNode) {
  const { key } = await weir.t.signUp('bench-preview');
  const streamId = (await weir.ok(`mutation { createStream(input: { name: "orders", kind: APPEND, fields: ${COPY_FIELDS} }) { id } }`, {}, key))
    .createStream.id as string;
  await weir.ok('mutation ($id: ID!, $r: [JSON!]!) { publishRecords(streamId: $id, records: $r) { count } }', {
    id: streamId,
    r: Array.from({ length: 100 }, (_, i) => ({ id: i + 1, amount: i })),
  }, key);
  const pool = weir.parts.preview!.pool;
  const idlePods = async () =>
    (await pods(weir, PLATFORM_NAMESPACE, 'app=weir-preview,component=taskmanager')).filter((p) => p.status.phase === 'Running' && !p.metadata.deletionTimestamp);
  const fullPool = () => waitFor('a full pool', async () => (pool.stats().idle === POOL_SIZE && (await idlePods()).length === POOL_SIZE) || undefined, POD_START_MS, 250);

  /** Subscribe → first rows, over graphql-ws; the preview is closed at its first rows. */
  const firstRowMs = async (): Promise<number> => {
    const client = createClient({ url: weir.server.url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: `Bearer ${key}` } });
    try {
      const started = performance.now();
      return await new Promise<number>((resolve, reject) => {
        const dispose = client.subscribe(
          { query: PREVIEW, variables: { input: { sql: 'SELECT id, amount FROM orders', rowLimit: 100, timeLimitSeconds: 60 } } },
          {
            next: (result) => {
              const event = (result.data as { preview?: { __typename: string; reason?: string } } | undefined)?.preview;
              if (result.errors) reject(new Error(JSON.stringify(result.errors)));
              else if (event?.__typename === 'PreviewRows') {
                resolve(performance.now() - started);
                dispose();
              } else if (event?.__typename === 'PreviewEnded') reject(new Error(`ended before rows: ${JSON.stringify(event)}`));
            },
            error: reject,
            complete: () => reject(new Error('completed before rows')),
          },
        );
      });
    } finally {
      await client.dispose();
    }
  };

  const startedAt = Date.now();
  await pool.start();
  await fullPool();
  const poolReadyMs = Date.now() - startedAt;
  out(`preview session cluster applied → ${POOL_SIZE} idle TaskManager pods in ${poolReadyMs} ms`);
  await firstRowMs(); // untimed: the SQL Gateway's first compile
  const warm: number[] = [];
  const cold: number[] = [];
  for (let i = 0; i < PREVIEW_RUNS; i++) {
    await fullPool();
    warm.push(await firstRowMs());
    await fullPool();
    // Cold: no idle TaskManager; Flink replaces the deleted pods, one of them serves.
    for (const pod of await idlePods()) await weir.node.kubectl('-n', PLATFORM_NAMESPACE, 'delete', 'pod', pod.metadata.name, '--grace-period', '0', '--force');
    await waitFor('the pool empty', async () => pool.stats().idle === 0 || undefined, 30_000, 50);
    cold.push(await firstRowMs());
    out(`preview ${i + 1}: first row warm ${warm.at(-1)!.toFixed(0)} ms, cold ${cold.at(-1)!.toFixed(0)} ms`);
  }
  return { poolReadyMs, warm, cold };
}

let weir: WeirOnNode | undefined;
try {
  out(`Weir on the node benchmark: ${RUNS} activations, ${PREVIEW_RUNS} warm and cold previews, preview CPU limit ${PREVIEW_CPU_LIMIT ?? 'unset'}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  // BENCH_RUNS=0 measures previews only (no activations, no memory figures).
  const localRssMb = RUNS > 0 ? await localJobRssMb() : NaN;
  if (RUNS > 0) out(`local runtime: the pipeline's JVM ${localRssMb.toFixed(0)} MB`);
  const setupStarted = Date.now();
  weir = await startWeirOnNode({
    previewPoolSize: POOL_SIZE,
    env: { WEIR_PREVIEW_QUEUE_TIMEOUT_MS: '300000', ...(PREVIEW_CPU_LIMIT ? { WEIR_K8S_PREVIEW_CPU_LIMIT: PREVIEW_CPU_LIMIT } : {}) },
  });
  const setupMs = Date.now() - setupStarted;
  out(`node, operator, image, Kafka, object store and gateway ready in ${setupMs} ms`);
  const runs = RUNS > 0 ? await activations(weir) : [];
  const preview = await previews(weir);
  const podRss = runs.map((r) => r.jobManagerRssMb + r.taskManagerRssMb);
  const summary = {
    runs: RUNS,
    previewRuns: PREVIEW_RUNS,
    previewCpuLimit: PREVIEW_CPU_LIMIT ?? null,
    loadAverage: loadavg(),
    setupMs,
    medianActivateToRunningMs: median(runs.map((r) => r.activateToRunningMs)),
    medianDeactivateToPodsGoneMs: median(runs.map((r) => r.deactivateToPodsGoneMs)),
    medianJobPodsRssMb: median(podRss),
    medianJobManagerPodRssMb: median(runs.map((r) => r.jobManagerRssMb)),
    medianTaskManagerPodRssMb: median(runs.map((r) => r.taskManagerRssMb)),
    localJobRssMb: localRssMb,
    previewPoolReadyMs: preview.poolReadyMs,
    medianPreviewFirstRowWarmMs: median(preview.warm),
    medianPreviewFirstRowColdMs: median(preview.cold),
    coldOverWarm: median(preview.cold) / median(preview.warm),
    goals: { warmFirstRowBelowMs: 1500, coldOverWarmAtLeast: 3 },
    detail: { activations: runs, previewWarmMs: preview.warm, previewColdMs: preview.cold },
  };
  out('');
  out(`activation → RUNNING median ${summary.medianActivateToRunningMs} ms | deactivation → pods gone median ${summary.medianDeactivateToPodsGoneMs} ms`);
  out(
    `memory per job: JobManager + TaskManager pods ${summary.medianJobPodsRssMb.toFixed(0)} MB ` +
      `(${summary.medianJobManagerPodRssMb.toFixed(0)} + ${summary.medianTaskManagerPodRssMb.toFixed(0)}) vs local runtime ${localRssMb.toFixed(0)} MB ` +
      `(${(summary.medianJobPodsRssMb / localRssMb).toFixed(1)}×)`,
  );
  out(
    `preview first row: warm ${summary.medianPreviewFirstRowWarmMs.toFixed(0)} ms (goal < 1500) | cold ${summary.medianPreviewFirstRowColdMs.toFixed(0)} ms | ` +
      `cold ÷ warm ${summary.coldOverWarm.toFixed(1)}× (goal ≥ 3)`,
  );
  await mkdir('bench/results', { recursive: true });
  await writeFile('bench/results/k8s-e2e.json', `${JSON.stringify(summary, null, 2)}\n`);
  out('wrote bench/results/k8s-e2e.json');
} finally {
  await weir?.close();
}
