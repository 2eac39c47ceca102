/**
 * Weir's own API with `WEIR_RUNTIME=kubernetes` on the single-node cluster
 * (scripts/kube-node.sh): activation writes FlinkDeployments, the real Flink Kubernetes
 * Operator runs them as JobManager and TaskManager pods from Weir's Flink image, the jobs
 * move records through Kafka (Weir's broker, on the node IP) with their state in an
 * S3-compatible store (s3proxy, through Flink's S3 plugin), and deactivation removes
 * every object of the job. The gateway acts with the permissions of deploy/rbac.yaml only.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeId } from '../../../../src/graphql/global-id.js';
import type { KubeNode } from '../../../helpers/kube-node.js';
import type { ObjectStore } from '../../../helpers/object-store.js';
import type { TestApp } from '../../../helpers/app.js';
import { waitFor } from '../../../helpers/wait-for.js';
import { flinkPodShape, podsOf, startWeirOnNode, TASK_SIZE_S_POD, type WeirOnNode } from './weir-on-node.js';

const asRoot = process.getuid?.() === 0;
/** Pods start in a minute or more here: 2 cores run the node, the operator and four JVMs. */
const POD_START_MS = 360_000;

let weir: WeirOnNode;
let node: KubeNode;
let store: ObjectStore;
let t: TestApp;
let key: string;
let accountUuid: string;

beforeAll(async () => {
  if (!asRoot) return;
  weir = await startWeirOnNode({ previewPoolSize: 0 });
  ({ node, store, t } = weir);
  ({ key, accountUuid } = await t.signUp('On the node'));
}, 900_000);

afterAll(async () => {
  await weir?.close();
}, 300_000);

const ok = (query: string, variables: Record<string, unknown> = {}, as = key) => weir.ok(query, variables, as);

const stream = async (name: string, as = key) =>
  (
    await ok(
      `mutation { createStream(input: { name: "${name}", kind: APPEND, fields: [{ name: "id", type: "BIGINT" }, { name: "amount", type: "INT" }] }) { id } }`,
      {},
      as,
    )
  ).createStream.id as string;

async function records(streamId: string): Promise<Record<string, any>[]> {
  const data = await ok('query ($id: ID!) { streamRecords(streamId: $id, from: EARLIEST, limit: 1000) { value } }', { id: streamId });
  return data.streamRecords.map((r: { value: Record<string, any> }) => r.value);
}

/** Every id in a stream, read from Kafka directly (the API reads at most 1000 records). */
async function allIds(streamId: string): Promise<number[]> {
  const storage = weir.parts.storage!;
  const stored = await storage.read(storage.topicFor(accountUuid, decodeId(streamId, 'Stream')), { from: 'EARLIEST', limit: 1_000_000 });
  return stored.map((record) => (JSON.parse(record.value) as { id: number }).id);
}

const stateOf = async (kind: 'pipeline' | 'connection', id: string) =>
  (await ok(`query ($id: ID!) { ${kind}(id: $id) { actualState actualReason } }`, { id }))[kind] as {
    actualState: string;
    actualReason: string | null;
  };

const until = (kind: 'pipeline' | 'connection', id: string, state: string, timeoutMs = POD_START_MS) =>
  waitFor(`${kind} ${state}`, async () => ((await stateOf(kind, id)).actualState === state ? true : undefined), timeoutMs, 1000);

const activate = (kind: 'Pipeline' | 'Connection', id: string) => ok(`mutation ($id: ID!) { activate${kind}(id: $id) { id } }`, { id });
const deactivate = (kind: 'Pipeline' | 'Connection', id: string) => ok(`mutation ($id: ID!) { deactivate${kind}(id: $id) { id } }`, { id });

const podsOfJob = (namespace: string, jobId: string) => podsOf(node, namespace, `app=${jobId}`);

const names = async (namespace: string, kind: string, selector?: string) =>
  (await node.kubectl('-n', namespace, 'get', kind, ...(selector ? ['-l', selector] : []), '-o', 'name')).split('\n').filter(Boolean);

/**
 * An account's namespace, made here if it is not there yet (an activation makes it, the
 * deactivation keeps it): for the main account when a test runs alone, for another account.
 */
