import type { KubeConfig } from '@kubernetes/client-node';
import type { JobKind, TaskSize } from '../../jobs/job.table.js';
import type { Logger } from '../../platform/logger.js';
import { SECOND } from '../../platform/time.js';
import type { StreamAccess } from '../../streams/kafka-endpoint.js';
import type { JobRef } from '../../jobs/job-spec.js';

/** What an account's tier allows; the namespace's ResourceQuota is derived from it. */
export interface TierLimits {
  readonly maxActiveJobs: number;
  /** Tasks (TaskManagers) over all active jobs. */
  readonly maxTaskCount: number;
}

/** A destination Flink pods may reach (besides DNS and their own namespace). */
export interface EgressTarget {
  /** An address range, e.g. the Kafka brokers' or the object store's. */
  readonly cidr?: string;
  /** Or every pod of a namespace (by name), e.g. the one Kafka runs in. */
  readonly namespace?: string;
  readonly ports: readonly number[];
}

export interface KubernetesRuntimeOptions {
  readonly kubeConfig: KubeConfig;
  readonly logger: Logger;
  /**
   * Names this gateway's objects (label `weir.dev/instance`): a gateway sees and removes
   * only its own, so two installations (say staging and production) can share a cluster.
   */
  readonly instance: string;
  /** Account namespaces are `<prefix><account uuid>`. */
  readonly namespacePrefix: string;
  /** The Flink image carrying the SQL runner (deploy/flink.Dockerfile). */
  readonly image: string;
  /** FlinkDeployment `flinkVersion`, e.g. `v1_20`. */
  readonly flinkVersion: string;
  /** Path of the SQL runner jar inside the image. */
  readonly runnerJarPath: string;
  /** Base URI for checkpoints, savepoints and HA metadata, e.g. `s3://weir-flink`. */
  readonly storageDir: string;
  /** Flink options of the installation, added to every FlinkDeployment (flink-options.ts). */
  readonly flinkConfig?: Readonly<Record<string, string>>;
  readonly checkpointIntervalMs: number;
  /** Kafka as Flink pods reach it: the topic of each stream, and each job's principal. */
  readonly kafka: {
    topicFor(accountId: string, streamId: string): string;
    /** New credentials for a job, good for its account's topics only (StreamStorage.grantJob). */
    grantJob(job: JobRef): Promise<StreamAccess>;
    revokeJob(job: JobRef): Promise<void>;
    /** Creates a stream's topic if missing (the stream storage's job). */
    ensureTopic?(topic: string): Promise<void>;
  };
  /** Where Flink pods may connect: Kafka, the object store, the Kubernetes API (HA). */
  readonly egress: readonly EgressTarget[];
  /** The namespace of the Flink operator, whose pods may reach the JobManager's REST port. */
  readonly operatorNamespace: string;
  /** The ServiceAccount the Flink pods run as, created in every account namespace. */
  readonly serviceAccountName: string;
  /** ClusterRole (from deploy/) bound to that ServiceAccount in each account namespace. */
  readonly flinkClusterRole: string;
  readonly tierLimits: (accountId: string) => Promise<TierLimits>;
  /** A watch with no event for this long is presumed dead and restarted. */
  readonly quietWatchMs?: number;
  /** The apiserver closes each watch after this long (a normal, expected end). */
  readonly watchTimeoutSeconds?: number;
  /** How long a deactivation waits for the operator to suspend the job with a savepoint (default 60 s). */
  readonly savepointTimeoutMs?: number;
  /** How often the state ConfigMaps of stopped jobs are listed, for the reconciler to discard deleted jobs' (default 60 s; 0: every time). */
  readonly keptStatesIntervalMs?: number;
  /** How long to wait for the new namespace's quota to be enforced. */
  readonly quotaReadyTimeoutMs?: number;
}

export const FIELD_MANAGER = 'weir';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const LABEL_ACCOUNT = 'weir.dev/account';
export const LABEL_JOB_KIND = 'weir.dev/job-kind';
export const LABEL_JOB_ID = 'weir.dev/job-id';
export const LABEL_SPEC_VERSION = 'weir.dev/spec-version';
/** The job's state generation (JobSpec.state): a new one is deployed without the old state. */
export const LABEL_STATE_GENERATION = 'weir.dev/state-generation';
export const LABEL_INSTANCE = 'weir.dev/instance';
export const managedLabels = (instance: string) => ({ [LABEL_MANAGED_BY]: 'weir', [LABEL_INSTANCE]: instance });
export const managedSelector = (instance: string) => `${LABEL_MANAGED_BY}=weir,${LABEL_INSTANCE}=${instance}`;

export const DEFAULT_QUIET_WATCH_MS = 75 * SECOND;
export const DEFAULT_WATCH_TIMEOUT_SECONDS = 60;

/** Resources of one JobManager and of one task (a one-slot TaskManager) by task size. */
export interface PodSize {
  readonly cpu: number;
  readonly memoryMi: number;
}
export const JOB_MANAGER_SIZE: PodSize = { cpu: 0.5, memoryMi: 1024 };
export const TASK_SIZES: Record<TaskSize, PodSize> = {
  S: { cpu: 0.5, memoryMi: 1024 },
  M: { cpu: 1, memoryMi: 2048 },
  L: { cpu: 2, memoryMi: 4096 },
};

export const namespaceOf = (prefix: string, accountId: string) => `${prefix}${accountId}`;

/**
 * `pipe-<uuid>` / `conn-<uuid>`: 41 characters, under the operator's 45-character limit
 * for FlinkDeployment names, and a DNS-1035 label (the operator derives Services from it).
 */
export const deploymentNameOf = (ref: Pick<JobRef, 'kind' | 'id'>) =>
  `${ref.kind === 'PIPELINE' ? 'pipe' : 'conn'}-${ref.id}`;
export const specSecretNameOf = (deploymentName: string) => `${deploymentName}-spec`;
/** The ConfigMap that keeps a stopped job's last savepoint (its FlinkDeployment is gone). */
export const stateConfigMapNameOf = (deploymentName: string) => `${deploymentName}-state`;

export const kindLabel = (kind: JobKind) => kind.toLowerCase();
export const kindFromLabel = (value: string | undefined): JobKind | undefined =>
  value === 'pipeline' ? 'PIPELINE' : value === 'connection' ? 'CONNECTION' : undefined;
