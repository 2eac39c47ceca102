/**
 * Weir with `WEIR_RUNTIME=kubernetes` on the single-node cluster, as the e2e files use it:
 * the node (scripts/kube-node.sh), the real Flink Kubernetes Operator, Weir's Flink image,
 * Kafka (Weir's broker) and the object store (s3proxy) on the node IP, the gateway's
 * ServiceAccount with the permissions of deploy/rbac.yaml only (startPlatformOnNode), and
 * a gateway in this process (a real HTTP port, for graphql-ws clients) over an in-memory
 * PGlite (startWeirOnNode). The benchmark bench/k8s-e2e.bench.ts starts the same;
 * gateway.test.ts runs the gateway in the cluster instead.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfig } from '../../../../src/config.js';
import { openDatabase, type DatabaseHandle } from '../../../../src/platform/database.js';
import { createLogger } from '../../../../src/platform/logger.js';
import { migrateToLatest } from '../../../../src/platform/migrator.js';
import { createRuntime, type RuntimeParts } from '../../../../src/runtime/create-runtime.js';
import { flinkDistribution } from '../../../../src/runtime/local/flink-distribution.js';
import { KafkaBroker } from '../../../../src/runtime/local/kafka-broker.js';
import type { TestApp } from '../../../helpers/app.js';
import { startKubeNode, type KubeNode } from '../../../helpers/kube-node.js';
import { startObjectStore, type ObjectStore } from '../../../helpers/object-store.js';
import { startTestServer, type TestServer } from '../../../helpers/server.js';

const DEPLOY = resolve(import.meta.dirname, '../../../../deploy');
export const PLATFORM_NAMESPACE = 'weir-system';

/** The preview cluster's Services for a gateway outside the cluster (their addresses are in the file). */
const PREVIEW_ACCESS = resolve(import.meta.dirname, '../../../../k8s/node/preview-access.yaml');
const PREVIEW_JOBMANAGER_URL = 'http://198.19.15.81:8081';
const PREVIEW_SQL_GATEWAY_URL = 'http://198.19.15.83:8083';

/**
 * What every gateway on the node stands on: the node with the operator and Weir's Flink
 * image, Kafka and the object store on the node IP, and deploy/namespace.yaml and
 * deploy/rbac.yaml applied.
 */
export interface PlatformOnNode {
  readonly node: KubeNode;
  readonly store: ObjectStore;
  readonly broker: KafkaBroker;
  /** The gateway's settings for this node (WEIR_*, no secrets, no kubeconfig). */
  readonly settings: Readonly<Record<string, string>>;
  /** The gateway's secrets: Kafka's super user. */
  readonly secrets: Readonly<Record<string, string>>;
  /** Stops the broker, the store and the node; also after a failed start. */
  close(): Promise<void>;
}

export async function startPlatformOnNode(): Promise<PlatformOnNode> {
  const logger = createLogger(process.env.WEIR_TEST_LOG_LEVEL ?? 'warn');
  const dir = await mkdtemp(join(tmpdir(), 'weir-e2e-'));
  let node: KubeNode | undefined;
  let store: ObjectStore | undefined;
  let broker: KafkaBroker | undefined;
  const close = async () => {
    await broker?.stop();
    await store?.stop();
    await node?.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    node = await startKubeNode();
    const kube = node;
    broker = new KafkaBroker({
      dataDir: join(dir, 'kafka'),
      host: kube.nodeIp,
      kafkaClasspath: async () => (await flinkDistribution({ logger })()).kafkaClasspath,
      logger,
    });
    const [image, , objectStore, kafka] = await Promise.all([
      kube.importWeirImage('flink'),
      kube.installOperator(),
      startObjectStore(kube.nodeIp),
      broker.ensureStarted(),
    ]);
    store = objectStore;
    // The gateway's ServiceAccount and roles, as a production install applies them.
    await kube.kubectl('apply', '--server-side', '-f', `${DEPLOY}/namespace.yaml`, '-f', `${DEPLOY}/rbac.yaml`);

    const apiserverPort = Number(new URL(kube.apiserverUrl).port);
    const kafkaPort = Number(kafka.bootstrapServers.split(':')[1]);
    const storePort = Number(new URL(store.endpoint).port);
    const settings = {
      WEIR_RUNTIME: 'kubernetes',
      WEIR_K8S_FLINK_IMAGE: image,
      WEIR_K8S_STORAGE_DIR: `s3://${store.bucket}`,
      WEIR_K8S_FLINK_CONFIG: JSON.stringify(store.flinkConfig),
      WEIR_K8S_KAFKA_BOOTSTRAP: kafka.bootstrapServers,
      WEIR_K8S_KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT',
      WEIR_K8S_KAFKA_SASL_MECHANISM: kafka.admin.mechanism,
      // Kafka, the object store and the apiserver (Flink's Kubernetes HA) all listen on the
      // node IP; the apiserver's service address is DNATed there.
      WEIR_K8S_EGRESS: JSON.stringify([
        { cidr: `${kube.nodeIp}/32`, ports: [kafkaPort, storePort, apiserverPort] },
        { cidr: '198.19.0.1/32', ports: [443] },
      ]),
      WEIR_CHECKPOINT_INTERVAL_MS: '2000',
    };
    const secrets = { WEIR_K8S_KAFKA_USERNAME: kafka.admin.username, WEIR_K8S_KAFKA_PASSWORD: kafka.admin.password };
    return { node, store, broker, settings, secrets, close };
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }
}

