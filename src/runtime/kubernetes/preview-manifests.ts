import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { KubernetesObject } from '@kubernetes/client-node';
import { PREVIEW_CLUSTER_SETTINGS, PREVIEW_GATEWAY_SETTINGS } from '../../preview/preview-sandbox.js';
import { FLINK_API_VERSION, type FlinkDeploymentObject } from './flink-deployment.js';
import { JOB_MANAGER_SIZE, TASK_SIZES, managedLabels, type PodSize } from './kubernetes-options.js';
import { containerSecurityContext, podSecurityContext, resources } from './pod-template.js';

const MEMORY_FILE = fileURLToPath(new URL('../../../flink/memory.json', import.meta.url));

/** The JobManager REST port of a FlinkDeployment (Service `<name>-rest`, made by Flink). */
const JOB_MANAGER_REST_PORT = 8081;
/** The SQL Gateway's REST endpoint port (Flink's default). */
const SQL_GATEWAY_PORT = 8083;
/** Labels Flink's native Kubernetes resource manager puts on the pods it starts. */
export const FLINK_LABEL_APP = 'app';
export const FLINK_LABEL_COMPONENT = 'component';
const LABEL_WEIR_COMPONENT = 'weir.dev/component';
const SQL_GATEWAY_CONTAINER = 'sql-gateway';

/** What the preview session cluster's objects are made from. */
export interface PreviewManifestOptions {
  /** The platform namespace the gateway runs in, e.g. `weir-system`. */
  readonly namespace: string;
  /** Label `weir.dev/instance` (as KubernetesRuntimeOptions.instance). */
  readonly instance: string;
  /** The FlinkDeployment's name; the SQL Gateway is `<name>-sql-gateway`. */
  readonly name: string;
  /** The Flink image (deploy/flink.Dockerfile: carries the Kafka SQL connector). */
  readonly image: string;
  /**
   * Weir's SQL runner jar in that image (WEIR_K8S_RUNNER_JAR). Each preview TaskManager
   * loads it as a Java agent that pre-warms the JVM before it registers
   * (dev.weir.runner.PreviewWarmupAgent).
   */
  readonly runnerJarPath: string;
  /** FlinkDeployment `flinkVersion`, e.g. `v1_20`. */
  readonly flinkVersion: string;
  /** Idle TaskManagers kept ready (`slotmanager.redundant-taskmanager-num`). */
  readonly poolSize: number;
  /** One TaskManager (one slot, one preview). Default: task size S. */
  readonly taskManager?: PodSize | undefined;
  readonly jobManager?: PodSize | undefined;
  readonly sqlGateway?: PodSize | undefined;
  /**
   * CPU limit (cores) of the JobManager and the SQL Gateway, above their requests
   * (WEIR_K8S_PREVIEW_CPU_LIMIT). They plan and schedule every preview and are idle in
   * between, so a first row waits on how fast they run. Default: their requests.
   */
  readonly platformCpuLimit?: number | undefined;
  /** Flink options of the installation (WEIR_K8S_FLINK_CONFIG); the sandbox's own win. */
  readonly flinkConfig?: Readonly<Record<string, string>>;
  /** The ServiceAccount the JobManager runs as (it starts and deletes TaskManager pods). */
  readonly serviceAccountName: string;
  /** The ClusterRole (deploy/rbac.yaml `weir-flink`) that ServiceAccount is bound to. */
  readonly flinkClusterRole: string;
}

export interface PreviewManifests {
  readonly serviceAccount: KubernetesObject;
  readonly roleBinding: KubernetesObject;
  readonly flinkDeployment: FlinkDeploymentObject;
  readonly gatewayDeployment: KubernetesObject & { spec: Record<string, any> };
  readonly gatewayService: KubernetesObject & { spec: Record<string, any> };
}

const sqlGatewayNameOf = (clusterName: string) => `${clusterName}-sql-gateway`;

/** The JobManager's in-cluster REST address, as Flink's own `<name>-rest` Service gives it. */
export const jobManagerUrlOf = (o: Pick<PreviewManifestOptions, 'name' | 'namespace'>) =>
  `http://${o.name}-rest.${o.namespace}.svc:${JOB_MANAGER_REST_PORT}`;

/** The SQL Gateway's in-cluster URL (its Service). */
export const gatewayUrlOf = (o: Pick<PreviewManifestOptions, 'name' | 'namespace'>) =>
  `http://${sqlGatewayNameOf(o.name)}.${o.namespace}.svc:${SQL_GATEWAY_PORT}`;

const labelsOf = (instance: string, component: string): Record<string, string> => ({
  ...managedLabels(instance),
  [LABEL_WEIR_COMPONENT]: component,
});

let sqlGatewayJvm: readonly string[] | undefined;
/** The SQL Gateway's JVM flags (flink/memory.json), read once. */
function gatewayJvm(): readonly string[] {
  sqlGatewayJvm ??= (JSON.parse(readFileSync(MEMORY_FILE, 'utf8')) as { sqlGateway: { jvm: string[] } }).sqlGateway.jvm;
  return sqlGatewayJvm;
}

