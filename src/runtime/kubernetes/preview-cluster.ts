import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubernetesObjectApi, PatchStrategy, setHeaderOptions, type KubeConfig, type KubernetesObject, type V1Pod } from '@kubernetes/client-node';
import { FLINK_API_VERSION, type FlinkDeploymentObject } from './flink-deployment.js';
import { isNotFound } from './kube-errors.js';
import { FIELD_MANAGER, JOB_MANAGER_SIZE, TASK_SIZES, managedLabels, type PodSize } from './kubernetes-options.js';

const MEMORY_FILE = fileURLToPath(new URL('../../../flink/memory.json', import.meta.url));

/** The official Flink image's `flink` user. */
const FLINK_UID = 9999;
/** The JobManager REST port of a FlinkDeployment (Service `<name>-rest`, made by Flink). */
export const JOB_MANAGER_REST_PORT = 8081;
/** The SQL Gateway's REST endpoint port (Flink's default). */
export const SQL_GATEWAY_PORT = 8083;
/** Labels Flink's native Kubernetes resource manager puts on the pods it starts. */
export const FLINK_LABEL_APP = 'app';
export const FLINK_LABEL_COMPONENT = 'component';
export const LABEL_WEIR_COMPONENT = 'weir.dev/component';
const SQL_GATEWAY_CONTAINER = 'sql-gateway';

export interface KubernetesPreviewClusterOptions {
  readonly kubeConfig: KubeConfig;
  /** The platform namespace the gateway runs in, e.g. `weir-system`. */
  readonly namespace: string;
  /** Label `weir.dev/instance` (as KubernetesRuntimeOptions.instance). */
  readonly instance: string;
  /** The FlinkDeployment's name; the SQL Gateway is `<name>-sql-gateway`. Default `weir-preview`. */
  readonly name?: string;
  /** The Flink image (deploy/flink.Dockerfile: carries the Kafka SQL connector). */
  readonly image: string;
  /** FlinkDeployment `flinkVersion`, e.g. `v1_20`. */
  readonly flinkVersion: string;
  /** Idle TaskManagers kept ready (`slotmanager.redundant-taskmanager-num`). */
  readonly poolSize: number;
  /** One TaskManager (one slot, one preview). Default: task size S. */
  readonly taskManager?: PodSize;
  readonly jobManager?: PodSize;
  readonly sqlGateway?: PodSize;
  /** Base URI for the cluster's savepoint/checkpoint dirs, e.g. `s3://weir-flink`. */
  readonly storageDir: string;
  /** The ServiceAccount the JobManager runs as (it starts and deletes TaskManager pods). */
  readonly serviceAccountName: string;
  /** The ClusterRole (deploy/rbac.yaml `weir-flink`) that ServiceAccount is bound to. */
  readonly flinkClusterRole: string;
  readonly fieldManager?: string;
}

/**
 * On a TaskManager pod leased to a preview: when (ISO 8601). It outlives the gateway and
 * the JobManager's memory of the job (about an hour), so a restarted gateway retires the
 * pod even when nothing else says that it ran a preview.
 */
export const LEASED_ANNOTATION = 'weir.dev/preview-leased-at';

/** `retireTaskManager` or `markLeased` was given a pod that is not one of this cluster's TaskManagers. */
export class NotAPreviewTaskManagerError extends Error {
  override readonly name = 'NotAPreviewTaskManagerError';
}

const quantity = (size: PodSize) => ({ cpu: `${Math.round(size.cpu * 1000)}m`, memory: `${size.memoryMi}Mi` });
const resources = (size: PodSize) => ({ requests: quantity(size), limits: quantity(size) });

const podSecurityContext = {
  runAsNonRoot: true,
  runAsUser: FLINK_UID,
  runAsGroup: FLINK_UID,
  fsGroup: FLINK_UID,
  seccompProfile: { type: 'RuntimeDefault' },
};
const containerSecurityContext = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } };

const trimSlash = (uri: string) => uri.replace(/\/+$/, '');

