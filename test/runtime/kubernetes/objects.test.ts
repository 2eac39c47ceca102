import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { namespaceContents, namespaceObject } from '../../../src/runtime/kubernetes/account-namespace.js';
import { flinkDeployment } from '../../../src/runtime/kubernetes/flink-deployment.js';
import { statusOf } from '../../../src/runtime/kubernetes/kube-errors.js';
import type { KubernetesRuntime } from '../../../src/runtime/kubernetes/kubernetes-runtime.js';
import { startKubeTestEnv, type KubeTestEnv } from '../../helpers/kube.js';
import { clients, connectionSpec, FREE, newRuntime, pipelineSpec, RecordedGrants, runtimeOptions } from './fixtures.js';

// Acceptance 1: what the runtime writes is valid for the real apiserver and the
// operator's CRD schema, and that schema really is enforced.
describe('Kubernetes objects against the real apiserver', () => {
  let env: KubeTestEnv;
  let runtime: KubernetesRuntime;
  let kube: ReturnType<typeof clients>;

  beforeAll(async () => {
    env = await startKubeTestEnv();
    kube = clients(env.admin);
    runtime = newRuntime(env.admin);
  }, 120_000);

  afterAll(async () => {
    await runtime?.close();
    await env?.stop();
  }, 60_000);

  it('accepts every object of an account namespace and of each kind and size of job (dry run)', async () => {
    const accountId = randomUUID();
    const options = runtimeOptions(env.admin);
    const input = {
      namespace: `weir-acct-${accountId}`,
      accountId,
      instance: 'weir-test',
      limits: FREE,
      serviceAccountName: 'flink',
      flinkClusterRole: 'weir-flink',
      operatorNamespace: 'flink-operator',
      egress: options.egress,
    };
    // The namespace for real (dry-run objects inside a namespace need it to exist).
    await kube.objects.create(namespaceObject(input));
    for (const object of namespaceContents(input)) {
      const created = await kube.objects.create(object, undefined, 'All');
      expect(created.metadata?.name).toBe(object.metadata?.name);
    }
    const specs = [
      pipelineSpec(accountId, { taskSize: 'S', taskCount: 1 }),
      pipelineSpec(accountId, { taskSize: 'L', taskCount: 3, specVersion: 7 }),
      connectionSpec(accountId, { taskSize: 'M', taskCount: 2 }),
    ];
    for (const spec of specs) {
      const { deployment, secret } = flinkDeployment(spec, input.namespace, options);
      const created = (await kube.objects.create(deployment, undefined, 'All')) as typeof deployment;
      // Nothing was pruned: the CRD knows every field we set.
      expect(created.spec).toEqual(deployment.spec);
      await kube.objects.create(secret(await new RecordedGrants().grantJob(spec)), undefined, 'All');
    }
  });

  it('writes objects the apiserver keeps as written when a job is applied', async () => {
    const accountId = randomUUID();
    const spec = connectionSpec(accountId);
    await runtime.apply(spec);
    const namespace = runtime.namespaceOf(accountId);
    const [deployment] = await kube.deployments(namespace);
    const { deployment: expected } = flinkDeployment(spec, namespace, runtimeOptions(env.admin));
    expect(deployment.spec).toEqual(expected.spec);
    expect(deployment.spec.job).toMatchObject({
      jarURI: 'local:///opt/weir/sql-runner.jar',
      args: ['--spec', '/opt/weir/spec/spec.json'],
      upgradeMode: 'last-state',
      parallelism: 2,
    });
    expect(deployment.spec.flinkConfiguration['high-availability.type']).toBe('kubernetes');
    expect(deployment.spec.jobManager.podTemplate.spec.securityContext.runAsNonRoot).toBe(true);
    // Weir's log config, not the operator's default: no connection password in a pod's log.
    const log4j = deployment.spec.logConfiguration['log4j-console.properties'];
    expect(log4j).toContain('%replace{%m}{(?i)(password=)[^,]*}{$1******}');
    expect(log4j).toContain('logger.cdcfetch.level = WARN');
  });

  it("adds the installation's Flink options (WEIR_K8S_FLINK_CONFIG) to a job, under Weir's own", () => {
    // A reserved option cannot come through the config (config.test.ts); Weir's would win anyway.
    const flinkConfig = { 's3.endpoint': 'http://198.19.255.1:9000', 's3.path.style.access': 'true', 'taskmanager.numberOfTaskSlots': '8' };
    const { deployment } = flinkDeployment(pipelineSpec(randomUUID()), 'ns', runtimeOptions(env.admin, { flinkConfig }));
    expect(deployment.spec!.flinkConfiguration).toMatchObject({
      's3.endpoint': 'http://198.19.255.1:9000',
      's3.path.style.access': 'true',
      'taskmanager.numberOfTaskSlots': '1',
      'high-availability.type': 'kubernetes',
    });
  });

  it('is checked against the CRD schema: an unknown upgradeMode is rejected', async () => {
    const accountId = randomUUID();
    const spec = pipelineSpec(accountId);
    await runtime.apply(spec); // sets up the namespace
    const namespace = runtime.namespaceOf(accountId);
    const { deployment } = flinkDeployment({ ...spec, id: randomUUID() }, namespace, runtimeOptions(env.admin));
    (deployment.spec!.job as Record<string, unknown>).upgradeMode = 'yolo';
    const error = await kube.objects.create(deployment, undefined, 'All').catch((e: unknown) => e);
    expect(statusOf(error)?.code).toBe(422);
    expect(statusOf(error)?.message).toMatch(/spec\.job\.upgradeMode: Unsupported value: "yolo"/);

    (deployment.spec!.job as Record<string, unknown>).upgradeMode = 'last-state';
    deployment.spec!.flinkVersion = 'v0_1';
    const versionError = await kube.objects.create(deployment, undefined, 'All').catch((e: unknown) => e);
    expect(statusOf(versionError)?.code).toBe(422);
  });
});
