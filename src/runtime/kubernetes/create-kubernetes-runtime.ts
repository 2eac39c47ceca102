import { KubeConfig } from '@kubernetes/client-node';
import type { Db } from '../../platform/database.js';
import type { Logger } from '../../platform/logger.js';
import type { KafkaEndpoint, StreamAccess } from '../../streams/kafka-endpoint.js';
import type { JobRef } from '../../jobs/job-spec.js';
import { KubernetesPreviewPool } from './preview-pool.js';
import { KubernetesPreviewCluster } from './preview-cluster.js';
import { KubernetesRuntime } from './kubernetes-runtime.js';
import type { EgressTarget, KubernetesRuntimeOptions } from './kubernetes-options.js';
import { tierLimitsFromDb } from './tier-limits.js';

/** The `WEIR_K8S_*` settings, as config.ts parses them. */
export interface KubernetesSettings {
  /** A kubeconfig file; unset means in-cluster (the pod's ServiceAccount token). */
  readonly kubeconfig: string | undefined;
  /** Label value that tells this installation's objects from another's on a shared cluster. */
  readonly instance: string;
  readonly namespacePrefix: string;
  readonly flinkImage: string;
  readonly flinkVersion: string;
  readonly runnerJar: string;
  readonly storageDir: string;
  readonly checkpointIntervalMs: number;
  /** WEIR_SAVEPOINT_TIMEOUT_MS: how long a deactivation waits for the operator's savepoint. */
  readonly savepointTimeoutMs: number;
  /** The Kafka that holds the streams, with the gateway's admin credentials. */
  readonly kafka: KafkaEndpoint;
  readonly egress: readonly EgressTarget[];
  /** WEIR_K8S_FLINK_CONFIG: Flink options added to every FlinkDeployment (runtime/kubernetes/flink-options.ts). */
  readonly flinkConfig: Readonly<Record<string, string>>;
  readonly operatorNamespace: string;
  readonly serviceAccount: string;
  readonly flinkClusterRole: string;
  /** The gateway's own namespace (deploy/rbac.yaml), where the preview session cluster runs. */
  readonly platformNamespace: string;
  /** The preview session cluster's FlinkDeployment; its SQL Gateway is `<name>-sql-gateway`. */
  readonly previewName: string;
  /** Overrides of the preview cluster's in-cluster URLs, for a gateway running outside the cluster. */
  readonly previewJobManagerUrl: string | undefined;
  readonly previewGatewayUrl: string | undefined;
  /** WEIR_K8S_PREVIEW_CPU_LIMIT: the session cluster's JobManager and SQL Gateway may burst to this many cores. */
  readonly previewCpuLimit: number | undefined;
}

export interface KubernetesRuntimeDeps {
  readonly db: Db;
  readonly logger: Logger;
  /** The topic of a stream (the stream storage decides; the same names as Kafka holds). */
  readonly topicFor: (accountId: string, streamId: string) => string;
  readonly ensureTopic?: (topic: string) => Promise<void>;
  /** A job's own Kafka principal (StreamStorage.grantJob / revokeJob). */
  readonly grantJob: (job: JobRef) => Promise<StreamAccess>;
  readonly revokeJob: (job: JobRef) => Promise<void>;
}

export function loadKubeConfig(kubeconfig: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else kc.loadFromCluster();
  return kc;
}

/** The runtime of `WEIR_RUNTIME=kubernetes`. */
export function createKubernetesRuntime(settings: KubernetesSettings, deps: KubernetesRuntimeDeps): KubernetesRuntime {
  const options: KubernetesRuntimeOptions = {
    kubeConfig: loadKubeConfig(settings.kubeconfig),
    logger: deps.logger.child({ component: 'kubernetes-runtime' }),
    instance: settings.instance,
    namespacePrefix: settings.namespacePrefix,
    image: settings.flinkImage,
    flinkVersion: settings.flinkVersion,
    runnerJarPath: settings.runnerJar,
    storageDir: settings.storageDir,
    checkpointIntervalMs: settings.checkpointIntervalMs,
    savepointTimeoutMs: settings.savepointTimeoutMs,
    kafka: { topicFor: deps.topicFor, ensureTopic: deps.ensureTopic, grantJob: deps.grantJob, revokeJob: deps.revokeJob },
    egress: settings.egress,
    flinkConfig: settings.flinkConfig,
    operatorNamespace: settings.operatorNamespace,
    serviceAccountName: settings.serviceAccount,
    flinkClusterRole: settings.flinkClusterRole,
    tierLimits: tierLimitsFromDb(deps.db),
  };
  return new KubernetesRuntime(options);
}

/** The preview session cluster of `WEIR_RUNTIME=kubernetes` and its TaskManager pool; nothing is applied until first use. */
export function createKubernetesPreview(
  settings: KubernetesSettings,
  deps: { readonly logger: Logger; readonly poolSize: number; readonly queueTimeoutMs: number; readonly kubeConfig?: KubeConfig },
): { readonly cluster: KubernetesPreviewCluster; readonly pool: KubernetesPreviewPool } {
  const cluster = new KubernetesPreviewCluster({
    kubeConfig: deps.kubeConfig ?? loadKubeConfig(settings.kubeconfig),
    namespace: settings.platformNamespace,
    instance: settings.instance,
    name: settings.previewName,
    image: settings.flinkImage,
    runnerJarPath: settings.runnerJar,
    flinkVersion: settings.flinkVersion,
    poolSize: deps.poolSize,
    flinkConfig: settings.flinkConfig,
    serviceAccountName: settings.serviceAccount,
    flinkClusterRole: settings.flinkClusterRole,
    jobManagerUrl: settings.previewJobManagerUrl,
    gatewayUrl: settings.previewGatewayUrl,
    platformCpuLimit: settings.previewCpuLimit,
    logger: deps.logger.child({ component: 'preview-cluster' }),
  });
  const pool = new KubernetesPreviewPool({
    cluster,
    queueTimeoutMs: deps.queueTimeoutMs,
    logger: deps.logger.child({ component: 'preview-pool' }),
  });
  return { cluster, pool };
}