/**
 * The session cluster previews run on, in the platform namespace: a session-mode
 * FlinkDeployment (no `job`) whose TaskManagers have one slot each, with
 * `slotmanager.redundant-taskmanager-num` idle TaskManagers kept warm by Flink's native
 * resource manager; and a SQL Gateway (Deployment + Service) that submits previews to
 * its JobManager. A TaskManager runs one preview and is then deleted
 * (`retireTaskManager`); Flink starts a fresh one to keep the pool full.
 *
 * Everything is written by server-side apply, so `ensure()` is idempotent and may run at
 * every gateway start.
 */
export class KubernetesPreviewCluster {
  readonly name: string;
  readonly namespace: string;
  private readonly objects: KubernetesObjectApi;
  private readonly core: CoreV1Api;
  private readonly fieldManager: string;
  private readonly gatewayJvm: readonly string[];

  constructor(private readonly options: KubernetesPreviewClusterOptions) {
    this.name = options.name ?? 'weir-preview';
    this.namespace = options.namespace;
    this.fieldManager = options.fieldManager ?? FIELD_MANAGER;
    this.objects = KubernetesObjectApi.makeApiClient(options.kubeConfig);
    this.core = options.kubeConfig.makeApiClient(CoreV1Api);
    const memory = JSON.parse(readFileSync(MEMORY_FILE, 'utf8')) as { sqlGateway: { jvm: string[] } };
    this.gatewayJvm = memory.sqlGateway.jvm;
    if (!Number.isInteger(options.poolSize) || options.poolSize < 0) {
      throw new Error(`preview pool size must be a non-negative integer, not ${options.poolSize}`);
    }
  }

  get gatewayName(): string {
    return `${this.name}-sql-gateway`;
  }

  /** The JobManager's REST address, as Flink's own `<name>-rest` Service gives it. */
  jobManagerUrl(): string {
    return `http://${this.name}-rest.${this.namespace}.svc:${JOB_MANAGER_REST_PORT}`;
  }

  /** The SQL Gateway's in-cluster URL (its Service). */
  gatewayUrl(): string {
    return `http://${this.gatewayName}.${this.namespace}.svc:${SQL_GATEWAY_PORT}`;
  }

  private labels(component: string): Record<string, string> {
    return { ...managedLabels(this.options.instance), [LABEL_WEIR_COMPONENT]: component };
  }

