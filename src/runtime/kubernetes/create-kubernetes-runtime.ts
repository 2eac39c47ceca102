import { KubeConfig } from '@kubernetes/client-node';
import type { Db } from '../../platform/database.js';
import type { Logger } from '../../platform/logger.js';
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
  readonly kafkaBootstrap: string;
  readonly egress: readonly EgressTarget[];
  readonly operatorNamespace: string;
  readonly serviceAccount: string;
  readonly flinkClusterRole: string;
}

export interface KubernetesRuntimeDeps {
  readonly db: Db;
  readonly logger: Logger;
  /** The topic of a stream (the stream storage decides; the same names as Kafka holds). */
  readonly topicFor: (accountId: string, streamId: string) => string;
  readonly ensureTopic?: (topic: string) => Promise<void>;
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
    kafka: { bootstrapServers: settings.kafkaBootstrap, topicFor: deps.topicFor, ensureTopic: deps.ensureTopic },
    egress: settings.egress,
    operatorNamespace: settings.operatorNamespace,
    serviceAccountName: settings.serviceAccount,
    flinkClusterRole: settings.flinkClusterRole,
    tierLimits: tierLimitsFromDb(deps.db),
  };
  return new KubernetesRuntime(options);
}
