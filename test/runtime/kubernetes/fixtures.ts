import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  CoreV1Api,
  CustomObjectsApi,
  KubernetesObjectApi,
  loadAllYaml,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { createLogger } from '../../../src/platform/logger.js';
import type { JobRef, JobSpec, StreamBinding } from '../../../src/jobs/job-spec.js';
import { saslClientProperties, type StreamAccess } from '../../../src/streams/kafka-endpoint.js';
import { FLINK_GROUP, FLINK_PLURAL, FLINK_VERSION } from '../../../src/runtime/kubernetes/flink-deployment.js';
import { statusOf } from '../../../src/runtime/kubernetes/kube-errors.js';
import { KubernetesRuntime } from '../../../src/runtime/kubernetes/kubernetes-runtime.js';
import type { KubernetesRuntimeOptions, TierLimits } from '../../../src/runtime/kubernetes/kubernetes-options.js';
import type { KubernetesPreviewClusterOptions } from '../../../src/runtime/kubernetes/preview-cluster.js';
import { serviceAccountToken, type KubeTestEnv } from '../../helpers/kube.js';

export const FREE: TierLimits = { maxActiveJobs: 2, maxTaskCount: 4 };

/**
 * Stands in for the stream storage's job principals (tested against a real broker in
 * test/streams/kafka-tenancy.test.ts): every grant a new password, every call recorded.
 */
export class RecordedGrants {
  readonly granted: { jobId: string; password: string }[] = [];
  readonly revoked: string[] = [];

  grantJob = async (job: JobRef): Promise<StreamAccess> => {
    const password = `pw-${job.id}-${this.granted.length + 1}`;
    this.granted.push({ jobId: job.id, password });
    return {
      bootstrapServers: KAFKA_BOOTSTRAP,
      clientProperties: saslClientProperties('SASL_SSL', { mechanism: 'SCRAM-SHA-512', username: `weir-job-${job.id}`, password }),
    };
  };

  revokeJob = async (job: JobRef): Promise<void> => {
    this.revoked.push(job.id);
  };
}

export const KAFKA_BOOTSTRAP = 'kafka.weir-streams.svc:9092';

export function runtimeOptions(kubeConfig: KubeConfig, overrides: Partial<KubernetesRuntimeOptions> = {}): KubernetesRuntimeOptions {
  return {
    kubeConfig,
    logger: createLogger(process.env.WEIR_TEST_LOG_LEVEL ?? 'silent'),
    instance: 'weir-test',
    namespacePrefix: 'weir-acct-',
    image: 'weir/flink:1.20.3-java17',
    flinkVersion: 'v1_20',
    runnerJarPath: '/opt/weir/sql-runner.jar',
    storageDir: 's3://weir-flink',
    checkpointIntervalMs: 10_000,
    kafka: { topicFor: (accountId, streamId) => `weir.${accountId}.${streamId}`, ...grantsOf(new RecordedGrants()) },
    egress: [
      { namespace: 'weir-streams', ports: [9092] },
      { cidr: '10.0.0.0/8', ports: [443, 6443] },
    ],
    operatorNamespace: 'flink-operator',
    serviceAccountName: 'flink',
    flinkClusterRole: 'weir-flink',
    tierLimits: async () => FREE,
    quietWatchMs: 8_000,
    watchTimeoutSeconds: 5,
    ...overrides,
  };
}

/** The two calls a runtime's `kafka` options take, bound to `grants`. */
export const grantsOf = (grants: RecordedGrants) => ({ grantJob: grants.grantJob, revokeJob: grants.revokeJob });

export const newRuntime = (kubeConfig: KubeConfig, overrides: Partial<KubernetesRuntimeOptions> = {}) =>
  new KubernetesRuntime(runtimeOptions(kubeConfig, overrides));

const stream = (name: string): StreamBinding => ({
  id: randomUUID(),
  name,
  kind: 'APPEND',
  fields: [
    { name: 'id', type: 'BIGINT', nullable: false },
    { name: 'amount', type: 'DECIMAL(10, 2)', nullable: true },
  ],
  primaryKey: [],
});

export function pipelineSpec(accountId: string, overrides: Partial<JobSpec> = {}): JobSpec {
  const input = stream('orders');
  const output = stream('big_orders');
  return {
    kind: 'PIPELINE',
    id: randomUUID(),
    accountId,
    name: 'big_spenders',
    specVersion: 1,
    taskSize: 'S',
    taskCount: 1,
    deliveryGuarantee: 'EXACTLY_ONCE',
    checkpointIntervalMs: null,
    state: { generation: 1, startPositions: {} },
    program: { type: 'PIPELINE', sql: 'INSERT INTO big_orders SELECT id, amount FROM orders WHERE amount > 100', inputs: [input], output },
    ...overrides,
  };
}

