import { readFileSync } from 'node:fs';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { StreamAccess } from '../../streams/kafka-endpoint.js';
import { jobStatements } from '../../flink/job-sql.js';
import { JOB_RESTART_STRATEGY } from '../../flink/restart-strategy.js';
import type { JobSpec } from '../../jobs/job-spec.js';
import { trimSlash } from '../../platform/urls.js';
import {
  JOB_MANAGER_SIZE,
  LABEL_ACCOUNT,
  LABEL_JOB_ID,
  LABEL_JOB_KIND,
  LABEL_SPEC_VERSION,
  LABEL_STATE_GENERATION,
  TASK_SIZES,
  deploymentNameOf,
  kindLabel,
  managedLabels,
  specSecretNameOf,
  type KubernetesRuntimeOptions,
  type PodSize,
} from './kubernetes-options.js';
import { containerSecurityContext, podSecurityContext, resources } from './pod-template.js';

export const FLINK_GROUP = 'flink.apache.org';
export const FLINK_VERSION = 'v1beta1';
export const FLINK_API_VERSION = `${FLINK_GROUP}/${FLINK_VERSION}`;
export const FLINK_PLURAL = 'flinkdeployments';

/**
 * The log4j config of every Weir-started Flink JVM (flink/conf/log4j2-console.properties),
 * given to the operator as the FlinkDeployment's `logConfiguration`, which otherwise
 * replaces the image's with its own default: Weir's quiets the loggers that would print a
 * connection's password and masks `password=…` in every message. Read once.
 */
export const FLINK_LOG_CONFIG = readFileSync(new URL('../../../flink/conf/log4j2-console.properties', import.meta.url), 'utf8');

/** Where the job's runner spec (a Secret: it may hold connection passwords) is mounted. */
export const SPEC_MOUNT_DIR = '/opt/weir/spec';
const SPEC_FILE = 'spec.json';

export interface FlinkDeploymentObject extends KubernetesObject {
  spec?: Record<string, unknown>;
  status?: {
    lifecycleState?: string;
    jobManagerDeploymentStatus?: string;
    error?: string;
    observedGeneration?: number;
    /** `upgradeSavepointPath`: the savepoint of the job's last suspension or upgrade. */
    jobStatus?: { state?: string; upgradeSavepointPath?: string };
  };
}

export type JobObjectsOptions = Pick<
  KubernetesRuntimeOptions,
  'instance' | 'image' | 'flinkVersion' | 'runnerJarPath' | 'storageDir' | 'flinkConfig' | 'checkpointIntervalMs' | 'kafka' | 'serviceAccountName'
>;

export function jobLabels(spec: JobSpec, instance: string): Record<string, string> {
  return {
    ...managedLabels(instance),
    [LABEL_ACCOUNT]: spec.accountId,
    [LABEL_JOB_KIND]: kindLabel(spec.kind),
    [LABEL_JOB_ID]: spec.id,
    [LABEL_SPEC_VERSION]: String(spec.specVersion),
    [LABEL_STATE_GENERATION]: String(spec.state.generation),
  };
}

/**
 * The SQL runner's `--spec` (flink/README.md), as the job's JobManager reads it. It holds
 * the job's Kafka credentials (and connection secrets): it only ever goes into a Secret.
 */
export function runnerSpec(spec: JobSpec, options: JobObjectsOptions, checkpointDir: string, access: StreamAccess) {
  return {
    name: `weir-${kindLabel(spec.kind)}-${spec.name}`,
    // In a FlinkDeployment the runner's main() runs inside Flink's own application cluster.
    mode: 'application',
    parallelism: spec.taskCount,
    checkpointDir,
    checkpointIntervalMs: spec.checkpointIntervalMs ?? options.checkpointIntervalMs,
    statements: jobStatements(spec, {
      access,
      topicFor: (stream) => options.kafka.topicFor(spec.accountId, stream.id),
      groupId: `weir-${spec.id}`,
    }),
  };
}

export function specSecret(
  spec: JobSpec,
  namespace: string,
  options: JobObjectsOptions,
  checkpointDir: string,
  access: StreamAccess,
): KubernetesObject & { stringData: Record<string, string> } {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: specSecretNameOf(deploymentNameOf(spec)), namespace, labels: jobLabels(spec, options.instance) },
    type: 'Opaque',
    stringData: { [SPEC_FILE]: JSON.stringify(runnerSpec(spec, options, checkpointDir, access)) },
  } as KubernetesObject & { stringData: Record<string, string> };
}

