import { AuthorizationV1Api, PatchStrategy, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusOf } from '../../../src/runtime/kubernetes/kube-errors.js';
import {
  KubernetesPreviewCluster,
  NotAPreviewTaskManagerError,
  type KubernetesPreviewClusterOptions,
} from '../../../src/runtime/kubernetes/preview-cluster.js';
import { serviceAccountToken, startKubeTestEnv, type KubeTestEnv } from '../../helpers/kube.js';
import { waitFor } from '../../helpers/wait-for.js';
import { clients, createPod, PLATFORM_NAMESPACE as NAMESPACE, podExists as podExistsIn, previewClusterOptions, readBack, setUpPlatform } from './fixtures.js';

function previewCluster(kubeConfig: KubeConfig, overrides: Partial<KubernetesPreviewClusterOptions> = {}) {
  return new KubernetesPreviewCluster(previewClusterOptions(kubeConfig, overrides));
}

// The Kubernetes preview session cluster: every object accepted by the real apiserver
// (with the operator's CRD schema), idempotent, TaskManager retirement limited to this
// cluster's TaskManagers, all with a token bound only to deploy/rbac.yaml.
describe('KubernetesPreviewCluster against the real apiserver', () => {
  let env: KubeTestEnv;
  let kube: ReturnType<typeof clients>;
  let gatewayToken: string;
  let rbac: KubernetesObject[];

  beforeAll(async () => {
    env = await startKubeTestEnv();
    kube = clients(env.admin);
    ({ gatewayToken, rbac } = await setUpPlatform(env));
  }, 120_000);

  afterAll(async () => {
    await env?.stop();
  }, 60_000);

  const read = (object: KubernetesObject): Promise<any> => readBack(env.admin, object);

  const all = (cluster: KubernetesPreviewCluster) => Object.values(cluster.manifests()) as KubernetesObject[];

  const fakePod = (name: string, labels: Record<string, string>) => createPod(kube.core, name, labels);

  const podExists = (name: string) => podExistsIn(kube.core, name);

  it('applies a session-mode FlinkDeployment, a SQL Gateway Deployment and Service the apiserver keeps as written', async () => {
    const cluster = previewCluster(env.kubeConfigFor(gatewayToken));
    await cluster.ensure();
    const m = cluster.manifests();

    const deployment = await read(m.flinkDeployment);
    // Nothing pruned: the CRD schema knows every field.
    expect(deployment.spec).toEqual(m.flinkDeployment.spec);
    expect(deployment.spec.job).toBeUndefined();
    expect(deployment.spec.flinkConfiguration).toMatchObject({
      'taskmanager.numberOfTaskSlots': '1',
      'slotmanager.redundant-taskmanager-num': '2',
      'table.dynamic-table-options.enabled': 'false',
      // Pre-warmed TaskManagers (dev.weir.runner.PreviewWarmupAgent), compiling with C1 only.
      'env.java.opts.taskmanager': '-javaagent:/opt/weir/sql-runner.jar -XX:TieredStopAtLevel=1',
    });
    expect(deployment.spec.taskManager.podTemplate.spec.securityContext.runAsNonRoot).toBe(true);
    expect(deployment.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'weir', 'weir.dev/instance': 'weir-test' });

    const gateway = await read(m.gatewayDeployment);
    const container = gateway.spec.template.spec.containers[0];
    expect(container.image).toBe('weir/flink:1.20.3-java17');
    expect(container.command.slice(0, 2)).toEqual(['/opt/flink/bin/sql-gateway.sh', 'start-foreground']);
    expect(container.command).toEqual(
      expect.arrayContaining([
        '-Dexecution.target=remote',
        '-Drest.address=weir-preview-rest.weir-system.svc',
        '-Drest.port=8081',
        '-Dsql-gateway.endpoint.rest.port=8083',
      ]),
    );
    expect(container.readinessProbe.httpGet).toEqual({ path: '/v1/info', port: 'rest', scheme: 'HTTP' });
    expect(container.resources.limits).toEqual({ cpu: '500m', memory: '768Mi' });
    expect(gateway.spec.template.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 9999 });

    const service = await read(m.gatewayService);
    expect(service.spec.selector).toEqual(gateway.spec.selector.matchLabels);
    expect(service.spec.ports).toMatchObject([{ port: 8083, targetPort: 'rest' }]);
    expect(cluster.endpoints().gatewayUrl).toBe('http://weir-preview-sql-gateway.weir-system.svc:8083');

    const binding = await read(m.roleBinding);
    expect(binding.roleRef.name).toBe('weir-flink');
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'flink', namespace: NAMESPACE }]);
  });

  it('is checked against the CRD schema: a wrong field value is rejected', async () => {
    const cluster = previewCluster(env.kubeConfigFor(gatewayToken), { name: 'weir-preview-bad' });
    const { flinkDeployment } = cluster.manifests();
    flinkDeployment.spec!.mode = 'yolo';
    const error = await kube.objects
      .patch(flinkDeployment, undefined, undefined, 'weir', true, PatchStrategy.ServerSideApply)
      .catch((e: unknown) => e);
    expect(statusOf(error)?.code).toBe(422);
    expect(statusOf(error)?.message).toMatch(/spec\.mode: Unsupported value: "yolo"/);
  });

  it('ensure() is idempotent: a second call, and a restarted gateway, change nothing', async () => {
    const cluster = previewCluster(env.kubeConfigFor(gatewayToken));
    await cluster.ensure();
    const versions = async () => Promise.all(all(cluster).map(async (o) => (await read(o)).metadata.resourceVersion as string));
    const before = await versions();
    await cluster.ensure();
    await previewCluster(env.kubeConfigFor(gatewayToken)).ensure();
    expect(await versions()).toEqual(before);

    // A changed pool size is one change to the FlinkDeployment alone.
    await previewCluster(env.kubeConfigFor(gatewayToken), { poolSize: 3 }).ensure();
    const after = await versions();
    const changed = all(cluster).filter((_, i) => after[i] !== before[i]).map((o) => o.kind);
    expect(changed).toEqual(['FlinkDeployment']);
    expect((await read(cluster.manifests().flinkDeployment)).spec.flinkConfiguration['slotmanager.redundant-taskmanager-num']).toBe('3');
    await cluster.ensure();
  });

  it("retireTaskManager deletes this cluster's TaskManager pod and refuses any other pod", async () => {
    const cluster = previewCluster(env.kubeConfigFor(gatewayToken));
    await cluster.ensure();
    const gatewaySelector = cluster.manifests().gatewayDeployment.spec.selector.matchLabels as Record<string, string>;
    // Pods as Flink's native resource manager and the Deployment controller would label them.
    await fakePod('weir-preview-taskmanager-1-1', { app: 'weir-preview', component: 'taskmanager', type: 'flink-native-kubernetes' });
    await fakePod('weir-preview-jm-0', { app: 'weir-preview', component: 'jobmanager', type: 'flink-native-kubernetes' });
    await fakePod('weir-preview-sql-gateway-0', gatewaySelector);
    await fakePod('other-taskmanager-1-1', { app: 'other', component: 'taskmanager', type: 'flink-native-kubernetes' });
    await fakePod('weir-gateway-0', { app: 'weir-gateway' });

    for (const pod of ['weir-preview-jm-0', 'weir-preview-sql-gateway-0', 'other-taskmanager-1-1', 'weir-gateway-0']) {
      await expect(cluster.retireTaskManager(pod), pod).rejects.toBeInstanceOf(NotAPreviewTaskManagerError);
      expect(await podExists(pod), pod).toBe(true);
    }

    await expect(cluster.retireTaskManager('weir-preview-taskmanager-1-1')).resolves.toBe(true);
    await waitFor('the TaskManager pod gone', async () => !(await podExists('weir-preview-taskmanager-1-1')), 10_000);
    // Already gone (say, retired twice after a gateway restart): nothing to do.
    await expect(cluster.retireTaskManager('weir-preview-taskmanager-1-1')).resolves.toBe(false);
  });

  it('remove() deletes the FlinkDeployment, the SQL Gateway Deployment and its Service', async () => {
    const cluster = previewCluster(env.kubeConfigFor(gatewayToken), { name: 'weir-preview-gone' });
    await cluster.ensure();
    const m = cluster.manifests();
    await cluster.remove();
    for (const object of [m.flinkDeployment, m.gatewayDeployment, m.gatewayService]) {
      await waitFor(`${object.kind} deleted`, () => read(object).then(() => false, (e: unknown) => statusOf(e)?.code === 404), 10_000);
    }
    await cluster.remove(); // idempotent
  });

  it("the gateway's token may touch pods only in the platform namespace", async () => {
    const authz = env.kubeConfigFor(gatewayToken).makeApiClient(AuthorizationV1Api);
    const allowed = async (verb: string, resource: string, namespace: string, group = '') =>
      (await authz.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { verb, resource, group, namespace } } } })).status?.allowed;
    expect(await allowed('delete', 'pods', NAMESPACE)).toBe(true);
    for (const [verb, resource, group] of [
      ['delete', 'pods', ''],
      ['get', 'pods', ''],
      ['create', 'deployments', 'apps'],
      ['patch', 'services', ''],
    ] as const) {
      expect(await allowed(verb, resource, 'weir-acct-x', group), `${verb} ${resource} in an account namespace`).toBe(false);
    }
    expect(await allowed('list', 'pods', NAMESPACE)).toBe(false);
    expect(await allowed('create', 'pods', NAMESPACE)).toBe(false);
  });

  it('needs every rule of the Role weir-gateway-preview: without any one of them it fails', async () => {
    const role = rbac.find((o) => o.kind === 'Role' && o.metadata?.name === 'weir-gateway-preview') as any;
    const rules: any[] = role.rules;
    expect(rules.length).toBeGreaterThan(0);
    for (let i = 0; i < rules.length; i += 1) {
      const name = `weir-gateway-preview-without-${i}`;
      await kube.objects.create({ ...role, metadata: { name, namespace: NAMESPACE }, rules: rules.filter((_, j) => j !== i) });
      await kube.objects.create({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name, namespace: NAMESPACE },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
        subjects: [{ kind: 'ServiceAccount', name, namespace: NAMESPACE }],
      } as KubernetesObject);
      // The same ClusterRole as the gateway's, and this Role short of one rule.
      await kube.objects.create({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'weir-gateway' },
        subjects: [{ kind: 'ServiceAccount', name, namespace: NAMESPACE }],
      } as KubernetesObject);
      const token = await serviceAccountToken(env.admin, NAMESPACE, name);
      const pod = `weir-preview-${i}-taskmanager-1-1`;
      await fakePod(pod, { app: `weir-preview-${i}`, component: 'taskmanager' });
      const cluster = previewCluster(env.kubeConfigFor(token), { name: `weir-preview-${i}` });
      const error = await (async () => {
        await cluster.ensure();
        await cluster.retireTaskManager(pod);
        await cluster.remove();
      })().then(() => undefined, (e: unknown) => e);
      expect(error, `rule ${i} (${JSON.stringify(rules[i])}) is not needed`).toBeDefined();
      expect(statusOf(error)?.code, String(error)).toBe(403);
    }
  }, 120_000);
});
