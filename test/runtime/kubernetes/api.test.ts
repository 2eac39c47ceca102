import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeId } from '../../../src/graphql/global-id.js';
import type { Db } from '../../../src/platform/database.js';
import type { KubernetesRuntime } from '../../../src/runtime/kubernetes/kubernetes-runtime.js';
import type { TierLimits } from '../../../src/runtime/kubernetes/kubernetes-options.js';
import { tierLimitsFromDb } from '../../../src/runtime/kubernetes/tier-limits.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { startKubeTestEnv, type KubeTestEnv } from '../../helpers/kube.js';
import { waitFor } from '../../helpers/wait-for.js';
import { clients, newRuntime } from './fixtures.js';

const STATE = `query ($id: ID!) { pipeline(id: $id) { desiredState actualState actualReason } }`;

/** What the operator writes as `status.error`: JSON of its FlinkResourceException. */
const OPERATOR_ERROR = JSON.stringify({
  type: 'org.apache.flink.kubernetes.operator.exception.ReconciliationException',
  message: 'org.apache.flink.runtime.JobException: Recovery is suppressed by NoRestartBackoffTimeStrategy',
  throwableList: [
    { type: 'org.apache.flink.runtime.JobException', message: 'Recovery is suppressed by NoRestartBackoffTimeStrategy' },
  ],
});

// Acceptance 2 (and 4 through the API): the GraphQL API over the Kubernetes runtime,
// with a test playing the operator by writing the status subresource.
describe('the API over the Kubernetes runtime', () => {
  let env: KubeTestEnv;
  let runtime: KubernetesRuntime;
  let t: TestApp;
  let kube: ReturnType<typeof clients>;
  let key: string;
  let accountUuid: string;
  let db: Db | undefined;
  /** When set, the namespace quota is tighter than the tier the API checks. */
  let quotaOverride: TierLimits | undefined;

  beforeAll(async () => {
    env = await startKubeTestEnv();
    kube = clients(env.admin);
    runtime = newRuntime(env.admin, {
      tierLimits: async (accountId) => quotaOverride ?? tierLimitsFromDb(db!)(accountId),
    });
    t = await startTestApp({ runtime });
    db = t.database.db;
    ({ key, accountUuid } = await t.signUp('Kube'));
    for (const name of ['orders', 'big_orders']) {
      const r = await t.gql(
        `mutation ($name: String!) { createStream(input: { name: $name, kind: APPEND, fields: [{ name: "id", type: "BIGINT" }, { name: "amount", type: "INT" }] }) { id } }`,
        { name },
        { key },
      );
      expect(r.errors).toBeUndefined();
    }
  }, 120_000);

  afterAll(async () => {
    await t?.close();
    await runtime?.close();
    await env?.stop();
  }, 60_000);

  async function createPipeline(name: string): Promise<string> {
    const r = await t.gql(
      `mutation ($name: String!) { createPipeline(input: { name: $name, sql: "INSERT INTO big_orders SELECT id, amount FROM orders WHERE amount > 100" }) { id } }`,
      { name },
      { key },
    );
    expect(r.errors).toBeUndefined();
    return r.data!.createPipeline.id;
  }

  const state = async (id: string) => (await t.gql(STATE, { id }, { key })).data!.pipeline;

  /** Reconciler passes until the API shows `actualState` (the watch may lag a write). */
  const reach = (id: string, actualState: string) =>
    waitFor(`pipeline to be ${actualState}`, async () => {
      await t.app.reconciler.pass();
      const s = await state(id);
      return s.actualState === actualState ? s : undefined;
    });

  it('signUp creates no namespace; activation does, and the operator-written status reaches the API', async () => {
    const namespace = runtime.namespaceOf(accountUuid);
    const absent = await kube.core.readNamespace({ name: namespace }).then(() => false, () => true);
    expect(absent).toBe(true);

    const id = await createPipeline('big_spenders');
    const uuid = decodeId(id, 'Pipeline');
    await t.gql('mutation ($id: ID!) { activatePipeline(id: $id) { id } }', { id }, { key });
    await t.app.reconciler.pass();
    expect(await state(id)).toMatchObject({ desiredState: 'ACTIVE', actualState: 'STARTING' });
    const [deployment] = await kube.deployments(namespace);
    expect(deployment.metadata.labels['weir.dev/job-id']).toBe(uuid);
    const name = deployment.metadata.name;

    await kube.setStatus(namespace, name, {
      lifecycleState: 'DEPLOYED',
      jobManagerDeploymentStatus: 'DEPLOYING',
      jobStatus: { state: 'RECONCILING' },
    });
    await waitFor('the watch to see DEPLOYED', async () =>
      (await kube.deployments(namespace))[0]?.status?.lifecycleState === 'DEPLOYED');
    await t.app.reconciler.pass();
    expect((await state(id)).actualState).toBe('STARTING');

    await kube.setStatus(namespace, name, {
      lifecycleState: 'STABLE',
      jobManagerDeploymentStatus: 'READY',
      jobStatus: { state: 'RUNNING', jobId: 'a'.repeat(32) },
    });
    expect(await reach(id, 'RUNNING')).toMatchObject({ actualReason: null });

    await kube.setStatus(namespace, name, {
      lifecycleState: 'FAILED',
      jobStatus: { state: 'FAILED' },
      error: OPERATOR_ERROR,
    });
    const failed = await reach(id, 'FAILED');
    expect(failed.actualReason).toBe(
      'org.apache.flink.runtime.JobException: Recovery is suppressed by NoRestartBackoffTimeStrategy',
    );

    await t.gql('mutation ($id: ID!) { deactivatePipeline(id: $id) { id } }', { id }, { key });
    await reach(id, 'STOPPED');
    expect(await kube.deployments(namespace)).toEqual([]);
    const secrets = await kube.core.listNamespacedSecret({ namespace, labelSelector: `weir.dev/job-id=${uuid}` });
    expect(secrets.items).toEqual([]);
  });

  it('refuses an activation the namespace quota would not admit: QUOTA_EXCEEDED, readable, nothing created', async () => {
    const namespace = runtime.namespaceOf(accountUuid);
    quotaOverride = { maxActiveJobs: 1, maxTaskCount: 4 };
    try {
      const first = await createPipeline('first');
      const second = await createPipeline('second');
      await t.gql('mutation ($id: ID!) { activatePipeline(id: $id) { id } }', { id: first }, { key });
      await t.app.reconciler.pass();
      const refused = await t.gql('mutation ($id: ID!) { activatePipeline(id: $id) { desiredState } }', { id: second }, { key });
      expect(refused.errors?.[0]?.extensions?.code).toBe('QUOTA_EXCEEDED');
      expect(refused.errors?.[0]?.message).toBe(
        `The account's quota does not allow another running job (pipeline "second") (active jobs: 1 of 1 in use, 1 more needed).`,
      );
      // Nothing half-created: the desired state is unchanged and only the first job exists.
      const state = await t.gql('query ($id: ID!) { pipeline(id: $id) { desiredState } }', { id: second }, { key });
      expect(state.data!.pipeline.desiredState).toBe('INACTIVE');
      await t.app.reconciler.pass();
      const deployments = await kube.deployments(namespace);
      expect(deployments.map((d) => d.metadata.labels['weir.dev/job-id'])).toEqual([decodeId(first, 'Pipeline')]);
      await t.gql('mutation ($id: ID!) { deactivatePipeline(id: $id) { id } }', { id: first }, { key });
      await reach(first, 'STOPPED');
    } finally {
      quotaOverride = undefined;
    }
  });
});