function podTemplate(size: PodSize, withSpec: string | undefined, specVersion: number) {
  return {
    metadata: { annotations: { [LABEL_SPEC_VERSION]: String(specVersion) } },
    spec: {
      securityContext: podSecurityContext,
      containers: [
        {
          // The operator merges its own container settings into the one with this name.
          name: 'flink-main-container',
          resources: resources(size),
          securityContext: containerSecurityContext,
          ...(withSpec ? { volumeMounts: [{ name: 'weir-spec', mountPath: SPEC_MOUNT_DIR, readOnly: true }] } : {}),
        },
      ],
      ...(withSpec ? { volumes: [{ name: 'weir-spec', secret: { secretName: withSpec, defaultMode: 0o440 } }] } : {}),
    },
  };
}

/**
 * The job's application cluster: one FlinkDeployment running the SQL runner with the
 * job's spec. One task per one-slot TaskManager, so task count × task size is exactly
 * what the job may use. `restartNonce` follows the spec version so that a change only to
 * the spec Secret (say, a connection property) still redeploys the job. Upgrades keep the
 * job's state (`last-state`), but to a new state generation (`freshState`): that one is
 * `stateless`, and its checkpoints and savepoints go to a folder of their own. A job
 * created again after a deactivation starts from that deactivation's savepoint
 * (`restoreFrom`, the operator's `initialSavepointPath`).
 */
export function flinkDeployment(
  spec: JobSpec,
  namespace: string,
  options: JobObjectsOptions,
  { freshState = false, restoreFrom }: { readonly freshState?: boolean; readonly restoreFrom?: string | undefined } = {},
): {
  deployment: FlinkDeploymentObject;
  /** The runner spec's Secret, with the credentials this deployment of the job holds. */
  secret: (access: StreamAccess) => KubernetesObject;
} {
  const name = deploymentNameOf(spec);
  const base = `${trimSlash(options.storageDir)}/${spec.accountId}/${name}`;
  const state = `${base}/g${spec.state.generation}`;
  const taskSize = TASK_SIZES[spec.taskSize];
  const secretName = specSecretNameOf(name);
  const deployment: FlinkDeploymentObject = {
    apiVersion: FLINK_API_VERSION,
    kind: 'FlinkDeployment',
    metadata: { name, namespace, labels: jobLabels(spec, options.instance) },
    spec: {
      image: options.image,
      flinkVersion: options.flinkVersion,
      mode: 'native',
      serviceAccount: options.serviceAccountName,
      restartNonce: spec.specVersion,
      logConfiguration: { 'log4j-console.properties': FLINK_LOG_CONFIG },
      flinkConfiguration: {
        ...options.flinkConfig,
        ...JOB_RESTART_STRATEGY,
        'taskmanager.numberOfTaskSlots': '1',
        'high-availability.type': 'kubernetes',
        'high-availability.storageDir': `${base}/ha`,
        'execution.checkpointing.dir': `${state}/checkpoints`,
        'execution.checkpointing.savepoint-dir': `${state}/savepoints`,
        'execution.checkpointing.interval': `${spec.checkpointIntervalMs ?? options.checkpointIntervalMs} ms`,
        'execution.checkpointing.externalized-checkpoint-retention': 'RETAIN_ON_CANCELLATION',
      },
      jobManager: {
        replicas: 1,
        resource: { cpu: JOB_MANAGER_SIZE.cpu, memory: `${JOB_MANAGER_SIZE.memoryMi}m` },
        podTemplate: podTemplate(JOB_MANAGER_SIZE, secretName, spec.specVersion),
      },
      taskManager: {
        resource: { cpu: taskSize.cpu, memory: `${taskSize.memoryMi}m` },
        podTemplate: podTemplate(taskSize, undefined, spec.specVersion),
      },
      job: {
        jarURI: `local://${options.runnerJarPath}`,
        entryClass: 'dev.weir.runner.SqlRunner',
        args: ['--spec', `${SPEC_MOUNT_DIR}/${SPEC_FILE}`],
        parallelism: spec.taskCount,
        upgradeMode: freshState ? 'stateless' : 'last-state',
        state: 'running',
        ...(restoreFrom ? { initialSavepointPath: restoreFrom } : {}),
      },
    },
  };
  return { deployment, secret: (access) => specSecret(spec, namespace, options, `${state}/checkpoints`, access) };
}