export function connectionSpec(accountId: string, overrides: Partial<JobSpec> = {}): JobSpec {
  return {
    kind: 'CONNECTION',
    id: randomUUID(),
    accountId,
    name: 'orders_gen',
    specVersion: 1,
    taskSize: 'M',
    taskCount: 2,
    deliveryGuarantee: 'EXACTLY_ONCE',
    checkpointIntervalMs: null,
    state: { generation: 1, startPositions: {} },
    program: {
      type: 'CONNECTION',
      connector: 'datagen',
      connectionType: 'SOURCE',
      properties: { 'rows-per-second': 10 },
      secretProperties: { password: 'hunter2' },
      stream: stream('orders'),
    },
    ...overrides,
  };
}

/** Raw clients for a test to look at (and play the operator with). */
export function clients(kubeConfig: KubeConfig) {
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  return {
    core: kubeConfig.makeApiClient(CoreV1Api),
    objects: KubernetesObjectApi.makeApiClient(kubeConfig),
    custom,
    async deployments(namespace: string): Promise<any[]> {
      const list = await custom.listNamespacedCustomObject({ group: FLINK_GROUP, version: FLINK_VERSION, plural: FLINK_PLURAL, namespace });
      return (list as { items: any[] }).items;
    },
    /** Writes `status` the way the Flink operator does (a merge patch on the subresource). */
    async setStatus(namespace: string, name: string, status: Record<string, unknown>): Promise<void> {
      await custom.patchNamespacedCustomObjectStatus(
        { group: FLINK_GROUP, version: FLINK_VERSION, plural: FLINK_PLURAL, namespace, name, body: { status } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    },
  };
}

/** The gateway's own namespace, as deploy/ names it. */
export const PLATFORM_NAMESPACE = 'weir-system';
const RBAC = resolve(import.meta.dirname, '../../../deploy/rbac.yaml');

export const ignoreExists = (error: unknown) => {
  if ((error as { code?: number }).code !== 409) throw error;
};

/**
 * The platform namespace as deploy/ sets it up, with deploy/rbac.yaml applied; returns
 * the gateway ServiceAccount's token (bound only to that) and the RBAC objects.
 */
export async function setUpPlatform(env: KubeTestEnv): Promise<{ gatewayToken: string; rbac: KubernetesObject[] }> {
  const kube = clients(env.admin);
  await kube.core.createNamespace({ body: { metadata: { name: PLATFORM_NAMESPACE } } }).catch(ignoreExists);
  // No kubelet or ServiceAccount controller needed: the test's pods only need `default`.
  await kube.core
    .createNamespacedServiceAccount({ namespace: PLATFORM_NAMESPACE, body: { metadata: { name: 'default' } } })
    .catch(ignoreExists);
  const rbac = loadAllYaml(await readFile(RBAC, 'utf8')).filter(Boolean) as KubernetesObject[];
  for (const object of rbac) await kube.objects.create(object).catch(ignoreExists);
  return { gatewayToken: await serviceAccountToken(env.admin, PLATFORM_NAMESPACE, 'weir-gateway'), rbac };
}

export function previewClusterOptions(
  kubeConfig: KubeConfig,
  overrides: Partial<KubernetesPreviewClusterOptions> = {},
): KubernetesPreviewClusterOptions {
  return {
    kubeConfig,
    namespace: PLATFORM_NAMESPACE,
    instance: 'weir-test',
    image: 'weir/flink:1.20.3-java17',
    runnerJarPath: '/opt/weir/sql-runner.jar',
    flinkVersion: 'v1_20',
    poolSize: 2,
    serviceAccountName: 'flink',
    flinkClusterRole: 'weir-flink',
    logger: createLogger(process.env.WEIR_TEST_LOG_LEVEL ?? 'silent'),
    ...overrides,
  };
}

/** A pod in the platform namespace as a controller would label it; no kubelet ever runs it. */
export async function createPod(core: CoreV1Api, name: string, labels: Record<string, string>): Promise<void> {
  await core.createNamespacedPod({
    namespace: PLATFORM_NAMESPACE,
    body: {
      metadata: { name, labels },
      spec: { automountServiceAccountToken: false, containers: [{ name: 'flink-main-container', image: 'weir/flink:1.20.3-java17' }] },
    },
  });
}

export const podExists = (core: CoreV1Api, name: string) =>
  core.readNamespacedPod({ name, namespace: PLATFORM_NAMESPACE }).then(
    () => true,
    (error: unknown) => {
      if (statusOf(error)?.code === 404) return false;
      throw error;
    },
  );

/** Reads an object back by its kind, name and namespace. */
export function readBack(kubeConfig: KubeConfig, object: KubernetesObject): Promise<any> {
  return KubernetesObjectApi.makeApiClient(kubeConfig).read({
    apiVersion: object.apiVersion!,
    kind: object.kind!,
    metadata: { name: object.metadata!.name!, namespace: object.metadata!.namespace! },
  });
}
