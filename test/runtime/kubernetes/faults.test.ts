import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../src/app.js';
import { decodeId } from '../../../src/graphql/global-id.js';
import { createLogger } from '../../../src/platform/logger.js';
import type { KubernetesRuntime } from '../../../src/runtime/kubernetes/kubernetes-runtime.js';
import { startTestApp } from '../../helpers/app.js';
import { RuntimeRejectedError } from '../../../src/runtime/runtime.js';
import { kubeConfigFor, serviceAccountToken, startFreezableProxy, startKubeTestEnv, type KubeTestEnv } from '../../helpers/kube.js';
import { waitFor } from '../../helpers/wait-for.js';
import { clients, newRuntime, pipelineSpec } from './fixtures.js';

const RUNNING = { lifecycleState: 'STABLE', jobManagerDeploymentStatus: 'READY', jobStatus: { state: 'RUNNING' } };
const RESTARTING = { lifecycleState: 'STABLE', jobManagerDeploymentStatus: 'READY', jobStatus: { state: 'RESTARTING' } };

// Acceptance 5: the apiserver goes away and comes back, a watch goes silent, the gateway
// dies halfway through an activation.
describe('Kubernetes runtime faults', () => {
  let env: KubeTestEnv;
  let kube: ReturnType<typeof clients>;
  const runtimes: KubernetesRuntime[] = [];
  const track = (runtime: KubernetesRuntime) => (runtimes.push(runtime), runtime);

  beforeAll(async () => {
    env = await startKubeTestEnv();
    kube = clients(env.admin);
  }, 120_000);

  afterAll(async () => {
    for (const runtime of runtimes) await runtime.close();
    await env?.stop();
  }, 60_000);

  let crippled: string | undefined;
  /**
   * A gateway whose token may create FlinkDeployments but not write Secrets fails right
   * after step 1 of apply(): the state a crash at that point leaves behind.
   */
  async function crippledToken(): Promise<string> {
    if (crippled) return crippled;
    await kube.objects.create({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'crippled' },
      rules: [
        { apiGroups: [''], resources: ['namespaces', 'resourcequotas', 'limitranges', 'serviceaccounts'], verbs: ['get', 'create', 'patch'] },
        // apply() reads the job's kept savepoint (ConfigMap <deployment>-state) before step 1.
        { apiGroups: [''], resources: ['configmaps'], verbs: ['get'] },
        { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: ['create', 'patch'] },
        { apiGroups: ['rbac.authorization.k8s.io'], resources: ['rolebindings'], verbs: ['create', 'patch'] },
        { apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterroles'], verbs: ['bind'], resourceNames: ['weir-flink'] },
        { apiGroups: ['flink.apache.org'], resources: ['flinkdeployments'], verbs: ['get', 'list', 'watch', 'create'] },
      ],
    } as never);
    await kube.objects.create({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'crippled' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'crippled' },
      subjects: [{ kind: 'ServiceAccount', name: 'crippled', namespace: 'crash-test' }],
    } as never);
    crippled = await serviceAccountToken(env.admin, 'crash-test', 'crippled');
    return crippled;
  }

  const phaseOf = async (runtime: KubernetesRuntime, id: string) => (await runtime.observe()).find((j) => j.id === id)?.phase;

  it('keeps watching across a 10 s apiserver outage: a status change after it shows up', async () => {
    const runtime = track(newRuntime(env.admin));
    const spec = pipelineSpec(randomUUID());
    await runtime.apply(spec);
    const namespace = runtime.namespaceOf(spec.accountId);
    const [deployment] = await kube.deployments(namespace);
    await kube.setStatus(namespace, deployment.metadata.name, RUNNING);
    await waitFor('RUNNING', async () => (await phaseOf(runtime, spec.id)) === 'RUNNING');
    const before = { ...runtime.watchStats };

    await env.stopApiserver();
    // While it is down: the last known state is still reported; writes fail as transient errors.
    expect(await phaseOf(runtime, spec.id)).toBe('RUNNING');
    const during = await runtime.apply({ ...spec, specVersion: 2 }).catch((e: unknown) => e);
    expect(during).toBeInstanceOf(Error);
    expect(during).not.toBeInstanceOf(RuntimeRejectedError);
    // The outage itself is the fault under test, so it lasts a fixed time.
    await new Promise((r) => setTimeout(r, 10_000));
    await env.startApiserver();

    await kube.setStatus(namespace, deployment.metadata.name, RESTARTING);
    await waitFor('the restarted watch to deliver RESTARTING', async () => (await phaseOf(runtime, spec.id)) === 'RECOVERING', 30_000);
    const after = runtime.watchStats;
    expect(after.failures).toBeGreaterThan(before.failures);
    expect(after.watches).toBeGreaterThan(before.watches);
    // A restarted apiserver's watch cache starts at the current etcd revision (it wrote its
    // own leases on start), so resuming from the old version gets 410 Gone: a re-list.
    expect(after.gone).toBeGreaterThan(before.gone);
    expect(after.lists).toBeGreaterThan(before.lists);
  }, 90_000);

  it('abandons a watch that goes quiet and sees changes through a new one', async () => {
    const proxy = await startFreezableProxy(env.apiserverUrl);
    try {
      // The server would end a watch only after 60 s: only the quiet timer can save it.
      const runtime = track(
        // After the outage test the controller-manager's informers re-list with backoff; on a
        // loaded machine filling a new quota's status can take well over the default 30 s.
        newRuntime(kubeConfigFor(proxy.url, env.caData, env.adminToken), {
          quietWatchMs: 3_000,
          watchTimeoutSeconds: 60,
          quotaReadyTimeoutMs: 150_000,
        }),
      );
      const spec = pipelineSpec(randomUUID());
      await runtime.apply(spec);
      const namespace = runtime.namespaceOf(spec.accountId);
      const [deployment] = await kube.deployments(namespace);
      await waitFor('the job in the cache', async () => (await phaseOf(runtime, spec.id)) === 'STARTING');
      const quietBefore = runtime.watchStats.quiet;

      proxy.freeze();
      await kube.setStatus(namespace, deployment.metadata.name, RUNNING);
      await waitFor('RUNNING through a new watch', async () => (await phaseOf(runtime, spec.id)) === 'RUNNING', 60_000);
      expect(runtime.watchStats.quiet).toBeGreaterThan(quietBefore);
    } finally {
      await proxy.close();
    }
  }, 240_000);

  it('converges to exactly the expected objects when the gateway died halfway through an activation', async () => {
    const token = await crippledToken();
    const dying = track(newRuntime(env.kubeConfigFor(token)));

    const active = pipelineSpec(randomUUID());
    const dropped = pipelineSpec(randomUUID());
    for (const spec of [active, dropped]) {
      const error = await dying.apply(spec).catch((e: unknown) => e);
      expect(String(error)).toMatch(/403|forbidden/i);
    }
    await dying.close();
    const pending = await kube.deployments(dying.namespaceOf(active.accountId));
    expect(pending.map((d) => d.metadata.labels['weir.dev/spec-version'])).toEqual(['0']);

    // The restarted gateway reports the half-made jobs at version 0, so the reconciler
    // applies the one still wanted and removes the one deactivated meanwhile.
    const restarted = track(newRuntime(env.admin));
    const observed = await waitFor('both half-made jobs', async () => {
      const jobs = (await restarted.observe()).filter((j) => j.id === active.id || j.id === dropped.id);
      return jobs.length === 2 ? jobs : undefined;
    });
    expect(observed.map((j) => j.specVersion)).toEqual([0, 0]);
    await restarted.apply(active);
    await restarted.remove(dropped);

    const namespaceOfActive = restarted.namespaceOf(active.accountId);
    const [deployment, ...more] = await kube.deployments(namespaceOfActive);
    expect(more).toEqual([]);
    expect(deployment.metadata.labels['weir.dev/spec-version']).toBe('1');
    const secrets = (await kube.core.listNamespacedSecret({ namespace: namespaceOfActive, labelSelector: 'app.kubernetes.io/managed-by=weir' })).items;
    expect(secrets.map((s) => s.metadata?.ownerReferences?.[0]?.uid)).toEqual([deployment.metadata.uid]);
    expect(await kube.deployments(restarted.namespaceOf(dropped.accountId))).toEqual([]);
    await waitFor('observe to show exactly the applied job', async () => {
      const jobs = (await restarted.observe()).filter((j) => j.id === active.id || j.id === dropped.id);
      return jobs.length === 1 && jobs[0]!.id === active.id && jobs[0]!.specVersion === 1;
    });
  }, 60_000);

  it('a restarted gateway (new app and runtime over the same database) finishes a half-made activation', async () => {
    // An installation of its own: the jobs of the other tests here are not its business.
    const instance = 'restart-test';
    const dying = track(newRuntime(env.kubeConfigFor(await crippledToken()), { instance }));
    const first = await startTestApp({ runtime: dying });
    const { key, accountUuid } = await first.signUp('Crash');
    for (const name of ['orders', 'big_orders']) {
      await first.gql(`mutation ($n: String!) { createStream(input: { name: $n, kind: APPEND, fields: [{ name: "id", type: "BIGINT" }] }) { id } }`, { n: name }, { key });
    }
    const created = await first.gql(
      `mutation { createPipeline(input: { name: "p", sql: "INSERT INTO big_orders SELECT id FROM orders" }) { id } }`, {}, { key });
    const id = created.data!.createPipeline.id as string;
    await first.gql('mutation ($id: ID!) { activatePipeline(id: $id) { id } }', { id }, { key });
    await first.app.reconciler.pass(); // apply fails halfway (logged, retried later)
    await dying.close();
    const namespace = dying.namespaceOf(accountUuid);
    expect((await kube.deployments(namespace)).map((d) => d.metadata.labels['weir.dev/spec-version'])).toEqual(['0']);

    try {
      const runtime = track(newRuntime(env.admin, { instance }));
      const second = buildApp({
        config: first.config,
        logger: createLogger('silent'),
        db: first.database.db,
        secret: 'test-secret-test-secret-test-secret!',
        runtime,
      });
      await waitFor('the restarted gateway to apply the job', async () => {
        await second.reconciler.pass();
        const [d] = await kube.deployments(namespace);
        return d?.metadata.labels['weir.dev/spec-version'] === '1';
      });
      const [deployment, ...more] = await kube.deployments(namespace);
      expect(more).toEqual([]);
      expect(deployment.metadata.labels['weir.dev/job-id']).toBe(decodeId(id, 'Pipeline'));
      await kube.setStatus(namespace, deployment.metadata.name, RUNNING);
      await waitFor('RUNNING in the database', async () => {
        await second.reconciler.pass();
        const r = await first.gql('query ($id: ID!) { pipeline(id: $id) { actualState } }', { id }, { key });
        return r.data!.pipeline.actualState === 'RUNNING';
      });
      const secrets = (await kube.core.listNamespacedSecret({ namespace, labelSelector: 'app.kubernetes.io/managed-by=weir' })).items;
      expect(secrets).toHaveLength(1);
    } finally {
      await first.close();
    }
  }, 60_000);
});
