import { randomUUID } from 'node:crypto';
import type { JobSpec } from '../../../src/jobs/job-spec.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubernetesQuotaError } from '../../../src/runtime/kubernetes/kube-errors.js';
import type { KubernetesRuntime } from '../../../src/runtime/kubernetes/kubernetes-runtime.js';
import { RuntimeQuotaError, RuntimeRejectedError } from '../../../src/runtime/runtime.js';
import { startKubeTestEnv, type KubeTestEnv } from '../../helpers/kube.js';
import { waitFor } from '../../helpers/wait-for.js';
import { clients, connectionSpec, grantsOf, KAFKA_BOOTSTRAP, newRuntime, pipelineSpec, RecordedGrants, runtimeOptions } from './fixtures.js';

/** What the operator records as the upgrade savepoint of a last-state deployment: none. */
const LAST_STATE = 'KUBERNETES_OPERATOR_LAST_STATE';

describe('KubernetesRuntime against the real apiserver', () => {
  let env: KubeTestEnv;
  let runtime: KubernetesRuntime;
  let kube: ReturnType<typeof clients>;
  /** Tier limits by account; FREE unless a test says otherwise. */
  const tiers = new Map<string, { maxActiveJobs: number; maxTaskCount: number }>();

  beforeAll(async () => {
    env = await startKubeTestEnv();
    kube = clients(env.admin);
    runtime = newRuntime(env.admin, {
      tierLimits: async (accountId) => tiers.get(accountId) ?? { maxActiveJobs: 2, maxTaskCount: 4 },
    });
  }, 120_000);

  afterAll(async () => {
    await runtime?.close();
    await env?.stop();
  }, 60_000);

  const secretsOf = async (namespace: string) =>
    (await kube.core.listNamespacedSecret({ namespace, labelSelector: 'app.kubernetes.io/managed-by=weir' })).items;

  it('sets up the account namespace on first activation, with quota, limits, network policy and RBAC', async () => {
    const accountId = randomUUID();
    const namespace = runtime.namespaceOf(accountId);
    const spec = pipelineSpec(accountId);
    await runtime.apply(spec);

    const ns = await kube.core.readNamespace({ name: namespace });
    expect(ns.metadata?.labels).toMatchObject({ 'weir.dev/account': accountId });
    const quota = await kube.core.readNamespacedResourceQuota({ name: 'weir-quota', namespace });
    // Filled by the quota controller: the quota is enforced.
    expect(quota.status?.hard).toMatchObject({ 'count/flinkdeployments.flink.apache.org': '2', pods: '6' });
    await kube.core.readNamespacedLimitRange({ name: 'weir-limits', namespace });
    const policy = (await kube.objects.read({
      apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'weir-flink', namespace },
    })) as any;
    expect(policy.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    await kube.core.readNamespacedServiceAccount({ name: 'flink', namespace });
    const binding = (await kube.objects.read({
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'weir-flink', namespace },
    })) as any;
    expect(binding.roleRef).toMatchObject({ kind: 'ClusterRole', name: 'weir-flink' });

    const [deployment, ...others] = await kube.deployments(namespace);
    expect(others).toEqual([]);
    expect(deployment.metadata.labels).toMatchObject({
      'weir.dev/account': accountId,
      'weir.dev/job-kind': 'pipeline',
      'weir.dev/job-id': spec.id,
      'weir.dev/spec-version': '1',
    });
    const [secret] = await secretsOf(namespace);
    expect(secret?.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'FlinkDeployment', uid: deployment.metadata.uid });
    const runner = JSON.parse(Buffer.from(secret!.data!['spec.json']!, 'base64').toString());
    expect(runner).toMatchObject({ name: 'weir-pipeline-big_spenders', parallelism: 1 });
    expect(runner.statements.at(-1)).toBe(spec.program.type === 'PIPELINE' ? spec.program.sql : '');
    expect(await runtime.observe()).toContainEqual(
      expect.objectContaining({ id: spec.id, accountId, kind: 'PIPELINE', specVersion: 1, phase: 'STARTING' }),
    );
  });

  it('is idempotent, redeploys a new spec version, and removes a job with its spec', async () => {
    const accountId = randomUUID();
    const namespace = runtime.namespaceOf(accountId);
    const spec = connectionSpec(accountId);
    await runtime.apply(spec);
    const [first] = await kube.deployments(namespace);
    await runtime.apply(spec);
    const [again] = await kube.deployments(namespace);
    expect(again.metadata.resourceVersion).toBe(first.metadata.resourceVersion);

    await runtime.apply({ ...spec, specVersion: 2, taskCount: 3 });
    const [changed] = await kube.deployments(namespace);
    expect(changed.metadata.labels['weir.dev/spec-version']).toBe('2');
    expect(changed.spec).toMatchObject({ restartNonce: 2, job: { parallelism: 3 } });
    await waitFor('the watch to see version 2', async () =>
      (await runtime.observe()).find((j) => j.id === spec.id && j.specVersion === 2));

    // A new state generation upgrades without the old state, into a folder of its own; the next change keeps state again.
    await runtime.apply({ ...spec, specVersion: 3, state: { generation: 2, startPositions: {} } });
    const [fresh] = await kube.deployments(namespace);
    expect(fresh.metadata.labels['weir.dev/state-generation']).toBe('2');
    expect(fresh.spec.job.upgradeMode).toBe('stateless');
    expect(fresh.spec.flinkConfiguration['execution.checkpointing.dir']).toMatch(/\/g2\/checkpoints$/);
    await waitFor('the watch to see version 3', async () =>
      (await runtime.observe()).find((j) => j.id === spec.id && j.specVersion === 3));
    await runtime.apply({ ...spec, specVersion: 4, state: { generation: 2, startPositions: {} } });
    expect((await kube.deployments(namespace))[0].spec.job.upgradeMode).toBe('last-state');

    // A deactivation asks for a savepoint; a job that is not running is stopped without one, and says so.
    expect(await runtime.remove(spec, { savepoint: true })).toEqual({
      note: expect.stringMatching(/^Stopped without a savepoint: the job was not running \(STARTING\);/),
    });
    expect(await runtime.remove(spec)).toEqual({ note: null }); // absent is fine
    expect(await kube.deployments(namespace)).toEqual([]);
    expect(await secretsOf(namespace)).toEqual([]);
    expect((await runtime.observe()).find((j) => j.id === spec.id)).toBeUndefined();
  });

  /** Applies the job and plays the operator's part: it runs; its first deployment recorded no savepoint. */
  async function running(spec: JobSpec, namespace: string, name: string): Promise<void> {
    await runtime.apply(spec);
    await kube.setStatus(namespace, name, { lifecycleState: 'STABLE', jobStatus: { state: 'RUNNING', upgradeSavepointPath: LAST_STATE } });
    await waitFor('the watch to see it RUNNING', async () => (await runtime.observe()).find((j) => j.id === spec.id && j.phase === 'RUNNING'));
  }

  it('deactivates a running job with the savepoint the operator takes when it suspends it, and starts it again from that savepoint', async () => {
    const accountId = randomUUID();
    const namespace = runtime.namespaceOf(accountId);
    const spec = pipelineSpec(accountId);
    const name = `pipe-${spec.id}`;
    const stateMap = () => kube.core.readNamespacedConfigMap({ name: `${name}-state`, namespace }).catch(() => undefined);
    await running(spec, namespace, name);

    const removed = runtime.remove(spec, { savepoint: true });
    // The runtime asks the operator to suspend the job with a savepoint, and waits for it.
    const suspended = await waitFor('the job suspended with upgradeMode savepoint', async () => {
      const [deployment] = await kube.deployments(namespace);
      return deployment?.spec.job.state === 'suspended' ? deployment : undefined;
    });
    expect(suspended.spec.job.upgradeMode).toBe('savepoint');
    const savepoint = `s3://weir-test/${accountId}/${name}/g1/savepoints/savepoint-0a1b2c-0123456789ab`;
    await kube.setStatus(namespace, name, { lifecycleState: 'SUSPENDED', jobStatus: { state: 'FINISHED', upgradeSavepointPath: savepoint } });
    expect(await removed).toEqual({ note: null });
    expect(await kube.deployments(namespace)).toEqual([]);
    expect((await stateMap())?.data).toEqual({ stateGeneration: '1', savepoint });

    // The next activation of the same generation starts from it; a new generation does not.
    await runtime.apply({ ...spec, specVersion: 2 });
    expect((await kube.deployments(namespace))[0].spec.job.initialSavepointPath).toBe(savepoint);
    await runtime.remove(spec);
    await runtime.apply({ ...spec, specVersion: 3, state: { generation: 2, startPositions: {} } });
    expect((await kube.deployments(namespace))[0].spec.job).not.toHaveProperty('initialSavepointPath');

    // Stopped again, its record is listed as kept state (which the reconciler discards once
    // the job is deleted); deleting the job deletes its savepoint's record too.
    await runtime.remove(spec);
    expect(await stateMap()).toBeDefined();
    const lister = newRuntime(env.admin, { keptStatesIntervalMs: 0 });
    try {
      expect((await lister.keptStates()).filter((ref) => ref.accountId === accountId)).toEqual([{ kind: 'PIPELINE', id: spec.id, accountId }]);
      await lister.remove(spec, { discardState: true });
      expect(await stateMap()).toBeUndefined();
      expect((await lister.keptStates()).filter((ref) => ref.accountId === accountId)).toEqual([]);
    } finally {
      await lister.close();
    }
  });

  it('stops a running job whose savepoint does not come in time, and says why', async () => {
    const accountId = randomUUID();
    const namespace = runtime.namespaceOf(accountId);
    const spec = connectionSpec(accountId);
    const name = `conn-${spec.id}`;
    await running(spec, namespace, name);
    // The operator never finishes the suspension (it reports an error instead).
    const impatient = newRuntime(env.admin, { savepointTimeoutMs: 1500 });
    try {
      const removed = impatient.remove(spec, { savepoint: true });
      await waitFor('the suspension asked for', async () => (await kube.deployments(namespace))[0]?.spec.job.state === 'suspended' || undefined);
      await kube.setStatus(namespace, name, { error: JSON.stringify({ type: 'SavepointException', message: 'Savepoint failed: Checkpoint Coordinator is suspending.' }) });
      expect(await removed).toEqual({
        note: expect.stringMatching(/^Stopped without a savepoint: the operator took no savepoint within 2 s \(Savepoint failed: Checkpoint Coordinator is suspending\.\);/),
      });
      expect(await kube.deployments(namespace)).toEqual([]);
    } finally {
      await impatient.close();
    }
  });

  it('gives each deployment of a job Kafka credentials of its own, in its spec Secret only, and revokes them on removal', async () => {
    const grants = new RecordedGrants();
    const own = newRuntime(env.admin, {
      tierLimits: async () => ({ maxActiveJobs: 2, maxTaskCount: 4 }),
      kafka: { ...runtimeOptions(env.admin).kafka, ...grantsOf(grants) },
    });
    try {
      const accountId = randomUUID();
      const namespace = own.namespaceOf(accountId);
      const spec = pipelineSpec(accountId);
      const specOf = async () => {
        const [secret] = await secretsOf(namespace);
        return JSON.parse(Buffer.from(secret!.data!['spec.json']!, 'base64').toString('utf8')) as { statements: string[] };
      };
      await own.apply(spec);
      await own.apply(spec); // already at this version: no new credentials
      expect(grants.granted.map((g) => g.jobId)).toEqual([spec.id]);
      const first = grants.granted[0]!.password;
      const tables = (await specOf()).statements.filter((s) => s.startsWith('CREATE TEMPORARY TABLE'));
      expect(tables).toHaveLength(2);
      for (const table of tables) {
        expect(table).toContain(`'properties.bootstrap.servers' = '${KAFKA_BOOTSTRAP}'`);
        expect(table).toContain("'properties.security.protocol' = 'SASL_SSL'");
        expect(table).toContain(`username="weir-job-${spec.id}" password="${first}"`);
      }
      // The FlinkDeployment, which more can read than the Secret, carries none of it.
      const [deployment] = await kube.deployments(namespace);
      expect(JSON.stringify(deployment)).not.toContain(first);

      await own.apply({ ...spec, specVersion: 2 });
      const second = grants.granted[1]!.password;
      expect(second).not.toBe(first);
      const statements = (await specOf()).statements.join('\n');
      expect(statements).toContain(`password="${second}"`);
      expect(statements).not.toContain(first);

      await own.remove(spec);
      expect(grants.revoked).toEqual([spec.id]);
    } finally {
      await own.close();
    }
  });

  it('refuses a job beyond the namespace quota with a readable reason, leaving nothing half-created', async () => {
    const accountId = randomUUID();
    tiers.set(accountId, { maxActiveJobs: 1, maxTaskCount: 4 });
    const namespace = runtime.namespaceOf(accountId);
    const first = pipelineSpec(accountId);
    const second = pipelineSpec(accountId, { name: 'one_too_many' });
    await runtime.apply(first);

    const admitted = await runtime.admit(second).catch((e: unknown) => e);
    expect(admitted).toBeInstanceOf(KubernetesQuotaError);
    const error = await runtime.apply(second).catch((e: unknown) => e);
    // Permanent for this spec (the reconciler marks it FAILED), and a quota refusal (the API says QUOTA_EXCEEDED).
    expect(error).toBeInstanceOf(RuntimeRejectedError);
    expect(error).toBeInstanceOf(RuntimeQuotaError);
    expect((error as RuntimeQuotaError).exceeded).toEqual([{ resource: 'count/flinkdeployments.flink.apache.org', requested: '1', used: '1', limited: '1' }]);
    expect((error as Error).message).toBe(
      `The account's quota does not allow another running job (pipeline "one_too_many") (active jobs: 1 of 1 in use, 1 more needed).`,
    );
    const deployments = await kube.deployments(namespace);
    expect(deployments.map((d) => d.metadata.labels['weir.dev/job-id'])).toEqual([first.id]);
    expect((await secretsOf(namespace)).map((s) => s.metadata?.labels?.['weir.dev/job-id'])).toEqual([first.id]);

    // A higher tier raises the quota the next time a job is applied.
    tiers.set(accountId, { maxActiveJobs: 2, maxTaskCount: 4 });
    await runtime.apply(second);
    expect(await kube.deployments(namespace)).toHaveLength(2);
  });

  it('deletes an account namespace with everything in it, and sets it up again on a later activation', async () => {
    const accountId = randomUUID();
    const namespace = runtime.namespaceOf(accountId);
    const spec = pipelineSpec(accountId);
    await runtime.apply(spec);
    await runtime.deleteAccountNamespace(accountId);
    await runtime.deleteAccountNamespace(accountId); // already going: fine
    // The namespace controller waits 5 s before it empties a namespace.
    await waitFor('the namespace to be gone', async () =>
      (await kube.core.readNamespace({ name: namespace }).then(() => false, () => true)), 60_000, 200);
    await waitFor('the watch to see the job gone', async () => !(await runtime.observe()).some((j) => j.id === spec.id));

    await runtime.apply(spec);
    expect(await kube.deployments(namespace)).toHaveLength(1);
  }, 90_000);

  it('sees only the jobs of its own installation (instance label) on a shared cluster', async () => {
    const spec = pipelineSpec(randomUUID());
    await runtime.apply(spec);
    const other = newRuntime(env.admin, { instance: 'staging' });
    try {
      const otherSpec = pipelineSpec(randomUUID());
      await other.apply(otherSpec);
      const theirs = await other.observe();
      expect(theirs.map((j) => j.id)).toEqual([otherSpec.id]);
      await waitFor('ours to see its job', async () => (await runtime.observe()).some((j) => j.id === spec.id));
      expect((await runtime.observe()).some((j) => j.id === otherSpec.id)).toBe(false);
    } finally {
      await other.close();
    }
  });
});
