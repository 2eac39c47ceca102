import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/platform/logger.js';
import { KubernetesPreviewPool, type KubernetesPreviewPoolOptions } from '../../../src/runtime/kubernetes/preview-pool.js';
import { LandedOnUsedTaskManagerError } from '../../../src/preview/preview-backend.js';
import { KubernetesPreviewCluster, LEASED_ANNOTATION } from '../../../src/runtime/kubernetes/preview-cluster.js';
import { startKubeTestEnv, type KubeTestEnv } from '../../helpers/kube.js';
import { waitFor } from '../../helpers/wait-for.js';
import { FakeJobManager } from './fake-jobmanager.js';
import { clients, createPod, PLATFORM_NAMESPACE, podExists as podExistsIn, previewClusterOptions, setUpPlatform } from './fixtures.js';

const logger = createLogger(process.env.WEIR_TEST_LOG_LEVEL ?? 'silent');

// The Kubernetes preview pool: TaskManagers learnt from a JobManager (a fake one in the
// test: no kubelet runs here, so no Flink does) that lists real pods of the apiserver,
// leased with the queue rules, retired by deleting their pods with the gateway's
// least-privilege token from deploy/rbac.yaml.
describe('KubernetesPreviewPool against the real apiserver', () => {
  let env: KubeTestEnv;
  let kube: ReturnType<typeof clients>;
  let gateway: KubeConfig;
  const cleanups: (() => Promise<void>)[] = [];
  let counter = 0;

  beforeAll(async () => {
    env = await startKubeTestEnv();
    kube = clients(env.admin);
    gateway = env.kubeConfigFor((await setUpPlatform(env)).gatewayToken);
  }, 120_000);

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  }, 60_000);

  afterAll(async () => {
    await env?.stop();
  }, 60_000);

  /** A TaskManager pod as Flink's native resource manager names and labels it. */
  async function taskManagerPod(cluster: string, index: number): Promise<string> {
    const name = `${cluster}-taskmanager-1-${index}`;
    await createPod(kube.core, name, { app: cluster, component: 'taskmanager', type: 'flink-native-kubernetes' });
    return name;
  }

  const podExists = (name: string) => podExistsIn(kube.core, name);

  /** A preview cluster of its own (own name, own pods, own JobManager) and a pool over it. */
  async function setup(pods: number, options: Partial<KubernetesPreviewPoolOptions> = {}, gatewayUrl = 'http://127.0.0.1:9') {
    counter += 1;
    const name = `pv-${counter}`;
    const jm = await new FakeJobManager(kube.core, PLATFORM_NAMESPACE, name).start();
    const names: string[] = [];
    for (let i = 1; i <= pods; i += 1) names.push(await taskManagerPod(name, i));
    const cluster = new KubernetesPreviewCluster(previewClusterOptions(gateway, { name, jobManagerUrl: jm.url, gatewayUrl, logger }));
    const newPool = () => {
      const pool = new KubernetesPreviewPool({
        cluster,
        queueTimeoutMs: 20_000,
        pollIntervalMs: 50,
        retireTimeoutMs: 10_000,
        logger,
        ...options,
      });
      cleanups.push(() => pool.close());
      return pool;
    };
    cleanups.push(async () => {
      await cluster.close();
      await jm.stop();
    });
    const pool = newPool();
    const addPod = async () => {
      const pod = await taskManagerPod(name, names.length + 1);
      names.push(pod);
      return pod;
    };
    return { name, jm, pool, cluster, pods: names, addPod, newPool };
  }

  /** The pod's LEASED_ANNOTATION, read with the admin's token. */
  const leasedAt = async (name: string) =>
    (await kube.core.readNamespacedPod({ name, namespace: PLATFORM_NAMESPACE })).metadata?.annotations?.[LEASED_ANNOTATION];

  /** After a start that retired the used ones: only `fresh` is left, idle, and it is what a lease gets. */
  async function keptOnly(jm: FakeJobManager, pool: KubernetesPreviewPool, fresh: string) {
    expect(await jm.pods()).toEqual([fresh]);
    expect(pool.stats()).toMatchObject({ idle: 1, leased: 0, retiring: 0 });
    const lease = await pool.lease('account-a', 1);
    expect(lease.taskManagerId).toBe(fresh);
    lease.landed([fresh]);
    await lease.release();
  }

  const idle = (pool: KubernetesPreviewPool, count: number) =>
    waitFor(`${count} idle TaskManagers`, () => pool.stats().idle === count, 30_000);

  it('leases a fresh TaskManager, accepts its landing there, and retires exactly its pod for good', async () => {
    const { jm, pool, pods } = await setup(2, { queueTimeoutMs: 2_000, retireTimeoutMs: 1_000 });
    await pool.start();
    await idle(pool, 2);

    const lease = await pool.lease('account-a', 1);
    const first = lease.taskManagerId;
    expect(pods).toContain(first);
    jm.busy.add(first);
    jm.jobs.set('job-1', { status: 'RUNNING', taskManagers: [first] });
    lease.landed([first]);
    expect(pool.stats()).toMatchObject({ idle: 1, leased: 1, queued: 0 });

    // A JobManager that goes on listing the retired TaskManager, slot free (a stale answer).
    jm.lingering.add(first);
    await lease.release();
    expect(await podExists(first)).toBe(false);
    const other = pods.find((p) => p !== first)!;
    expect(await podExists(other)).toBe(true);
    expect(pool.stats()).toMatchObject({ idle: 1, leased: 0, retiring: 0 });

    // It is never granted again: the other one is, and then nobody gets anything.
    const second = await pool.lease('account-a', 1);
    expect(second.taskManagerId).toBe(other);
    second.landed([other]);
    await expect(pool.lease('account-b', 1)).rejects.toMatchObject({ code: 'UNAVAILABLE', message: expect.stringMatching(/within 2 s/) });
    await second.release();
    expect(await podExists(other)).toBe(false);
  }, 60_000);

  it('landed() rejects a job on a leased TaskManager, and moves the lease to a fresh one, known or not yet listed', async () => {
    // Slow polling: a pod created later is not listed by the pool before the job lands on it.
    const { jm, pool, addPod } = await setup(4, { pollIntervalMs: 60_000 });
    await pool.start();
    expect(pool.stats().idle).toBe(4);

    const a = await pool.lease('account-a', 5);
    a.landed([a.taskManagerId]);
    const b = await pool.lease('account-b', 5);
    const leasedB = b.taskManagerId;
    // Flink put b's job on a's TaskManager: that one is not fresh (the typed error the
    // preview service answers by submitting again on a new lease).
    const refused = (() => {
      try {
        b.landed([a.taskManagerId]);
      } catch (error) {
        return error;
      }
    })();
    expect(refused).toBeInstanceOf(LandedOnUsedTaskManagerError);
    expect(refused).toMatchObject({ leased: leasedB, landedOn: [a.taskManagerId], message: expect.stringMatching(/\(leased\)$/) });

    // Flink chose another idle TaskManager than the leased one: the lease follows the job.
    const c = await pool.lease('account-c', 5);
    const leasedC = c.taskManagerId;
    const [spare] = [...(await jm.pods())].filter((p) => ![a.taskManagerId, leasedB, leasedC].includes(p));
    expect(spare).toBeDefined();
    c.landed([spare!]);
    expect(c.taskManagerId).toBe(spare);

    // A TaskManager that registered after the pool last looked, never leased: adopted.
    const d = await pool.lease('account-d', 5);
    const leasedD = d.taskManagerId;
    expect(leasedD).toBe(leasedC); // c's first pick went back to idle
    const late = await addPod();
    d.landed([late]);
    expect(d.taskManagerId).toBe(late);

    for (const lease of [a, b, c, d]) await lease.release();
    for (const pod of [a.taskManagerId, leasedB, spare!, late]) expect(await podExists(pod), pod).toBe(false);
    expect(await podExists(leasedC)).toBe(true);
  }, 60_000);

  it('keeps the per-account limit, reports queue positions, times out, and honours an abort', async () => {
    const { pool, addPod } = await setup(1, { queueTimeoutMs: 4_000 });
    await pool.start();
    await idle(pool, 1);
    await expect(pool.lease('account-a', 0)).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' });

    const held = await pool.lease('account-a', 1);
    held.landed([held.taskManagerId]);
    const positions = { a: [] as number[], b: [] as number[] };
    const overLimit = pool.lease('account-a', 1, (p) => positions.a.push(p));
    overLimit.catch(() => undefined);
    const waiting = pool.lease('account-b', 1, (p) => positions.b.push(p));
    await waitFor('two queued', () => pool.stats().queued === 2);
    expect(positions).toEqual({ a: [1], b: [2] });

    // A new TaskManager goes to b: a is first in line but at its account's limit.
    const fresh = await addPod();
    const granted = await waiting;
    expect(granted.taskManagerId).toBe(fresh);
    expect(positions.a).toEqual([1]);
    granted.landed([fresh]);
    await expect(overLimit).rejects.toMatchObject({ code: 'UNAVAILABLE', message: expect.stringMatching(/No preview TaskManager became free within 4 s/) });

    const abort = new AbortController();
    const cancelled = pool.lease('account-c', 1, undefined, abort.signal);
    await waitFor('one queued', () => pool.stats().queued === 1);
    abort.abort();
    await expect(cancelled).rejects.toMatchObject({ code: 'UNAVAILABLE', message: expect.stringMatching(/cancelled/) });
    expect(pool.stats().queued).toBe(0);
    await held.release();
    await granted.release();
  }, 60_000);

  it('gives concurrent leases distinct TaskManagers; a waiter gets a new one, never a retired one', async () => {
    const { jm, pool, pods, addPod } = await setup(4);
    await pool.start();
    await idle(pool, 4);
    const leases = await Promise.all(
      ['a', 'b', 'c', 'd'].map(async (account) => {
        const lease = await pool.lease(`account-${account}`, 1);
        jm.busy.add(lease.taskManagerId);
        lease.landed([lease.taskManagerId]);
        return lease;
      }),
    );
    expect(new Set(leases.map((l) => l.taskManagerId))).toEqual(new Set(pods));

    const fifth = pool.lease('account-e', 1);
    await waitFor('one queued', () => pool.stats().queued === 1);
    await leases[0]!.release();
    expect(pool.stats()).toMatchObject({ queued: 1, idle: 0 });
    const fresh = await addPod();
    const granted = await fifth;
    expect(granted.taskManagerId).toBe(fresh);
    granted.landed([fresh]);
    for (const lease of [...leases.slice(1), granted]) await lease.release();
    expect(await jm.pods()).toEqual([]);
  }, 60_000);

  it('start() retires the TaskManagers that already ran a job (a restarted gateway) and keeps the fresh one', async () => {
    const { jm, pool, pods } = await setup(4);
    const [busy, finished, running, fresh] = pods as [string, string, string, string];
    jm.busy.add(busy);
    jm.jobs.set('old-finished', { status: 'FINISHED', taskManagers: [finished] });
    jm.jobs.set('old-running', { status: 'RUNNING', taskManagers: [running] });
    jm.busy.add(running);
    await pool.start();
    await keptOnly(jm, pool, fresh);
  }, 60_000);

  it('a restarted gateway retires a TaskManager an earlier one leased, even when the JobManager forgot the job', async () => {
    const { jm, pool, pods, newPool } = await setup(2);
    await pool.start();
    await idle(pool, 2);
    const lease = await pool.lease('account-a', 1);
    const leased = lease.taskManagerId;
    lease.landed([leased]);
    // Recorded on the pod with the gateway's own token.
    await waitFor('the lease recorded on the pod', async () => (await leasedAt(leased)) !== undefined);
    const fresh = pods.find((p) => p !== leased)!;
    expect(await leasedAt(fresh)).toBeUndefined();

    // The gateway dies with the lease held; its job ended long ago: the JobManager lists
    // the TaskManager with its slot free and knows no job that ran there.
    await pool.close();
    expect([...jm.jobs.keys()]).toEqual([]);
    const successor = newPool();
    await successor.start();
    await keptOnly(jm, successor, fresh);
  }, 60_000);

  it('a preview that ended before it saw where its job ran: the release retires that TaskManager too', async () => {
    const { jm, pool } = await setup(2);
    await pool.start();
    await idle(pool, 2);
    const lease = await pool.lease('account-a', 1);
    const leased = lease.taskManagerId;
    const [elsewhere] = (await jm.pods()).filter((p) => p !== leased);
    jm.busy.add(elsewhere!);
    jm.jobs.set('unseen', { status: 'RUNNING', taskManagers: [elsewhere!] });
    lease.landed([]); // what the preview service says when it stops before the job is seen
    await lease.release();
    expect(await jm.pods()).toEqual([]);
    expect(pool.stats()).toMatchObject({ idle: 0, leased: 0, retiring: 0 });
  }, 60_000);

  it('the session cluster warms its SQL Gateway up once, after waiting for it to answer', async () => {
    // A SQL Gateway stand-in whose pod is still starting: the first two sessions get 503.
    const requests: string[] = [];
    const statements: string[] = [];
    let unready = 2;
    const server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        const path = new URL(request.url!, 'http://gateway').pathname;
        requests.push(`${request.method} ${path}`);
        const reply = (status: number, json: unknown) => response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
        if (request.method === 'POST' && path === '/v2/sessions') {
          return unready-- > 0 ? reply(503, { errors: ['starting'] }) : reply(200, { sessionHandle: 'warm' });
        }
        if (request.method === 'POST' && path.endsWith('/statements')) {
          statements.push(JSON.parse(body).statement);
          return reply(200, { operationHandle: `op-${statements.length}` });
        }
        if (path.endsWith('/status')) return reply(200, { status: 'FINISHED' });
        return reply(200, {});
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { cluster } = await setup(0, {}, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);

    await cluster.start();
    await waitFor('the warm-up session closed', () => requests.includes('DELETE /v2/sessions/warm'));
    expect(requests).toEqual([
      'POST /v2/sessions',
      'POST /v2/sessions',
      'POST /v2/sessions',
      'POST /v2/sessions/warm/statements',
      'GET /v2/sessions/warm/operations/op-1/status',
      'DELETE /v2/sessions/warm/operations/op-1/close',
      'POST /v2/sessions/warm/statements',
      'GET /v2/sessions/warm/operations/op-2/status',
      'DELETE /v2/sessions/warm/operations/op-2/close',
      'DELETE /v2/sessions/warm',
    ]);
    expect(statements[0]).toMatch(/^CREATE TEMPORARY TABLE warm_up .*'connector' = 'kafka'.*'format' = 'json'/);
    expect(statements[1]).toMatch(/^EXPLAIN PLAN FOR SELECT who, COUNT\(\*\)/);

    // Once per gateway process: a second start() applies nothing and warms nothing.
    await cluster.start();
    await cluster.warmedUp;
    expect(requests).toHaveLength(10);
  }, 60_000);

  it('start() fails clearly while the JobManager does not answer, and can be tried again', async () => {
    const { jm, pool } = await setup(1, { queueTimeoutMs: 2_000 });
    const url = jm.url;
    await jm.stop();
    await expect(pool.start()).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringContaining(`The preview JobManager (${url}) did not answer within 2 s`),
    });
    await expect(pool.lease('account-a', 1)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  }, 60_000);
});