  /** Every object, in apply order. */
  manifests(): {
    serviceAccount: KubernetesObject;
    roleBinding: KubernetesObject;
    flinkDeployment: FlinkDeploymentObject;
    gatewayDeployment: KubernetesObject & { spec: Record<string, any> };
    gatewayService: KubernetesObject & { spec: Record<string, any> };
  } {
    const { namespace } = this;
    const o = this.options;
    const tm = o.taskManager ?? TASK_SIZES.S;
    const jm = o.jobManager ?? JOB_MANAGER_SIZE;
    const gw = o.sqlGateway ?? { cpu: 0.5, memoryMi: 768 };
    const labels = this.labels('preview');
    const base = `${trimSlash(o.storageDir)}/_preview/${this.name}`;

    const serviceAccount = {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: o.serviceAccountName, namespace, labels },
      automountServiceAccountToken: true,
    };
    const roleBinding = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: `${this.name}-flink`, namespace, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: o.flinkClusterRole },
      subjects: [{ kind: 'ServiceAccount', name: o.serviceAccountName, namespace }],
    };

    const podTemplate = (size: PodSize) => ({
      metadata: { labels },
      spec: {
        securityContext: podSecurityContext,
        containers: [
          // The operator merges its own container settings into the one with this name.
          { name: 'flink-main-container', resources: resources(size), securityContext: containerSecurityContext },
        ],
      },
    });

    const flinkDeployment: FlinkDeploymentObject = {
      apiVersion: FLINK_API_VERSION,
      kind: 'FlinkDeployment',
      metadata: { name: this.name, namespace, labels },
      spec: {
        image: o.image,
        flinkVersion: o.flinkVersion,
        mode: 'native',
        serviceAccount: o.serviceAccountName,
        // Session mode: no `job`; the SQL Gateway submits previews.
        flinkConfiguration: {
          // One slot per TaskManager: a TaskManager runs one preview, then it is retired.
          'taskmanager.numberOfTaskSlots': '1',
          // The warm pool: idle TaskManagers Flink keeps beyond those running jobs.
          'slotmanager.redundant-taskmanager-num': String(o.poolSize),
          // No OPTIONS hints: a preview cannot point a table at another account's topic.
          'table.dynamic-table-options.enabled': 'false',
          // A preview that fails (or whose TaskManager is retired) ends; it is not restarted.
          'restart-strategy.type': 'none',
          'parallelism.default': '1',
          'rest.port': String(JOB_MANAGER_REST_PORT),
          'rest.bind-address': '0.0.0.0',
          'web.submit.enable': 'false',
          'web.cancel.enable': 'false',
          // The REST API caches a job's details this long (default 3 s): a preview waits
          // to see its job running, and the pool reads where jobs ran, through that cache.
          'web.refresh-interval': '100 ms',
          // Checkpointing stays off (collected rows would only show after each checkpoint);
          // the dirs only give a savepoint the operator may take on upgrade a place to go.
          'execution.checkpointing.dir': `${base}/checkpoints`,
          'execution.checkpointing.savepoint-dir': `${base}/savepoints`,
        },
        jobManager: {
          replicas: 1,
          resource: { cpu: jm.cpu, memory: `${jm.memoryMi}m` },
          podTemplate: podTemplate(jm),
        },
        taskManager: {
          resource: { cpu: tm.cpu, memory: `${tm.memoryMi}m` },
          podTemplate: podTemplate(tm),
        },
      },
    };

    const gatewayLabels = this.labels('preview-sql-gateway');
    const selector = { [FLINK_LABEL_APP]: this.gatewayName, [FLINK_LABEL_COMPONENT]: 'sql-gateway' };
    const gatewayConfig: Record<string, string> = {
      // Previews go to the session cluster's JobManager through its REST Service.
      'execution.target': 'remote',
      'rest.address': `${this.name}-rest.${namespace}.svc`,
      'rest.port': String(JOB_MANAGER_REST_PORT),
      'execution.runtime-mode': 'streaming',
      'parallelism.default': '1',
      'restart-strategy.type': 'none',
      'table.dynamic-table-options.enabled': 'false',
      'sql-gateway.endpoint.rest.address': '0.0.0.0',
      'sql-gateway.endpoint.rest.bind-address': '0.0.0.0',
      'sql-gateway.endpoint.rest.port': String(SQL_GATEWAY_PORT),
      // A session whose preview was abandoned (Weir's gateway killed) goes away on its own.
      'sql-gateway.session.idle-timeout': '3 min',
      'sql-gateway.session.check-interval': '30 s',
    };
    const gatewayDeployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: this.gatewayName, namespace, labels: gatewayLabels },
      spec: {
        replicas: 1,
        selector: { matchLabels: selector },
        template: {
          metadata: { labels: { ...gatewayLabels, ...selector } },
          spec: {
            // The SQL Gateway talks to Flink's REST API only, never to Kubernetes.
            automountServiceAccountToken: false,
            securityContext: podSecurityContext,
            containers: [
              {
                name: SQL_GATEWAY_CONTAINER,
                image: o.image,
                // Runs org.apache.flink.table.gateway.SqlGateway in the foreground (the
                // image's script builds its classpath from lib/ and opt/).
                command: [
                  '/opt/flink/bin/sql-gateway.sh',
                  'start-foreground',
                  ...Object.entries(gatewayConfig).map(([key, value]) => `-D${key}=${value}`),
                ],
                env: [{ name: 'FLINK_ENV_JAVA_OPTS', value: this.gatewayJvm.join(' ') }],
                ports: [{ name: 'rest', containerPort: SQL_GATEWAY_PORT, protocol: 'TCP' }],
                readinessProbe: {
                  httpGet: { path: '/v1/info', port: 'rest' },
                  initialDelaySeconds: 3,
                  periodSeconds: 5,
                  failureThreshold: 3,
                },
                livenessProbe: {
                  tcpSocket: { port: 'rest' },
                  initialDelaySeconds: 30,
                  periodSeconds: 10,
                  failureThreshold: 6,
                },
                resources: resources(gw),
                securityContext: containerSecurityContext,
              },
            ],
          },
        },
      },
    };
    const gatewayService = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: this.gatewayName, namespace, labels: gatewayLabels },
      spec: {
        type: 'ClusterIP',
        selector,
        ports: [{ name: 'rest', port: SQL_GATEWAY_PORT, targetPort: 'rest', protocol: 'TCP' }],
      },
    };
    return { serviceAccount, roleBinding, flinkDeployment, gatewayDeployment, gatewayService };
  }

  /** Applies every object (server-side apply: a second call changes nothing). */
  async ensure(): Promise<void> {
    const m = this.manifests();
    for (const object of [m.serviceAccount, m.roleBinding, m.flinkDeployment, m.gatewayDeployment, m.gatewayService]) {
      await this.objects.patch(object, undefined, undefined, this.fieldManager, true, PatchStrategy.ServerSideApply);
    }
  }

  /**
   * Deletes the TaskManager pod that ran a preview, at once (grace period 0): it never runs
   * another job. `podName` is Flink's TaskManager id (on native Kubernetes, the pod name).
   * Refuses any pod that is not one of this cluster's TaskManagers. Returns false if the
   * pod is already gone.
   */
  async retireTaskManager(podName: string): Promise<boolean> {
    const pod = await this.taskManagerPod(podName);
    if (!pod) return false;
    try {
      await this.core.deleteNamespacedPod({
        name: podName,
        namespace: this.namespace,
        gracePeriodSeconds: 0,
        // Exactly the pod checked above, not another one given the same name since.
        body: { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata!.uid! } },
      });
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  /**
   * Annotates a TaskManager pod as leased (LEASED_ANNOTATION). Refuses any pod that is not
   * one of this cluster's TaskManagers; returns false if the pod is already gone.
   */
  async markLeased(podName: string, at = new Date()): Promise<boolean> {
    if (!(await this.taskManagerPod(podName))) return false;
    try {
      await this.core.patchNamespacedPod(
        { name: podName, namespace: this.namespace, body: { metadata: { annotations: { [LEASED_ANNOTATION]: at.toISOString() } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  /** Those of the named pods that are this cluster's TaskManagers and were leased (LEASED_ANNOTATION). */
  async leasedTaskManagers(podNames: readonly string[]): Promise<Set<string>> {
    const pods = await Promise.all(
      podNames.map((name) =>
        this.taskManagerPod(name).catch((error: unknown) => {
          if (error instanceof NotAPreviewTaskManagerError) return undefined;
          throw error;
        }),
      ),
    );
    return new Set(pods.filter((pod) => pod?.metadata?.annotations?.[LEASED_ANNOTATION]).map((pod) => pod!.metadata!.name!));
  }

  /** The pod if it is one of this cluster's TaskManagers; undefined if gone; throws for any other pod. */
  private async taskManagerPod(podName: string): Promise<V1Pod | undefined> {
    let pod: V1Pod;
    try {
      pod = await this.core.readNamespacedPod({ name: podName, namespace: this.namespace });
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    const labels = pod.metadata?.labels ?? {};
    if (labels[FLINK_LABEL_APP] !== this.name || labels[FLINK_LABEL_COMPONENT] !== 'taskmanager') {
      throw new NotAPreviewTaskManagerError(`pod ${this.namespace}/${podName} is not a TaskManager of the preview cluster ${this.name}`);
    }
    return pod;
  }

  /**
   * Deletes the session cluster (the operator then removes its JobManager and TaskManagers)
   * and the SQL Gateway. The ServiceAccount and its RoleBinding stay: harmless without the
   * cluster, and deleting them would need more rights than the gateway holds.
   */
  async remove(): Promise<void> {
    const m = this.manifests();
    for (const object of [m.gatewayService, m.gatewayDeployment, m.flinkDeployment]) {
      try {
        await this.objects.delete(header(object), undefined, undefined, undefined, undefined, 'Background');
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
    }
  }
}

const header = (o: KubernetesObject): KubernetesObject => ({
  apiVersion: o.apiVersion!,
  kind: o.kind!,
  metadata: { name: o.metadata!.name!, namespace: o.metadata!.namespace! },
});
