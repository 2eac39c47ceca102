import { availableParallelism } from 'node:os';
import { z } from 'zod';
import type { KubernetesSettings } from './runtime/kubernetes/create-kubernetes-runtime.js';
import { isWeirFlinkOption } from './runtime/kubernetes/flink-options.js';

const boolish = z
  .enum(['true', 'false', '1', '0'])
  .transform((value) => value === 'true' || value === '1');

const ConfigSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  DATABASE_URL: z.string().url().optional(),
  WEIR_DATA_DIR: z.string().min(1).default('./.weir'),
  WEIR_SECRET: z.string().min(32, 'WEIR_SECRET must be at least 32 characters').optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  WEIR_RUNTIME: z.enum(['local', 'kubernetes', 'none']).default('local'),
  WEIR_K8S_KUBECONFIG: z.string().min(1).optional(),
  WEIR_K8S_INSTANCE: z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/).default('weir'),
  WEIR_K8S_NAMESPACE_PREFIX: z.string().regex(/^[a-z0-9][-a-z0-9]{0,20}$/).default('weir-acct-'),
  WEIR_K8S_FLINK_IMAGE: z.string().min(1).default('weir/flink:1.20.3-java17'),
  WEIR_K8S_FLINK_VERSION: z.string().min(1).default('v1_20'),
  WEIR_K8S_RUNNER_JAR: z.string().min(1).default('/opt/weir/sql-runner.jar'),
  WEIR_K8S_STORAGE_DIR: z.string().min(1).optional(),
  WEIR_K8S_KAFKA_BOOTSTRAP: z.string().min(1).optional(),
  WEIR_K8S_KAFKA_SECURITY_PROTOCOL: z.enum(['SASL_PLAINTEXT', 'SASL_SSL']).default('SASL_SSL'),
  WEIR_K8S_KAFKA_SASL_MECHANISM: z.enum(['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']).default('SCRAM-SHA-512'),
  WEIR_K8S_KAFKA_USERNAME: z.string().min(1).optional(),
  WEIR_K8S_KAFKA_PASSWORD: z.string().min(1).optional(),
  WEIR_K8S_EGRESS: z.string().default('[]'),
  WEIR_K8S_FLINK_CONFIG: z.string().default('{}'),
  WEIR_K8S_OPERATOR_NAMESPACE: z.string().min(1).default('flink-operator'),
  WEIR_K8S_SERVICE_ACCOUNT: z.string().min(1).default('flink'),
  WEIR_K8S_FLINK_CLUSTER_ROLE: z.string().min(1).default('weir-flink'),
  WEIR_K8S_PLATFORM_NAMESPACE: z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/).default('weir-system'),
  WEIR_K8S_PREVIEW_NAME: z.string().regex(/^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$/).default('weir-preview'),
  WEIR_K8S_PREVIEW_JOBMANAGER_URL: z.string().url().optional(),
  WEIR_K8S_PREVIEW_GATEWAY_URL: z.string().url().optional(),
  WEIR_K8S_PREVIEW_CPU_LIMIT: z.coerce.number().min(0.5).max(64).optional(),
  WEIR_CACHE_DIR: z.string().min(1).optional(),
  WEIR_CHECKPOINT_INTERVAL_MS: z.coerce.number().int().min(100).default(5000),
  WEIR_JOB_UNRESPONSIVE_MS: z.coerce.number().int().min(1000).default(60_000),
  WEIR_SAVEPOINT_TIMEOUT_MS: z.coerce.number().int().min(1000).default(60_000),
  WEIR_JOB_START_TIMEOUT_MS: z.coerce.number().int().min(10_000).default(300_000),
  WEIR_JOB_MAX_RESTARTS: z.coerce.number().int().min(0).max(1000).default(5),
  WEIR_JOB_RESTART_WINDOW_MS: z.coerce.number().int().min(1000).default(30 * 60_000),
  WEIR_MAX_BODY_BYTES: z.coerce.number().int().positive().default(256 * 1024),
  WEIR_SIGNUP_RATE_PER_MINUTE: z.coerce.number().int().positive().default(20),
  WEIR_RECONCILE_INTERVAL_MS: z.coerce.number().int().positive().default(5000),
  WEIR_SHUTDOWN_GRACE_MS: z.coerce.number().int().positive().default(10_000),
  WEIR_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(30_000),
  WEIR_GRAPHIQL: boolish.optional(),
  WEIR_TRUST_PROXY: boolish.default(false),
  WEIR_PREVIEW_POOL_SIZE: z.coerce.number().int().min(0).max(64).default(2),
  WEIR_PREVIEW_QUEUE_TIMEOUT_MS: z.coerce.number().int().positive().default(30_000),
  WEIR_PREVIEW_WARM_AT_START: boolish.default(false),
  WEIR_WS_IDLE_TIMEOUT_MS: z.coerce.number().int().min(1000).default(60_000),
  WEIR_WS_MAX_SOCKETS_PER_KEY: z.coerce.number().int().positive().default(10),
  WEIR_SQL_WORKERS: z.coerce.number().int().min(1).max(64).optional(),
  WEIR_SQL_CHECK_TIMEOUT_MS: z.coerce.number().int().min(10).default(2000),
});

