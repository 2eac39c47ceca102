/**
 * `npm run bench:lifecycle`: what state costs and saves, from one run of the local runtime.
 *
 * 1. End-to-end latency, publish → visible in the output stream (read_committed, as every
 *    reader reads), of an EXACTLY_ONCE and an AT_LEAST_ONCE copy of one input, side by
 *    side, at the default checkpoint interval: median and p99.
 * 2. Stopping a job with a savepoint beside stopping it without one (the runtime's remove
 *    with and without `savepoint`), and resuming from the savepoint beside a fresh start
 *    (activate, restore LATEST vs NONE, → RUNNING): medians of BENCH_RUNS each.
 * 3. A snapshot on demand of the running job (snapshotPipeline, the job runs on), beside
 *    the stop with a savepoint: median of BENCH_RUNS, and its size.
 *
 * The reconciler is driven here, a pass every 100 ms (no loop of its own), so that the
 * plain stop can be made between passes. Writes bench/results/lifecycle.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../src/config.js';
import { decodeId } from '../src/graphql/global-id.js';
import { startLocalApp } from '../test/helpers/local.js';
import { waitFor } from '../test/helpers/wait-for.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const RECORDS = Number(process.env.BENCH_RECORDS ?? 100);
const PUBLISH_EVERY_MS = 100;
const CHECKPOINT_INTERVAL_MS = loadConfig({}).checkpointIntervalMs;

const quantile = (xs: readonly number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
};
const median = (xs: readonly number[]) => quantile(xs, 0.5);

const t = await startLocalApp({ loop: false });
const { key, accountUuid } = await t.signUp('bench');
const gql = async (query: string, variables: Record<string, unknown> = {}) => {
  const result = await t.gql(query, variables, { key });
  if (result.errors) throw new Error(JSON.stringify(result.errors));
  return result.data!;
};

let driving = false;
let driver: Promise<void> | undefined;
function startDriving() {
  driving = true;
  driver ??= (async () => {
    while (driving) {
      await t.app.reconciler.pass().catch((error: unknown) => process.stderr.write(`pass failed: ${String(error)}\n`));
      await sleep(100);
    }
  })();
}
async function stopDriving() {
  driving = false;
  await driver;
  driver = undefined;
}
/** Runs `during` with no reconciler pass under way or started. */
async function withoutPasses<T>(during: () => Promise<T>): Promise<T> {
  await stopDriving();
  try {
    return await during();
  } finally {
    startDriving();
  }
}
startDriving();

const stream = async (name: string) =>
  (await gql(`mutation { createStream(input: { name: "${name}", kind: APPEND, fields: [{ name: "id", type: "BIGINT" }] }) { id } }`))
    .createStream.id as string;
const pipeline = async (name: string, sql: string, deliveryGuarantee: string) =>
  (await gql('mutation ($input: CreatePipelineInput!) { createPipeline(input: $input) { id } }', {
    input: { name, sql, deliveryGuarantee, checkpointIntervalMs: CHECKPOINT_INTERVAL_MS },
  })).createPipeline.id as string;
const stateOf = async (id: string) =>
  (await gql('query ($id: ID!) { pipeline(id: $id) { actualState actualReason } }', { id })).pipeline as { actualState: string; actualReason: string | null };
const until = (id: string, state: string) =>
  waitFor(`pipeline ${state}`, async () => {
    const s = await stateOf(id);
    if (s.actualState === 'FAILED') throw new Error(s.actualReason ?? 'FAILED');
    return s.actualState === state ? s : undefined;
  }, 300_000, 20);
const activate = (id: string, restore: 'LATEST' | 'NONE' = 'LATEST') =>
  gql('mutation ($id: ID!, $restore: RestoreMode) { activatePipeline(id: $id, restore: $restore) { id } }', { id, restore });