/** Every object of the preview session cluster, in apply order. */
export function previewManifests(o: PreviewManifestOptions): PreviewManifests {
  const { namespace, name } = o;
  const gatewayName = sqlGatewayNameOf(name);
  const tm = o.taskManager ?? TASK_SIZES.S;
  const jm = o.jobManager ?? JOB_MANAGER_SIZE;
  const gw = o.sqlGateway ?? { cpu: 0.5, memoryMi: 768 };
  const labels = labelsOf(o.instance, 'preview');

  const serviceAccount = {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: o.serviceAccountName, namespace, labels },
    automountServiceAccountToken: true,
  };
  const roleBinding = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: `${name}-flink`, namespace, labels },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: o.flinkClusterRole },
    subjects: [{ kind: 'ServiceAccount', name: o.serviceAccountName, namespace }],
  };

  const podTemplate = (size: PodSize, cpuLimit?: number) => ({
    metadata: { labels },
    spec: {
      securityContext: podSecurityContext,
      containers: [
        // The operator merges its own container settings into the one with this name.
        { name: 'flink-main-container', resources: resources(size, cpuLimit), securityContext: containerSecurityContext },
      ],
    },
  });
  // Flink itself writes the JobManager container's CPU limit: as its request times this.
  const jobManagerCpuLimitFactor = Math.max(1, (o.platformCpuLimit ?? jm.cpu) / jm.cpu);

  const flinkDeployment: FlinkDeploymentObject = {
    apiVersion: FLINK_API_VERSION,
    kind: 'FlinkDeployment',
    metadata: { name, namespace, labels },
    spec: {
      image: o.image,
      flinkVersion: o.flinkVersion,
      mode: 'native',
      serviceAccount: o.serviceAccountName,
      // Session mode: no `job`; the SQL Gateway submits previews.
      flinkConfiguration: {
        ...o.flinkConfig,
        // The sandbox (preview-sandbox.ts); idle TaskManagers Flink keeps beyond those
        // running jobs are the warm pool.
        ...PREVIEW_CLUSTER_SETTINGS,
        'slotmanager.redundant-taskmanager-num': String(o.poolSize),
        // Pre-warmed: a TaskManager loads the classes a preview needs before it registers,
        // so that an idle one in the pool is warm in more than name. And it compiles with
        // C1 only: it runs one preview of at most 2 minutes, and on its 0.5 cores C2's
        // compilations delayed a warm first row (1.7 s instead of 2.4 s without them).
        'env.java.opts.taskmanager': [o.flinkConfig?.['env.java.opts.taskmanager'], `-javaagent:${o.runnerJarPath}`, '-XX:TieredStopAtLevel=1']
          .filter(Boolean)
          .join(' '),
        'kubernetes.jobmanager.cpu.limit-factor': String(jobManagerCpuLimitFactor),
        'rest.port': String(JOB_MANAGER_REST_PORT),
        'rest.bind-address': '0.0.0.0',
        // No checkpoint directory: checkpointing stays off (preview-sandbox.ts), and the
        // operator asks for none in session mode. With one, every preview task opened the
        // S3 filesystem as it deployed: 1.7 s of a warm first row at 0.5 CPU.
      },
      jobManager: {
        replicas: 1,
        resource: { cpu: jm.cpu, memory: `${jm.memoryMi}m` },
        podTemplate: podTemplate(jm, o.platformCpuLimit),
      },
      taskManager: {
        resource: { cpu: tm.cpu, memory: `${tm.memoryMi}m` },
        podTemplate: podTemplate(tm),
      },
    },
  };

  const gatewayLabels = labelsOf(o.instance, 'preview-sql-gateway');
  const selector = { [FLINK_LABEL_APP]: gatewayName, [FLINK_LABEL_COMPONENT]: 'sql-gateway' };
  const gatewayConfig: Record<string, string> = {
    ...PREVIEW_GATEWAY_SETTINGS,
    // Previews go to the session cluster's JobManager through its REST Service.
    'rest.address': `${name}-rest.${namespace}.svc`,
    'rest.port': String(JOB_MANAGER_REST_PORT),
    'sql-gateway.endpoint.rest.address': '0.0.0.0',
    'sql-gateway.endpoint.rest.bind-address': '0.0.0.0',
    'sql-gateway.endpoint.rest.port': String(SQL_GATEWAY_PORT),
  };
  const gatewayDeployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: gatewayName, namespace, labels: gatewayLabels },
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
              env: [{ name: 'FLINK_ENV_JAVA_OPTS', value: gatewayJvm().join(' ') }],
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
              resources: resources(gw, o.platformCpuLimit),
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
    metadata: { name: gatewayName, namespace, labels: gatewayLabels },
    spec: {
      type: 'ClusterIP',
      selector,
      ports: [{ name: 'rest', port: SQL_GATEWAY_PORT, targetPort: 'rest', protocol: 'TCP' }],
    },
  };
  return { serviceAccount, roleBinding, flinkDeployment, gatewayDeployment, gatewayService };
}
