import { randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { AuthorizationV1Api, loadAllYaml, type KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubernetesQuotaError, statusOf } from '../../../src/runtime/kubernetes/kube-errors.js';
import type { KubernetesRuntime } from '../../../src/runtime/kubernetes/kubernetes-runtime.js';
import type { TierLimits } from '../../../src/runtime/kubernetes/kubernetes-options.js';
import { serviceAccountToken, startKubeTestEnv, type KubeTestEnv } from '../../helpers/kube.js';
import { waitFor } from '../../helpers/wait-for.js';
import { clients, newRuntime, pipelineSpec } from './fixtures.js';

const DEPLOY = resolve(import.meta.dirname, '../../../deploy');

async function manifests(file?: string): Promise<KubernetesObject[]> {
  const files = file ? [file] : (await readdir(DEPLOY)).filter((f) => f.endsWith('.yaml')).sort();
  const all: KubernetesObject[] = [];
  for (const f of files) all.push(...loadAllYaml(await readFile(join(DEPLOY, f), 'utf8')).filter(Boolean));
  return all;
}

// deploy/ checked by the apiserver, and acceptance 3: the runtime works with a token
// bound only to deploy/rbac.yaml's ClusterRole, and needs every rule of it.
describe('deploy/ manifests and least privilege', () => {
  let env: KubeTestEnv;
  let kube: ReturnType<typeof clients>;
  const runtimes: KubernetesRuntime[] = [];

  beforeAll(async () => {
    env = await startKubeTestEnv();
    kube = clients(env.admin);
  }, 120_000);

  afterAll(async () => {
    for (const runtime of runtimes) await runtime.close();
    await env?.stop();
  }, 60_000);

  it('creates every manifest in deploy/ (dry run)', async () => {
    const objects = await manifests();
    expect(objects.map((o) => o.kind).sort()).toEqual(
      ['ClusterRole', 'ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'Deployment', 'Namespace', 'Role', 'RoleBinding', 'Service', 'ServiceAccount'].sort(),
    );
    const namespace = objects.find((o) => o.kind === 'Namespace')!;
    await kube.objects.create(namespace, undefined, 'All');
    // Namespaced dry runs need the namespace to exist.
    await kube.objects.create(namespace);
    for (const object of objects.filter((o) => o.kind !== 'Namespace')) {
      const created = await kube.objects.create(object, undefined, 'All');
      expect(created.metadata?.name).toBe(object.metadata?.name);
    }
  });

  /** Everything the runtime does, each step checked; throws at the first refusal. */
  async function exercise(runtime: KubernetesRuntime, tiers: Map<string, TierLimits>): Promise<void> {
    const accountId = randomUUID();
    const namespace = runtime.namespaceOf(accountId);
    const a = pipelineSpec(accountId, { name: 'a' });
    const b = pipelineSpec(accountId, { name: 'b' });
    const c = pipelineSpec(accountId, { name: 'c' });
    await runtime.apply(a); // namespace set-up, create, apply
    // A job left half-made by a crash: create meets 409 and reads the object.
    const pending = (await kube.objects.read({ apiVersion: 'flink.apache.org/v1beta1', kind: 'FlinkDeployment', metadata: { name: `pipe-${a.id}`, namespace } })) as any;
    await kube.objects.create({
      apiVersion: 'flink.apache.org/v1beta1',
      kind: 'FlinkDeployment',
      metadata: { name: `pipe-${b.id}`, namespace, labels: { ...pending.metadata.labels, 'weir.dev/job-id': b.id, 'weir.dev/spec-version': '0' } },
      spec: pending.spec,
    } as KubernetesObject);
    await runtime.apply(b);
    await kube.setStatus(namespace, `pipe-${a.id}`, { lifecycleState: 'STABLE', jobStatus: { state: 'RUNNING' } });
    await waitFor('a RUNNING', async () => (await runtime.observe()).find((j) => j.id === a.id)?.phase === 'RUNNING', 10_000);
    await runtime.apply({ ...a, specVersion: 2 });
    await runtime.remove(a);
    await runtime.keptStates(); // Weir's ConfigMaps, in every namespace
    tiers.set(accountId, { maxActiveJobs: 1, maxTaskCount: 4 });
    await expect(runtime.admit(c)).rejects.toBeInstanceOf(KubernetesQuotaError);
    await expect(runtime.apply(c)).rejects.toBeInstanceOf(KubernetesQuotaError);
    await runtime.deleteAccountNamespace(accountId);
  }

  async function gatewayRuntime(token: string, tiers: Map<string, TierLimits>): Promise<KubernetesRuntime> {
    const runtime = newRuntime(env.kubeConfigFor(token), {
      tierLimits: async (accountId) => tiers.get(accountId) ?? { maxActiveJobs: 2, maxTaskCount: 4 },
      quotaReadyTimeoutMs: 10_000,
      keptStatesIntervalMs: 0,
    });
    runtimes.push(runtime);
    return runtime;
  }

  it('runs the whole runtime with a token bound only to the ClusterRole from deploy/rbac.yaml', async () => {
    for (const object of await manifests('rbac.yaml')) await kube.objects.create(object).catch(ignoreExists);
    const token = await serviceAccountToken(env.admin, 'weir-system', 'weir-gateway');
    const tiers = new Map<string, TierLimits>();
    const runtime = await gatewayRuntime(token, tiers);
    await exercise(runtime, tiers);

    // And nothing more: it can neither read Secrets nor touch Pods anywhere.
    const authz = env.kubeConfigFor(token).makeApiClient(AuthorizationV1Api);
    for (const [verb, resource] of [['get', 'secrets'], ['list', 'secrets'], ['create', 'pods'], ['list', 'pods'], ['update', 'clusterroles']]) {
      const review = await authz.createSelfSubjectAccessReview({
        body: { spec: { resourceAttributes: { verb, resource, group: resource === 'clusterroles' ? 'rbac.authorization.k8s.io' : '', namespace: 'weir-acct-x' } } },
      });
      expect(review.status?.allowed, `${verb} ${resource}`).toBe(false);
    }
  }, 60_000);

  it('needs every rule of that ClusterRole: without any one of them the runtime fails', async () => {
    const role = (await manifests('rbac.yaml')).find((o) => o.kind === 'ClusterRole' && o.metadata?.name === 'weir-gateway') as any;
    const rules: any[] = role.rules;
    for (let i = 0; i < rules.length; i += 1) {
      const name = `weir-gateway-without-${i}`;
      await kube.objects.create({ ...role, metadata: { name }, rules: rules.filter((_, j) => j !== i) });
      await kube.objects.create({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
        subjects: [{ kind: 'ServiceAccount', name, namespace: 'weir-system' }],
      } as KubernetesObject);
      const token = await serviceAccountToken(env.admin, 'weir-system', name);
      const tiers = new Map<string, TierLimits>();
      const runtime = await gatewayRuntime(token, tiers);
      const error = await exercise(runtime, tiers).then(() => undefined, (e: unknown) => e);
      // Refused by the apiserver for want of that rule (RBAC answers 403; creating the
      // RoleBinding without `bind` comes back as 404), not failing for another reason.
      expect(error, `rule ${i} (${JSON.stringify(rules[i])}) is not needed`).toBeDefined();
      expect(error).not.toBeInstanceOf(KubernetesQuotaError);
      expect([403, 404]).toContain(statusOf(error)?.code);
      await runtime.close();
    }
  }, 240_000);
});

function ignoreExists(error: unknown): void {
  if ((error as { code?: number }).code !== 409) throw error;
}
