/**
 * `npm run bench:activate`: the local runtime's activation path, from one run:
 * activate → RUNNING (median over N pipelines), deactivate → process gone, and the
 * resident memory of each job's JVM and of the Kafka broker. Writes bench/results/activate.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { decodeId } from '../src/graphql/global-id.js';
import { residentBytes } from '../src/runtime/local/processes.js';
import { startLocalApp } from '../test/helpers/local.js';
import { waitFor } from '../test/helpers/wait-for.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const MB = 1024 * 1024;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

const t = await startLocalApp({ reconcileIntervalMs: 200 });
const { key } = await t.signUp('bench');
const gql = async (query: string, variables: Record<string, unknown> = {}) => {
  const result = await t.gql(query, variables, { key });
  if (result.errors) throw new Error(JSON.stringify(result.errors));
  return result.data!;
};

try {
  process.stdout.write(`Weir activation benchmark (state polled every 50 ms): ${RUNS} runs, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
  const src = (await gql('mutation { createStream(input: { name: "src", kind: APPEND, fields: [{ name: "id", type: "BIGINT" }] }) { id } }'))
    .createStream.id;
  await gql('mutation { createStream(input: { name: "dst", kind: APPEND, fields: [{ name: "id", type: "BIGINT" }] }) { id } }');
  const brokerStarted = Date.now();
  await gql('mutation ($id: ID!, $r: [JSON!]!) { publishRecords(streamId: $id, records: $r) { count } }', {
    id: src,
    r: Array.from({ length: 100 }, (_, i) => ({ id: i })),
  });
  const brokerStartMs = Date.now() - brokerStarted;

  const runs: { activateToRunningMs: number; deactivateToGoneMs: number; deactivateToStoppedMs: number; rssMb: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    const id = (await gql(`mutation { createPipeline(input: { name: "copy${i}", sql: "INSERT INTO dst SELECT id FROM src" }) { id } }`))
      .createPipeline.id as string;
    const uuid = decodeId(id, 'Pipeline');
    const started = Date.now();
    await gql('mutation ($id: ID!) { activatePipeline(id: $id) { id } }', { id });
    await waitFor('RUNNING', async () => {
      const s = (await gql('query ($id: ID!) { pipeline(id: $id) { actualState actualReason } }', { id })).pipeline;
      if (s.actualState === 'FAILED') throw new Error(s.actualReason);
      return s.actualState === 'RUNNING' ? s : undefined;
    }, 300_000, 50);
    const activateToRunningMs = Date.now() - started;
    const pid = (await t.runtime.pids()).get(uuid)![0]!;
    const rssMb = ((await residentBytes(pid)) ?? 0) / MB;

    const stopping = Date.now();
    await gql('mutation ($id: ID!) { deactivatePipeline(id: $id) { id } }', { id });
    await waitFor('process gone', async () => ((await t.runtime.pids()).has(uuid) ? undefined : true), 90_000, 50);
    const deactivateToGoneMs = Date.now() - stopping;
    await waitFor('STOPPED', async () =>
      (await gql('query ($id: ID!) { pipeline(id: $id) { actualState } }', { id })).pipeline.actualState === 'STOPPED' ? true : undefined,
    90_000, 50);
    const deactivateToStoppedMs = Date.now() - stopping;
    runs.push({ activateToRunningMs, deactivateToGoneMs, deactivateToStoppedMs, rssMb });
    process.stdout.write(
      `run ${i + 1}: activate→RUNNING ${activateToRunningMs} ms, deactivate→gone ${deactivateToGoneMs} ms, ` +
        `→STOPPED ${deactivateToStoppedMs} ms, job JVM RSS ${rssMb.toFixed(0)} MB\n`,
    );
  }
  const broker = (await t.parts.processes()).find((p) => p.marker.startsWith('weir-broker:'));
  const brokerRssMb = broker ? ((await residentBytes(broker.pid)) ?? 0) / MB : undefined;
  const summary = {
    runs: RUNS,
    loadAverage: loadavg(),
    brokerFirstPublishMs: brokerStartMs,
    brokerRssMb,
    medianActivateToRunningMs: median(runs.map((r) => r.activateToRunningMs)),
    medianDeactivateToGoneMs: median(runs.map((r) => r.deactivateToGoneMs)),
    medianDeactivateToStoppedMs: median(runs.map((r) => r.deactivateToStoppedMs)),
    medianJobRssMb: median(runs.map((r) => r.rssMb)),
    detail: runs,
  };
  process.stdout.write(
    `\nmedian activate→RUNNING ${summary.medianActivateToRunningMs} ms | deactivate→process gone ${summary.medianDeactivateToGoneMs} ms` +
      ` | deactivate→STOPPED ${summary.medianDeactivateToStoppedMs} ms\njob JVM RSS median ${summary.medianJobRssMb.toFixed(0)} MB | ` +
      `broker RSS ${brokerRssMb?.toFixed(0)} MB (first publish incl. broker start ${brokerStartMs} ms)\n`,
  );
  await mkdir('bench/results', { recursive: true });
  await writeFile('bench/results/activate.json', `${JSON.stringify(summary, null, 2)}\n`);
  process.stdout.write('wrote bench/results/activate.json\n');
} finally {
  await t.close();
}