const deactivate = (id: string) => gql('mutation ($id: ID!) { deactivatePipeline(id: $id) { id } }', { id });
const timed = async (what: () => Promise<unknown>) => {
  const started = performance.now();
  await what();
  return Math.round(performance.now() - started);
};

try {
  process.stdout.write(
    `Weir lifecycle benchmark: checkpoint interval ${CHECKPOINT_INTERVAL_MS} ms, ${RECORDS} records, ${RUNS} runs, ` +
      `load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`,
  );
  const input = await stream('input');
  const outputs = { EXACTLY_ONCE: await stream('out_eo'), AT_LEAST_ONCE: await stream('out_alo') };
  const jobs = {
    EXACTLY_ONCE: await pipeline('copy_eo', 'INSERT INTO out_eo SELECT id FROM input', 'EXACTLY_ONCE'),
    AT_LEAST_ONCE: await pipeline('copy_alo', 'INSERT INTO out_alo SELECT id FROM input', 'AT_LEAST_ONCE'),
  };
  for (const id of Object.values(jobs)) await activate(id);
  for (const id of Object.values(jobs)) await until(id, 'RUNNING');

  // 1. Latency: one record every PUBLISH_EVERY_MS; each output polled every 20 ms.
  const publishedAt = new Map<number, number>();
  const seenAt = { EXACTLY_ONCE: new Map<number, number>(), AT_LEAST_ONCE: new Map<number, number>() };
  let polling = true;
  const pollers = (['EXACTLY_ONCE', 'AT_LEAST_ONCE'] as const).map(async (guarantee) => {
    while (polling) {
      const records = (await gql('query ($id: ID!) { streamRecords(streamId: $id, from: LATEST, limit: 1000) { value } }', { id: outputs[guarantee] }))
        .streamRecords as { value: { id: number } }[];
      const now = performance.now();
      for (const { value } of records) if (!seenAt[guarantee].has(Number(value.id))) seenAt[guarantee].set(Number(value.id), now);
      await sleep(20);
    }
  });
  for (let id = 0; id < RECORDS; id++) {
    publishedAt.set(id, performance.now());
    await gql('mutation ($id: ID!, $r: [JSON!]!) { publishRecords(streamId: $id, records: $r) { count } }', { id: input, r: [{ id }] });
    await sleep(PUBLISH_EVERY_MS);
  }
  await waitFor('every record in both outputs', () => seenAt.EXACTLY_ONCE.size >= RECORDS && seenAt.AT_LEAST_ONCE.size >= RECORDS, 120_000);
  polling = false;
  await Promise.all(pollers);
  const latency = (guarantee: 'EXACTLY_ONCE' | 'AT_LEAST_ONCE') => {
    const ms = [...publishedAt].map(([id, at]) => seenAt[guarantee].get(id)! - at);
    return { medianMs: Math.round(median(ms)), p99Ms: Math.round(quantile(ms, 0.99)) };
  };
  const latencies = { EXACTLY_ONCE: latency('EXACTLY_ONCE'), AT_LEAST_ONCE: latency('AT_LEAST_ONCE') };
  process.stdout.write(
    `publish → visible: EXACTLY_ONCE median ${latencies.EXACTLY_ONCE.medianMs} ms, p99 ${latencies.EXACTLY_ONCE.p99Ms} ms | ` +
      `AT_LEAST_ONCE median ${latencies.AT_LEAST_ONCE.medianMs} ms, p99 ${latencies.AT_LEAST_ONCE.p99Ms} ms\n`,
  );
  await deactivate(jobs.AT_LEAST_ONCE);
  await until(jobs.AT_LEAST_ONCE, 'STOPPED');

  // 2. Stop and start, RUNS times each way, on the exactly-once copy (it holds state).
  const id = jobs.EXACTLY_ONCE;
  const ref = { kind: 'PIPELINE' as const, id: decodeId(id, 'Pipeline'), accountId: accountUuid };
  const cycles: { savepointStopMs: number; savepointNote: string | null; plainStopMs: number; resumeMs: number; freshStartMs: number }[] = [];
  /** The runtime stops the job (between passes, so that nothing else moves), then the API deactivates it. */
  const stopTimed = (savepoint: boolean) =>
    withoutPasses(async () => {
      const started = performance.now();
      const { note } = await t.runtime.remove(ref, { savepoint });
      const ms = Math.round(performance.now() - started);
      await deactivate(id);
      return { ms, note };
    });
  for (let run = 0; run < RUNS; run++) {
    const withSavepoint = await stopTimed(true);
    await until(id, 'STOPPED');
    const resumeMs = await timed(async () => {
      await activate(id, 'LATEST');
      await until(id, 'RUNNING');
    });
    // Without a savepoint: SIGTERM, the job suspended with its last checkpoint kept.
    const plain = await stopTimed(false);
    await until(id, 'STOPPED');
    const freshStartMs = await timed(async () => {
      await activate(id, 'NONE');
      await until(id, 'RUNNING');
    });
    cycles.push({ savepointStopMs: withSavepoint.ms, savepointNote: withSavepoint.note, plainStopMs: plain.ms, resumeMs, freshStartMs });
    process.stdout.write(
      `run ${run + 1}: stop with savepoint ${withSavepoint.ms} ms${withSavepoint.note ? ` (${withSavepoint.note})` : ''}, plain stop ${plain.ms} ms, ` +
        `resume from savepoint → RUNNING ${resumeMs} ms, fresh start → RUNNING ${freshStartMs} ms\n`,
    );
  }
  // 3. Snapshots of the running job (the last fresh start left it RUNNING).
  const snapshots: { ms: number; sizeBytes: number }[] = [];
  for (let run = 0; run < RUNS; run++) {
    const started = performance.now();
    const data = await gql('mutation ($id: ID!) { snapshotPipeline(id: $id) { sizeBytes } }', { id });
    snapshots.push({ ms: Math.round(performance.now() - started), sizeBytes: data.snapshotPipeline.sizeBytes });
    process.stdout.write(`snapshot ${run + 1}: ${snapshots.at(-1)!.ms} ms, ${snapshots.at(-1)!.sizeBytes} bytes\n`);
  }
  const summary = {
    checkpointIntervalMs: CHECKPOINT_INTERVAL_MS,
    records: RECORDS,
    runs: RUNS,
    loadAverage: loadavg(),
    latency: latencies,
    latencyRatioMedian: +(latencies.EXACTLY_ONCE.medianMs / latencies.AT_LEAST_ONCE.medianMs).toFixed(1),
    medianSavepointStopMs: median(cycles.map((c) => c.savepointStopMs)),
    medianPlainStopMs: median(cycles.map((c) => c.plainStopMs)),
    medianResumeMs: median(cycles.map((c) => c.resumeMs)),
    medianFreshStartMs: median(cycles.map((c) => c.freshStartMs)),
    medianSnapshotMs: median(snapshots.map((s) => s.ms)),
    detail: cycles,
    snapshots,
  };
  process.stdout.write(
    `\nEXACTLY_ONCE is ${summary.latencyRatioMedian}× the latency of AT_LEAST_ONCE (median) at a ${CHECKPOINT_INTERVAL_MS} ms checkpoint interval\n` +
      `median stop with savepoint ${summary.medianSavepointStopMs} ms vs plain ${summary.medianPlainStopMs} ms | ` +
      `resume → RUNNING ${summary.medianResumeMs} ms vs fresh start ${summary.medianFreshStartMs} ms | ` +
      `snapshot on demand ${summary.medianSnapshotMs} ms (the job runs on)\n`,
  );
  await mkdir('bench/results', { recursive: true });
  await writeFile('bench/results/lifecycle.json', `${JSON.stringify(summary, null, 2)}\n`);
  process.stdout.write('wrote bench/results/lifecycle.json\n');
} finally {
  await stopDriving();
  await t.close();
}
