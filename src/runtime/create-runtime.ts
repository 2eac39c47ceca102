import { join } from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../platform/logger.js';
import { restrictUmask } from '../platform/private-files.js';
import { LocalPreviewCluster } from './local/preview-cluster.js';
import { LocalPreviewPool } from './local/preview-pool.js';
import type { PreviewCluster, PreviewPool } from '../preview/preview-backend.js';
import type { StreamStorage } from '../streams/stream-storage.js';
import { flinkDistribution } from './local/flink-distribution.js';
import { KafkaBroker } from './local/kafka-broker.js';
import { KafkaStreamStorage } from '../streams/kafka-stream-storage.js';
import { LocalRuntime } from './local/local-runtime.js';
import { processesOfScope, type RunningProcess } from './local/processes.js';
import { NoRuntime } from './no-runtime.js';
import { createKubernetesPreview, createKubernetesRuntime } from './kubernetes/create-kubernetes-runtime.js';
import type { Db } from '../platform/database.js';
import type { Runtime } from './runtime.js';

/** Where jobs run and where streams live, as configured. Nothing starts until first use. */
export interface RuntimeParts {
  readonly runtime: Runtime;
  /** undefined: this gateway keeps no stream data (WEIR_RUNTIME=none). */
  readonly storage: StreamStorage | undefined;
  /** The shared preview session cluster and its TaskManager pool; undefined with WEIR_RUNTIME=none. */
  readonly preview: { readonly cluster: PreviewCluster; readonly pool: PreviewPool } | undefined;
  /** Stops what the runtime started: previews, job processes, then the broker. */
  close(): Promise<void>;
  /** The live processes this gateway's runtime started or adopted (tests, benchmarks). */
  processes(): Promise<RunningProcess[]>;
}

export function createRuntime(
  config: Pick<Config, 'runtime' | 'kubernetes'> & LocalRuntimeConfig,
  logger: Logger,
  /** The database: the Kubernetes runtime reads tier limits from it. */
  db?: Db,
): RuntimeParts {
  switch (config.runtime) {
    case 'kubernetes': {
      const settings = config.kubernetes;
      if (!settings || !db) throw new Error('the kubernetes runtime needs its WEIR_K8S_* settings and the database');
      // Streams live in an external Kafka that both the gateway and the Flink pods reach.
      const storage = new KafkaStreamStorage({
        broker: {
          ensureStarted: async () => settings.kafka,
          listenerAddresses: async () => settings.kafka.bootstrapServers.split(',').map((server) => server.trim()),
        },
        logger,
      });
      const runtime = createKubernetesRuntime(settings, {
        db,
        logger,
        topicFor: (accountId, streamId) => storage.topicFor(accountId, streamId),
        ensureTopic: (topic) => storage.ensureTopic(topic),
        grantJob: (job) => storage.grantJob(job),
        revokeJob: (job) => storage.revokeJob(job),
      });
      // Flink's native resource manager starts preview TaskManagers only as idle spares
      // (slotmanager.redundant-taskmanager-num), never for a lease: with a pool of 0 no
      // preview could ever run, so previews are off and answer UNAVAILABLE at once.
      const preview =
        config.previewPoolSize > 0
          ? createKubernetesPreview(settings, { logger, poolSize: config.previewPoolSize, queueTimeoutMs: config.previewQueueTimeoutMs })
          : undefined;
      if (!preview) logger.info('previews are off: WEIR_PREVIEW_POOL_SIZE=0 with WEIR_RUNTIME=kubernetes');
      return {
        runtime,
        storage,
        preview,
        async close() {
          // The session cluster stays up (shared, kept warm); only this gateway's part stops.
          await preview?.pool.close();
          await preview?.cluster.close();
          await runtime.close();
          await storage.close();
        },
        processes: async () => [],
      };
    }
    case 'none': {
      const runtime = new NoRuntime();
      return { runtime, storage: undefined, preview: undefined, close: () => runtime.close(), processes: async () => [] };
    }
    case 'local':
      return createLocalRuntime(config, logger);
  }
}

/** The local runtime's parts, with the concrete preview cluster and pool (tests, benchmarks). */
export interface LocalRuntimeParts extends RuntimeParts {
  readonly storage: StreamStorage;
  /** The platform's Kafka broker (started by the first call that needs it). */
  readonly broker: KafkaBroker;
  readonly preview: { readonly cluster: LocalPreviewCluster; readonly pool: LocalPreviewPool };
}

/** What the local runtime is configured by (defaults: config.ts). */
export type LocalRuntimeConfig = Pick<
  Config,
  'dataDir' | 'cacheDir' | 'checkpointIntervalMs' | 'jobUnresponsiveMs' | 'savepointTimeoutMs' | 'jobStartTimeoutMs' | 'previewPoolSize' | 'previewQueueTimeoutMs'
>;

/** Flink and Kafka as processes on this machine, under `<dataDir>/local` and `<dataDir>/preview`. */
export function createLocalRuntime(config: LocalRuntimeConfig, logger: Logger): LocalRuntimeParts {
  // The JVMs this runtime spawns inherit the umask: their logs, checkpoints and Kafka
  // segments (stream data) are then owner-only too.
  restrictUmask();
  const dataDir = join(config.dataDir, 'local');
  const distribution = flinkDistribution({ cacheDir: config.cacheDir, logger });
  const broker = new KafkaBroker({
    dataDir,
    kafkaClasspath: async () => (await distribution()).kafkaClasspath,
    logger: logger.child({ component: 'kafka-broker' }),
  });
  const storage = new KafkaStreamStorage({ broker, logger });
  const runtime = new LocalRuntime({
    dataDir,
    distribution,
    storage,
    logger: logger.child({ component: 'local-runtime' }),
    checkpointIntervalMs: config.checkpointIntervalMs,
    unresponsiveLimitMs: config.jobUnresponsiveMs,
    savepointTimeoutMs: config.savepointTimeoutMs,
    startLimitMs: config.jobStartTimeoutMs,
  });
  const cluster = new LocalPreviewCluster({
    dir: join(config.dataDir, 'preview'),
    distribution,
    logger: logger.child({ component: 'preview-cluster' }),
  });
  const pool = new LocalPreviewPool({
    cluster,
    size: config.previewPoolSize,
    queueTimeoutMs: config.previewQueueTimeoutMs,
    logger: logger.child({ component: 'preview-pool' }),
  });
  return {
    runtime,
    storage,
    broker,
    preview: { cluster, pool },
    async close() {
      await pool.close();
      await cluster.close();
      await runtime.close();
      await storage.close();
      await broker.stop();
    },
    processes: () => processesOfScope(dataDir),
  };
}