async function accountNamespace(prefix: string, account: { key: string; accountUuid: string } = { key, accountUuid }): Promise<string> {
  const namespace = `weir-acct-${account.accountUuid}`;
  if (!(await node.kubectl('get', 'namespaces', '-o', 'name')).includes(`namespace/${namespace}`)) {
    const as = (query: string, variables: Record<string, unknown> = {}) => ok(query, variables, account.key);
    for (const suffix of ['in', 'out']) await stream(`${prefix}_${suffix}`, account.key);
    const sql = `INSERT INTO ${prefix}_out SELECT id, amount FROM ${prefix}_in`;
    const id = (await as('mutation ($sql: String!) { createPipeline(input: { name: "ns_copy", sql: $sql }) { id } }', { sql })).createPipeline.id as string;
    await as('mutation ($id: ID!) { activatePipeline(id: $id) { id } }', { id });
    await as('mutation ($id: ID!) { deactivatePipeline(id: $id) { id } }', { id });
  }
  return namespace;
}

describe.runIf(asRoot)('Weir on the node: activation through the API, run by the real operator', () => {
  it('runs the datagen connection and the even-ids pipeline as pods, RUNNING, with the expected output; deactivation removes them', async () => {
    const orders = await stream('orders');
    const doubled = await stream('doubled');
    const gen = (
      await ok('mutation ($input: CreateConnectionInput!) { createConnection(input: $input) { id } }', {
        input: {
          name: 'orders_gen',
          connector: 'datagen',
          type: 'SOURCE',
          streamId: orders,
          properties: { 'rows-per-second': 50, 'fields.id.kind': 'sequence', 'fields.id.start': 1, 'fields.id.end': 60, 'fields.amount.min': 1, 'fields.amount.max': 100 },
        },
      })
    ).createConnection.id as string;
    const even = (
      await ok('mutation ($sql: String!) { createPipeline(input: { name: "even_doubled", sql: $sql }) { id } }', {
        sql: 'INSERT INTO doubled SELECT id, amount * 2 FROM orders WHERE MOD(id, 2) = 0',
      })
    ).createPipeline.id as string;
    const activatedAt = Date.now();
    await activate('Pipeline', even);
    await activate('Connection', gen);

    const namespace = `weir-acct-${accountUuid}`;
    const pipelineName = `pipe-${decodeId(even, 'Pipeline')}`;
    await until('pipeline', even, 'RUNNING');
    const runningMs = Date.now() - activatedAt;

    // The operator's pods: a JobManager and one TaskManager (task size S), as Weir sized them.
    const pods = await waitFor('JobManager and TaskManager pods running', async () => {
      const found = await podsOfJob(namespace, pipelineName);
      return found.length === 2 && found.every((p) => p.status.phase === 'Running') ? found : undefined;
    }, POD_START_MS, 1000);
    expect(pods.map((p) => p.metadata.labels.component).sort()).toEqual(['jobmanager', 'taskmanager']);
    for (const pod of pods) expect(flinkPodShape(pod), pod.metadata.name).toEqual(TASK_SIZE_S_POD);

    // The bounded source runs to its end; the pipeline keeps the even ids, doubled.
    await until('connection', gen, 'FINISHED');
    const input = await records(orders);
    expect(input.map((r) => r.id)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    const output = await waitFor('30 output records', async () => {
      const out = await records(doubled);
      return out.length >= 30 ? out : undefined;
    }, 120_000, 1000);
    const amountOf = new Map(input.map((r) => [r.id, r.amount]));
    expect(output).toHaveLength(30);
    for (const row of output) {
      expect(row.id % 2).toBe(0);
      expect(row.amount).toBe(2 * amountOf.get(row.id));
    }
    // The pipeline's checkpoints are in the object store, where Flink's S3 plugin put them
    // (s3proxy keeps each object as a file named by its key), and its HA metadata in ConfigMaps.
    const checkpoints = join(store.dataDir, store.bucket, accountUuid, pipelineName, 'g1', 'checkpoints');
    await waitFor('a completed checkpoint in the object store', async () => {
      const files = await readdir(checkpoints, { recursive: true }).catch(() => [] as string[]);
      return files.some((file) => file.endsWith('_metadata')) || undefined;
    }, 120_000, 1000);
    expect(await names(namespace, 'configmaps', `app=${pipelineName},configmap-type=high-availability`)).not.toEqual([]);

    const deactivatedAt = Date.now();
    await deactivate('Pipeline', even);
    await deactivate('Connection', gen);
    await until('pipeline', even, 'STOPPED', 120_000);
    await until('connection', gen, 'STOPPED', 120_000);
    await waitFor('every pod and object of the jobs gone', async () => {
      const left = [
        ...(await names(namespace, 'pods')),
        ...(await names(namespace, 'flinkdeployments')),
        ...(await names(namespace, 'services')),
        ...(await names(namespace, 'configmaps', 'configmap-type=high-availability')),
        ...(await names(namespace, 'secrets', 'weir.dev/job-id')),
      ];
      return left.length === 0 ? true : undefined;
    }, 180_000, 1000);
    const goneMs = Date.now() - deactivatedAt;
    // The pipeline stopped with the savepoint the operator took as it suspended the job.
    expect(await stateOf('pipeline', even)).toEqual({ actualState: 'STOPPED', actualReason: null });
    const savepoints = join(store.dataDir, store.bucket, accountUuid, pipelineName, 'g1', 'savepoints');
    expect((await readdir(savepoints, { recursive: true })).filter((file) => file.endsWith('_metadata'))).toHaveLength(1);

    // Activated again, it resumes there: only records published since are read, none twice.
    await ok('mutation ($id: ID!, $r: [JSON!]!) { publishRecords(streamId: $id, records: $r) { count } }', {
      id: orders,
      r: [61, 62, 63, 64].map((id) => ({ id, amount: id })),
    });
    const resumedAt = Date.now();
    await activate('Pipeline', even);
    await until('pipeline', even, 'RUNNING');
    const resumedMs = Date.now() - resumedAt;
    await waitFor('the new even ids doubled', async () => ((await allIds(doubled)).includes(64) ? true : undefined), 120_000, 1000);
    expect((await allIds(doubled)).sort((a, b) => a - b)).toEqual([...Array.from({ length: 30 }, (_, i) => 2 * (i + 1)), 62, 64]);
    await deactivate('Pipeline', even);
    await until('pipeline', even, 'STOPPED', 120_000);
    expect((await stateOf('pipeline', even)).actualReason).toBeNull();
    await waitFor('its pods gone again', async () => ((await names(namespace, 'pods')).length === 0 ? true : undefined), 180_000, 1000);
    console.log(
      `activation → RUNNING (API) ${runningMs} ms; deactivation → every pod and object gone ${goneMs} ms; resumed from its savepoint → RUNNING ${resumedMs} ms`,
    );
    // The account's namespace stays, ready for the next activation.
    expect(await node.kubectl('get', 'namespace', namespace, '-o', 'name')).toContain(namespace);
  }, 900_000);

  describe("a pipeline of the account, running", () => {
    let copy: string;
    let input: string;
    let output: string;
    let namespace: string;
    let name: string;

    beforeAll(async () => {
      input = await stream('ha_in');
      output = await stream('ha_out');
      copy = (
        await ok('mutation ($sql: String!) { createPipeline(input: { name: "ha_copy", sql: $sql }) { id } }', {
          sql: 'INSERT INTO ha_out SELECT id, amount FROM ha_in',
        })
      ).createPipeline.id as string;
      namespace = `weir-acct-${accountUuid}`;
      name = `pipe-${decodeId(copy, 'Pipeline')}`;
      await activate('Pipeline', copy);
      await until('pipeline', copy, 'RUNNING');
    }, POD_START_MS + 60_000);

    afterAll(async () => {
      if (!copy) return;
      await deactivate('Pipeline', copy);
      await waitFor('no pod left', async () => (await names(namespace, 'pods')).length === 0 || undefined, 180_000, 1000);
    }, 240_000);

    it("is isolated on the wire by Weir's own NetworkPolicy: another account's pod cannot reach its JobManager, which its own account's pods and the operator reach", async () => {
      const other = await t.signUp('Another account');
      const otherNamespace = await accountNamespace('iso', other);
      await waitFor('no pod left in the other account', async () => (await names(otherNamespace, 'pods')).length === 0 || undefined, 180_000, 1000);

      const rest = (await node.kubectl('-n', namespace, 'get', 'service', `${name}-rest`, '-o', 'jsonpath={.spec.clusterIP}')).trim();
      const [jobManager] = (await podsOfJob(namespace, name)).filter((p) => p.metadata.labels.component === 'jobmanager');
      const podIp = (await node.kubectl('-n', namespace, 'get', 'pod', jobManager!.metadata.name, '-o', 'jsonpath={.status.podIP}')).trim();

      // By address, not name: DNS must not be what fails. DNS itself is allowed.
      const probe = `nslookup kubernetes.default.svc.cluster.local >/dev/null && echo DNS; ` +
        `for target in ${rest} ${podIp}; do printf 'GET /config HTTP/1.0\\r\\n\\r\\n' | nc -w 5 $target 8081 2>/dev/null | grep -q '^HTTP/1.1 200' && echo REACHED || echo BLOCKED; done`;
      const fromOwn = await probePod(namespace, 'probe-from-own', probe);
      const fromOther = await probePod(otherNamespace, 'probe-from-other', probe);
      expect(fromOwn).toBe('DNS\nREACHED\nREACHED'); // the port is open to its own namespace
      expect(fromOther).toBe('DNS\nBLOCKED\nBLOCKED');

      // The operator reads the job's state from that same port (RUNNING in the API came from
      // its status): the policy admits the operator's namespace.
      expect(await probePod('flink-operator', 'probe-from-operator', probe)).toBe('DNS\nREACHED\nREACHED');
      expect((await stateOf('pipeline', copy)).actualState).toBe('RUNNING');
    }, 600_000);

    it('comes back from its checkpoint when its JobManager pod, then its TaskManager pod, is deleted: no record lost, nothing re-applied', async () => {
      // Records go in through the API all along, 10 a second: before, during and after each
      // failure. (The node's 2 cores hold one job and the pod Flink asks for to replace one.)
      let published = 0;
      let publishing = true;
      const publisher = (async () => {
        while (publishing) {
          const batch = Array.from({ length: 5 }, (_, i) => ({ id: published + i + 1, amount: 1 }));
          await ok('mutation ($id: ID!, $r: [JSON!]!) { publishRecords(streamId: $id, records: $r) { count } }', { id: input, r: batch });
          published += batch.length;
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      })();

      const generation = async () => node.kubectl('-n', namespace, 'get', 'flinkdeployment', name, '-o', 'jsonpath={.metadata.generation}');
      const before = await generation();
      const checkpoints = join(store.dataDir, store.bucket, accountUuid, name, 'g1', 'checkpoints');
      const completed = async () =>
        (await readdir(checkpoints, { recursive: true }).catch(() => [] as string[])).filter((f) => f.endsWith('_metadata')).length;
      try {
        for (const component of ['jobmanager', 'taskmanager']) {
          // A checkpoint first, so that there is one to come back from.
          await waitFor('a completed checkpoint', async () => (await completed()) > 0 || undefined, 120_000, 1000);
          const [pod] = (await podsOfJob(namespace, name)).filter((p) => p.metadata.labels.component === component);
          expect(pod, component).toBeDefined();
          const deletedAt = Date.now();
          await node.kubectl('-n', namespace, 'delete', 'pod', pod!.metadata.name, '--grace-period', '0', '--force');
          // The API sees the job leave RUNNING, then reach it again, with no help from Weir.
          await waitFor(`the pipeline to leave RUNNING (${component} deleted)`, async () => (await stateOf('pipeline', copy)).actualState !== 'RUNNING' || undefined, 120_000, 500);
          await until('pipeline', copy, 'RUNNING');
          const recoveredMs = Date.now() - deletedAt;
          await waitFor(`a new ${component} pod running`, async () => {
            const found = (await podsOfJob(namespace, name)).filter((p) => p.metadata.labels.component === component);
            return found.some((p) => p.status.phase === 'Running' && p.metadata.name !== pod!.metadata.name) || undefined;
          }, POD_START_MS, 1000);
          console.log(`${component} pod deleted → RUNNING again (API) in ${recoveredMs} ms`);
        }
      } finally {
        publishing = false;
        await publisher;
      }
      // Weir wrote nothing: the operator and Flink's HA did it all.
      expect(await generation()).toBe(before);
      const history = (await ok('query ($id: ID!) { pipeline(id: $id) { history(first: 50) { edges { node { state } } } } }', { id: copy })).pipeline
        .history.edges.map((e: { node: { state: string } }) => e.node.state) as string[];
      expect(history.filter((state) => state === 'RUNNING').length).toBeGreaterThanOrEqual(3);

      // At least once across both failures: every record published reaches the output.
      const written = new Set(await allIds(input));
      expect(written.size).toBe(published);
      await waitFor('every input record in the output', async () => {
        const copied = new Set(await allIds(output));
        return [...written].every((id) => copied.has(id)) || undefined;
      }, 180_000, 1000);
      console.log(`${published} records published during the failures, all in the output`);
    }, 1_200_000);
  });

  it("refuses an activation beyond the namespace's own ResourceQuota with QUOTA_EXCEEDED, creating nothing; admitted jobs' pods were never refused by it", async () => {
    const namespace = await accountNamespace('ns');
    // Every pod the tests above ran was admitted by the account's quota: no pod creation
    // in the namespace was refused by it.
    const refusals = (await node.kubectl('-n', namespace, 'get', 'events', '-o', 'jsonpath={range .items[*]}{.reason}: {.message}{"\\n"}{end}'))
      .split('\n')
      .filter((line) => line.includes('exceeded quota'));
    expect(refusals).toEqual([]);

    // The tier allows another job, but the cluster's quota does not: an administrator
    // lowered this namespace's FlinkDeployment count to 0 (the quota admission plugin
    // enforces status.hard, which the quota controller copies from spec).
    const quota = async () => JSON.parse(await node.kubectl('-n', namespace, 'get', 'resourcequota', 'weir-quota', '-o', 'json')) as {
      spec: { hard: Record<string, string> };
      status: { hard?: Record<string, string> };
    };
    const COUNT = 'count/flinkdeployments.flink.apache.org';
    const allowed = (await quota()).spec.hard[COUNT]!;
    const setCount = async (value: string) => {
      await node.kubectl('-n', namespace, 'patch', 'resourcequota', 'weir-quota', '--type', 'merge', '-p', JSON.stringify({ spec: { hard: { [COUNT]: value } } }));
      await waitFor(`quota ${COUNT} enforced at ${value}`, async () => (await quota()).status.hard?.[COUNT] === value || undefined, 60_000, 500);
    };
    await stream('quota_in');
    await stream('quota_out');
    const id = (await ok('mutation { createPipeline(input: { name: "quota_copy", sql: "INSERT INTO quota_out SELECT id, amount FROM quota_in" }) { id } }'))
      .createPipeline.id as string;
    const name = `pipe-${decodeId(id, 'Pipeline')}`;
    await setCount('0');
    try {
      const refused = await t.gql('mutation ($id: ID!) { activatePipeline(id: $id) { id } }', { id }, { key });
      expect(refused.errors?.[0]?.extensions?.code, JSON.stringify(refused.errors)).toBe('QUOTA_EXCEEDED');
      // The quota's own figures (the tier allows more than 0 jobs).
      expect(refused.errors?.[0]?.message).toContain('active jobs: 0 of 0 in use, 1 more needed');
      // Nothing of the job was created, and the API says it is not running.
      expect(await names(namespace, 'flinkdeployments')).toEqual([]);
      expect(await names(namespace, 'secrets', 'weir.dev/job-id')).toEqual([]);
      expect((await stateOf('pipeline', id)).actualState).not.toBe('RUNNING');
      expect(await node.kubectl('-n', namespace, 'get', 'flinkdeployment', name, '--ignore-not-found', '-o', 'name')).toBe('');
    } finally {
      await setCount(allowed);
    }
  }, 300_000);
});

/** Runs `command` in a busybox pod of `namespace` to its end; resolves to its output. */
async function probePod(namespace: string, name: string, command: string): Promise<string> {
  const size = { cpu: '10m', memory: '16Mi' }; // within the account's quota, beside a job
  await node.apply({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace },
    spec: {
      restartPolicy: 'Never',
      containers: [{ name: 'probe', image: 'weir.local/busybox:1', imagePullPolicy: 'Never', command: ['sh', '-c', command], resources: { requests: size, limits: size } }],
    },
  });
  await waitFor(`pod ${namespace}/${name} to end`, async () => {
    const phase = await node.kubectl('-n', namespace, 'get', 'pod', name, '-o', 'jsonpath={.status.phase}');
    return phase === 'Succeeded' || phase === 'Failed' || undefined;
  }, 120_000, 500);
  const output = (await node.kubectl('-n', namespace, 'logs', name)).trim();
  await node.kubectl('-n', namespace, 'delete', 'pod', name, '--wait=false');
  return output;
}
