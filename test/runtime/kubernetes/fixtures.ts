import { randomUUID } from 'node:crypto';
import { CoreV1Api, CustomObjectsApi, KubernetesObjectApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { createLogger } from '../../../src/platform/logger.js';
import type { JobSpec, StreamBinding } from '../../../src/runtime/runtime.js';
import { FLINK_GROUP, FLINK_PLURAL, FLINK_VERSION } from '../../../src/runtime/kubernetes/flink-deployment.js';
import { KubernetesRuntime } from '../../../src/runtime/kubernetes/kubernetes-runtime.js';
import type { KubernetesRuntimeOptions, TierLimits } from '../../../src/runtime/kubernetes/kubernetes-options.js';

export const FREE: TierLimits = { maxActiveJobs: 2, maxTaskCount: 4 };

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
    kafka: { bootstrapServers: 'kafka.weir-streams.svc:9092', topicFor: (accountId, streamId) => `weir.${accountId}.${streamId}` },
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