export interface WeirOnNode extends PlatformOnNode {
  readonly parts: RuntimeParts;
  readonly server: TestServer;
  /** The in-process side of the gateway (`server.testApp`). */
  readonly t: TestApp;
  /** A GraphQL operation that must succeed, as `key`'s account; resolves to its data. */
  ok(query: string, variables?: Record<string, unknown>, key?: string): Promise<Record<string, any>>;
  /** Stops the gateway, the broker, the store and the node; also after a failed start. */
  close(): Promise<void>;
}

export interface WeirOnNodeOptions {
  /** WEIR_PREVIEW_POOL_SIZE: idle preview TaskManager pods. */
  readonly previewPoolSize: number;
  /** Further WEIR_* settings. */
  readonly env?: Readonly<Record<string, string>>;
}

/** The platform, and a gateway in this process (outside the cluster) with the ServiceAccount's token. */
export async function startWeirOnNode(options: WeirOnNodeOptions): Promise<WeirOnNode> {
  const logger = createLogger(process.env.WEIR_TEST_LOG_LEVEL ?? 'warn');
  const stopLoop = new AbortController();
  const dir = await mkdtemp(join(tmpdir(), 'weir-gateway-'));
  let platform: PlatformOnNode | undefined;
  let database: DatabaseHandle | undefined;
  let parts: RuntimeParts | undefined;
  let server: TestServer | undefined;

  const close = async () => {
    stopLoop.abort();
    await server?.app.loop.done();
    await parts?.close();
    await server?.close();
    await database?.close();
    await platform?.close();
    await rm(dir, { recursive: true, force: true });
  };

  try {
    platform = await startPlatformOnNode();
    const kube = platform.node;
    await kube.kubectl('apply', '--server-side', '-f', PREVIEW_ACCESS);
    const token = (await kube.kubectl('-n', PLATFORM_NAMESPACE, 'create', 'token', 'weir-gateway', '--duration', '2h')).trim();
    const kubeconfig = join(dir, 'gateway.kubeconfig');
    await kube.writeKubeconfig(kubeconfig, token);
    const config = loadConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: process.env.WEIR_TEST_LOG_LEVEL ?? 'warn',
      ...platform.settings,
      ...platform.secrets,
      WEIR_K8S_KUBECONFIG: kubeconfig,
      WEIR_K8S_PREVIEW_JOBMANAGER_URL: PREVIEW_JOBMANAGER_URL,
      WEIR_K8S_PREVIEW_GATEWAY_URL: PREVIEW_SQL_GATEWAY_URL,
      WEIR_PREVIEW_POOL_SIZE: String(options.previewPoolSize),
      ...options.env,
    });
    database = await openDatabase({ databaseUrl: undefined, pgliteDir: 'memory://' });
    await migrateToLatest(database.db);
    parts = createRuntime(config, logger, database.db);
    server = await startTestServer({
      runtime: parts.runtime,
      storage: parts.storage,
      preview: parts.preview,
      database,
      config: { ...config, reconcileIntervalMs: 1000 },
    });
    server.app.loop.start(stopLoop.signal);
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }

  const t = server.testApp;
  return {
    ...platform,
    parts,
    server,
    t,
    async ok(query, variables = {}, key) {
      const result = await t.gql(query, variables, { key });
      if (result.errors) throw new Error(`${query.slice(0, 60)}…: ${JSON.stringify(result.errors)}`);
      return result.data!;
    },
    close,
  };
}

/** A pod as `kubectl get pods -o json` lists it: the fields the e2e files and the benchmark read. */
export interface PodJson {
  metadata: { name: string; uid: string; labels: Record<string, string>; deletionTimestamp?: string };
  spec: {
    securityContext: { runAsUser?: number; runAsNonRoot?: boolean };
    containers: { name: string; resources: { requests: Record<string, string>; limits: Record<string, string> }; securityContext?: Record<string, unknown> }[];
  };
  status: { phase: string };
}

/** The pods of `namespace` that match the label `selector`. */
export async function podsOf(node: KubeNode, namespace: string, selector: string): Promise<PodJson[]> {
  return (JSON.parse(await node.kubectl('-n', namespace, 'get', 'pods', '-l', selector, '-o', 'json')) as { items: PodJson[] }).items;
}

/** What a Flink pod's main container runs with: its requests and limits, user and privilege escalation. */
export function flinkPodShape(pod: PodJson) {
  const main = pod.spec.containers.find((c) => c.name === 'flink-main-container')!;
  return {
    requests: main.resources.requests,
    limits: main.resources.limits,
    runAsUser: pod.spec.securityContext.runAsUser,
    allowPrivilegeEscalation: main.securityContext?.allowPrivilegeEscalation,
  };
}

/** flinkPodShape of a pod of task size S (the JobManager's size too), as user 9999 with no privilege escalation. */
export const TASK_SIZE_S_POD = {
  requests: { cpu: '500m', memory: '1Gi' },
  limits: { cpu: '500m', memory: '1Gi' },
  runAsUser: 9999,
  allowPrivilegeEscalation: false,
};