export interface Config {
  readonly env: 'development' | 'production' | 'test';
  readonly host: string;
  readonly port: number;
  /** Unset: the embedded PGlite database under `dataDir`. */
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  /** Server secret for API-key HMACs. Unset: generated once and kept in `dataDir`. */
  readonly secret: string | undefined;
  readonly logLevel: string;
  /** `local`: Flink and Kafka as processes on this machine. `none`: run nothing. */
  readonly runtime: 'local' | 'kubernetes' | 'none';
  /** The `WEIR_K8S_*` settings; defined when `runtime` is `kubernetes`. */
  readonly kubernetes: KubernetesSettings | undefined;
  /** Where the Flink/Kafka jars are assembled (default `<repo>/.cache`). */
  readonly cacheDir: string | undefined;
  readonly checkpointIntervalMs: number;
  /** Local runtime: how long a job process may leave its REST API unanswered before it is killed and restarted. */
  readonly jobUnresponsiveMs: number;
  /** Local runtime: how long a deactivated job may take to stop with a savepoint before it is stopped without one. */
  readonly savepointTimeoutMs: number;
  /** Local runtime: how long a job process may take to submit its job before it is killed and started again. */
  readonly jobStartTimeoutMs: number;
  /** Restarts of one job allowed within `jobRestartWindowMs`; one more ends it FAILED. */
  readonly jobMaxRestarts: number;
  readonly jobRestartWindowMs: number;
  readonly maxBodyBytes: number;
  readonly signupRatePerMinute: number;
  readonly reconcileIntervalMs: number;
  readonly shutdownGraceMs: number;
  /** How long one query or mutation may run before it is cut with REQUEST_TIMEOUT (subscriptions excluded). */
  readonly requestTimeoutMs: number;
  readonly graphiql: boolean;
  /** Take the client address for rate limits from X-Forwarded-For. */
  readonly trustProxy: boolean;
  /** Idle preview TaskManagers kept registered (0: each preview starts one, cold); on Kubernetes `slotmanager.redundant-taskmanager-num`. */
  readonly previewPoolSize: number;
  /** How long a preview waits for a TaskManager before it fails. */
  readonly previewQueueTimeoutMs: number;
  /** Start the preview cluster and pool at start-up instead of on the first preview. */
  readonly previewWarmAtStart: boolean;
  /** A WebSocket with no operation in progress for this long is closed by the server. */
  readonly wsIdleTimeoutMs: number;
  /** Open WebSockets of one API key in this gateway; one more is refused at connection_init. */
  readonly wsMaxSocketsPerKey: number;
  /** Worker threads that parse and check SQL, off the event loop. */
  readonly sqlWorkers: number;
  /** How long one SQL check may run on its worker before the worker is terminated. */
  readonly sqlCheckTimeoutMs: number;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Parses the environment once. Nothing else in Weir reads `process.env`. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
  const parsed = ConfigSchema.safeParse(cleaned);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  const c = parsed.data;
  const kubernetes = c.WEIR_RUNTIME === 'kubernetes' ? kubernetesSettings(c) : undefined;
  return Object.freeze({
    env: c.NODE_ENV,
    host: c.HOST,
    port: c.PORT,
    databaseUrl: c.DATABASE_URL,
    dataDir: c.WEIR_DATA_DIR,
    secret: c.WEIR_SECRET,
    logLevel: c.LOG_LEVEL,
    runtime: c.WEIR_RUNTIME,
    kubernetes,
    cacheDir: c.WEIR_CACHE_DIR,
    checkpointIntervalMs: c.WEIR_CHECKPOINT_INTERVAL_MS,
    jobUnresponsiveMs: c.WEIR_JOB_UNRESPONSIVE_MS,
    savepointTimeoutMs: c.WEIR_SAVEPOINT_TIMEOUT_MS,
    jobStartTimeoutMs: c.WEIR_JOB_START_TIMEOUT_MS,
    jobMaxRestarts: c.WEIR_JOB_MAX_RESTARTS,
    jobRestartWindowMs: c.WEIR_JOB_RESTART_WINDOW_MS,
    maxBodyBytes: c.WEIR_MAX_BODY_BYTES,
    signupRatePerMinute: c.WEIR_SIGNUP_RATE_PER_MINUTE,
    reconcileIntervalMs: c.WEIR_RECONCILE_INTERVAL_MS,
    shutdownGraceMs: c.WEIR_SHUTDOWN_GRACE_MS,
    requestTimeoutMs: c.WEIR_REQUEST_TIMEOUT_MS,
    graphiql: c.WEIR_GRAPHIQL ?? c.NODE_ENV === 'development',
    trustProxy: c.WEIR_TRUST_PROXY,
    previewPoolSize: c.WEIR_PREVIEW_POOL_SIZE,
    previewQueueTimeoutMs: c.WEIR_PREVIEW_QUEUE_TIMEOUT_MS,
    previewWarmAtStart: c.WEIR_PREVIEW_WARM_AT_START,
    wsIdleTimeoutMs: c.WEIR_WS_IDLE_TIMEOUT_MS,
    wsMaxSocketsPerKey: c.WEIR_WS_MAX_SOCKETS_PER_KEY,
    sqlWorkers: c.WEIR_SQL_WORKERS ?? Math.min(2, availableParallelism()),
    sqlCheckTimeoutMs: c.WEIR_SQL_CHECK_TIMEOUT_MS,
  });
}

