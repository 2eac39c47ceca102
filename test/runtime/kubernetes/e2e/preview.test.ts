/**
 * Previews on the single-node cluster with `WEIR_RUNTIME=kubernetes`: the session cluster
 * in the platform namespace is a FlinkDeployment the real operator runs, with a SQL Gateway
 * beside it; Flink's native resource manager keeps WEIR_PREVIEW_POOL_SIZE idle, pre-warmed
 * TaskManager pods; a preview leases one, its rows reach a graphql-ws client, and its pod
 * is deleted after, never running a second preview.
 */
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { KubeNode } from '../../../helpers/kube-node.js';
import { endOf, PREVIEW, rowsOf, startOf } from '../../../helpers/preview.js';
import { waitFor } from '../../../helpers/wait-for.js';
import { flinkPodShape, PLATFORM_NAMESPACE, podsOf, startWeirOnNode, TASK_SIZE_S_POD, type PodJson, type WeirOnNode } from './weir-on-node.js';

const asRoot = process.getuid?.() === 0;
const POOL_SIZE = 2;
/** A TaskManager pod starts in well under a minute; the session cluster's JobManager in a few. */
const POD_START_MS = 360_000;
const TERMINAL = ['CANCELED', 'FAILED', 'FINISHED'];

let weir: WeirOnNode;
let node: KubeNode;
const accounts: { key: string }[] = [];
const clients: Client[] = [];

/** The session cluster's TaskManager pods that run and are not being deleted. */
async function taskManagerPods(): Promise<PodJson[]> {
  const pods = await podsOf(node, PLATFORM_NAMESPACE, 'app=weir-preview,component=taskmanager');
  return pods.filter((p) => p.status.phase === 'Running' && !p.metadata.deletionTimestamp);
}

const pool = () => weir.parts.preview!.pool;
const idle = () => pool().stats().idle;

/** Waits until the pool holds POOL_SIZE idle TaskManagers, each a running pod; resolves to their names. */
async function fullPool(): Promise<string[]> {
  return waitFor(`${POOL_SIZE} idle TaskManager pods`, async () => {
    if (idle() !== POOL_SIZE) return undefined;
    const pods = await taskManagerPods();
    return pods.length === POOL_SIZE ? pods.map((p) => p.metadata.name).sort() : undefined;
  }, POD_START_MS, 1000);
}

/** The session cluster's jobs, by id and status (through the JobManager's REST API). */
async function jobs(): Promise<{ id: string; status: string }[]> {
  const { jobManagerUrl } = await weir.parts.preview!.cluster.start();
  return ((await (await fetch(`${jobManagerUrl}/jobs`)).json()) as { jobs: { id: string; status: string }[] }).jobs;
}

/** A graphql-ws client of the gateway's real port, as account `key`. */
function wsClient(key: string): Client {
  const client = createClient({
    url: weir.server.url.replace('http', 'ws'),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    connectionParams: { authorization: `Bearer ${key}` },
  });
  clients.push(client);
  return client;
}

/** One preview over graphql-ws, to its PreviewEnded; resolves to its events. */
function preview(key: string, input: Record<string, unknown>): Promise<any[]> {
  const events: any[] = [];
  return new Promise((resolve, reject) => {
    wsClient(key).subscribe(
      { query: PREVIEW, variables: { input } },
      {
        next: (result) => {
          if (result.errors) reject(new Error(JSON.stringify(result.errors)));
          else events.push((result.data as { preview: unknown }).preview);
        },
        error: reject,
        complete: () => resolve(events),
      },
    );
  });
}

beforeAll(async () => {
  if (!asRoot) return;
  weir = await startWeirOnNode({
    previewPoolSize: POOL_SIZE,
    // The node's 2 cores hold the session cluster and POOL_SIZE TaskManagers: a third
    // preview waits for a used pod to go and its replacement to register.
    env: { WEIR_PREVIEW_QUEUE_TIMEOUT_MS: '300000' },
  });
  ({ node } = weir);
  for (const name of ['Preview A', 'Preview B']) {
    const { key } = await weir.t.signUp(name);
    const created = await weir.ok(
      'mutation { createStream(input: { name: "orders", kind: APPEND, fields: [{ name: "id", type: "BIGINT" }, { name: "who", type: "STRING" }] }) { id } }',
      {},
      key,
    );
    const records = Array.from({ length: 20 }, (_, i) => ({ id: i + 1, who: name }));
    await weir.ok('mutation ($id: ID!, $r: [JSON!]!) { publishRecords(streamId: $id, records: $r) { count } }', { id: created.createStream.id, r: records }, key);
    accounts.push({ key });
  }
}, 900_000);

afterAll(async () => {
  for (const client of clients) await client.dispose();
  await weir?.close();
}, 300_000);

describe.runIf(asRoot)('previews on the node: pre-warmed TaskManager pods of a session cluster the real operator runs', () => {
  let firstPool: string[];

  it(`keeps ${POOL_SIZE} idle TaskManager pods before the first preview, pre-warmed, sized and unprivileged`, async () => {
    const startedAt = Date.now();
    await pool().start();
    firstPool = await fullPool();
    console.log(`session cluster applied → ${POOL_SIZE} idle TaskManager pods registered in ${Date.now() - startedAt} ms`);
    const pods = (await taskManagerPods()).filter((p) => firstPool.includes(p.metadata.name));
    for (const pod of pods) {
      expect(flinkPodShape(pod), pod.metadata.name).toEqual(TASK_SIZE_S_POD);
      // The agent loaded the classes a preview needs before the TaskManager registered.
      const log = await node.kubectl('-n', PLATFORM_NAMESPACE, 'logs', pod.metadata.name);
      const warmup = /WEIR_WARMUP loaded=(\d+) missing=(\d+) ms=(\d+)/.exec(log);
      expect(warmup, `${pod.metadata.name} log:\n${log.slice(0, 2000)}`).not.toBeNull();
      expect(Number(warmup![2]), warmup![0]).toBe(0);
      expect(Number(warmup![1]), warmup![0]).toBeGreaterThan(1000);
      const warmedAt = log.indexOf('WEIR_WARMUP');
      const registeredAt = log.indexOf('Successful registration at resource manager');
      expect(registeredAt, 'registered after the warm-up').toBeGreaterThan(warmedAt);
      console.log(`${pod.metadata.name}: ${warmup![0]}`);
    }
  }, POD_START_MS + 60_000);

  it('streams a preview’s rows to a graphql-ws client from an idle pod, then deletes that pod; a fresh idle one takes its place', async () => {
    const before = firstPool ?? (await fullPool());
    const startedAt = Date.now();
    const events = await preview(accounts[0]!.key, { sql: 'SELECT id FROM orders WHERE MOD(id, 2) = 0', rowLimit: 5, timeLimitSeconds: 90 });
    expect(endOf(events), JSON.stringify(events)).toMatchObject({ reason: 'ROW_LIMIT' });
    expect(rowsOf(events).map((r: any) => Number(r.values[0]))).toEqual([2, 4, 6, 8, 10]);
    const tm = startOf(events).taskManager as string;
    expect(before).toContain(tm);
    console.log(`preview over graphql-ws: ${rowsOf(events).length} rows, ended in ${Date.now() - startedAt} ms on ${tm}`);

    await waitFor(`pod ${tm} deleted`, async () => {
      const found = await node.kubectl('-n', PLATFORM_NAMESPACE, 'get', 'pods', '--ignore-not-found', '-o', 'name', tm);
      return found.trim() === '' || undefined;
    }, 120_000, 1000);
    const after = await fullPool();
    expect(after).not.toContain(tm);
    expect(after.filter((name) => !before.includes(name))).toHaveLength(1);
  }, POD_START_MS + 120_000);

  it('runs 6 previews of 2 accounts, 3 at a time, on 6 distinct pods, none reused; then the pool is full and no job is left', async () => {
    const ran = new Set<string>();
    const earlier = new Set(await taskManagerPods().then((pods) => pods.map((p) => p.metadata.name)));
    const startedAt = Date.now();
    for (let round = 0; round < 2; round++) {
      const results = await Promise.all(
        [0, 1, 2].map((i) => {
          const account = accounts[(round * 3 + i) % 2]!;
          return preview(account.key, { sql: 'SELECT id, who FROM orders', rowLimit: 3, timeLimitSeconds: 90 });
        }),
      );
      for (const events of results) {
        expect(endOf(events), JSON.stringify(events)).toMatchObject({ reason: 'ROW_LIMIT' });
        expect(rowsOf(events)).toHaveLength(3);
        const tm = startOf(events).taskManager as string;
        expect(ran.has(tm), `${tm} ran two previews`).toBe(false);
        ran.add(tm);
      }
    }
    expect(ran.size).toBe(6);
    console.log(`6 previews (3 concurrent, 2 accounts) in ${Date.now() - startedAt} ms on 6 pods`);
    // Only pods that were idle before or started since; each one deleted after its preview.
    const left = await fullPool();
    expect(left.filter((name) => ran.has(name))).toEqual([]);
    expect([...earlier].filter((name) => ran.has(name)).length).toBeLessThanOrEqual(POOL_SIZE);
    await waitFor('no preview job left running', async () => (await jobs()).every((j) => TERMINAL.includes(j.status)) || undefined, 60_000, 1000);
  }, 1_200_000);
});