const EgressSchema = z.array(
  z.object({
    cidr: z.string().optional(),
    namespace: z.string().optional(),
    ports: z.array(z.number().int().min(1).max(65535)),
  }),
);

/** A setting whose value is JSON of a given shape; a ConfigError names it when it is not. */
function jsonSetting<T>(name: string, raw: string, schema: z.ZodType<T>, help: { example: string; shape: string }): T {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new ConfigError(`Invalid configuration:\n  ${name}: must be JSON, e.g. ${help.example}`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ConfigError(`Invalid configuration:\n  ${name}: ${help.shape}`);
  return parsed.data;
}

const FlinkConfigSchema = z.record(z.string().regex(/^[A-Za-z0-9._-]+$/), z.string());

function kubernetesSettings(c: z.infer<typeof ConfigSchema>): KubernetesSettings {
  const required = ['WEIR_K8S_STORAGE_DIR', 'WEIR_K8S_KAFKA_BOOTSTRAP', 'WEIR_K8S_KAFKA_USERNAME', 'WEIR_K8S_KAFKA_PASSWORD'] as const;
  const missing = required.filter((key) => !c[key]);
  if (missing.length) {
    const list = missing.length === 1 ? missing[0] : `${missing.slice(0, -1).join(', ')} and ${missing.at(-1)}`;
    throw new ConfigError(`Invalid configuration:\n  WEIR_RUNTIME=kubernetes needs ${list}`);
  }
  const egress = jsonSetting('WEIR_K8S_EGRESS', c.WEIR_K8S_EGRESS, EgressSchema, {
    example: '[{"cidr":"10.0.0.0/8","ports":[9092]}]',
    shape: 'a list of { cidr?, namespace?, ports: [port] }',
  });
  const flinkConfig = jsonSetting('WEIR_K8S_FLINK_CONFIG', c.WEIR_K8S_FLINK_CONFIG, FlinkConfigSchema, {
    example: '{"s3.endpoint":"https://s3.example:9000"}',
    shape: 'an object of Flink option names to string values',
  });
  const reserved = Object.keys(flinkConfig).filter(isWeirFlinkOption);
  if (reserved.length) {
    throw new ConfigError(`Invalid configuration:\n  WEIR_K8S_FLINK_CONFIG: Weir sets ${reserved.join(', ')} itself`);
  }
  return {
    kubeconfig: c.WEIR_K8S_KUBECONFIG,
    instance: c.WEIR_K8S_INSTANCE,
    namespacePrefix: c.WEIR_K8S_NAMESPACE_PREFIX,
    flinkImage: c.WEIR_K8S_FLINK_IMAGE,
    flinkVersion: c.WEIR_K8S_FLINK_VERSION,
    runnerJar: c.WEIR_K8S_RUNNER_JAR,
    storageDir: c.WEIR_K8S_STORAGE_DIR!,
    checkpointIntervalMs: c.WEIR_CHECKPOINT_INTERVAL_MS,
    savepointTimeoutMs: c.WEIR_SAVEPOINT_TIMEOUT_MS,
    kafka: {
      bootstrapServers: c.WEIR_K8S_KAFKA_BOOTSTRAP!,
      securityProtocol: c.WEIR_K8S_KAFKA_SECURITY_PROTOCOL,
      admin: { mechanism: c.WEIR_K8S_KAFKA_SASL_MECHANISM, username: c.WEIR_K8S_KAFKA_USERNAME!, password: c.WEIR_K8S_KAFKA_PASSWORD! },
    },
    egress: egress as KubernetesSettings['egress'],
    flinkConfig,
    operatorNamespace: c.WEIR_K8S_OPERATOR_NAMESPACE,
    serviceAccount: c.WEIR_K8S_SERVICE_ACCOUNT,
    flinkClusterRole: c.WEIR_K8S_FLINK_CLUSTER_ROLE,
    platformNamespace: c.WEIR_K8S_PLATFORM_NAMESPACE,
    previewName: c.WEIR_K8S_PREVIEW_NAME,
    previewJobManagerUrl: c.WEIR_K8S_PREVIEW_JOBMANAGER_URL,
    previewGatewayUrl: c.WEIR_K8S_PREVIEW_GATEWAY_URL,
    previewCpuLimit: c.WEIR_K8S_PREVIEW_CPU_LIMIT,
  };
}

/** A config for tests and benchmarks: embedded defaults with overrides. */
export function testConfig(overrides: Partial<Config> = {}): Config {
  return Object.freeze({ ...loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', WEIR_RUNTIME: 'none' }), ...overrides });
}
