import { join } from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../platform/logger.js';
import type { StreamStorage } from '../streams/stream-storage.js';
import { flinkDistribution } from './local/flink-distribution.js';
import { KafkaBroker } from './local/kafka-broker.js';
import { KafkaStreamStorage } from './local/kafka-stream-storage.js';
import { LocalRuntime } from './local/local-runtime.js';
import { NoRuntime } from './no-runtime.js';
import type { Runtime } from './runtime.js';

/** Where jobs run and where streams live, as configured. Nothing starts until first use. */
export interface RuntimeParts {
  readonly runtime: Runtime;
  /** undefined: this gateway keeps no stream data (WEIR_RUNTIME=none). */
  readonly storage: StreamStorage | undefined;
  /** Stops what the runtime started: job processes, then the broker. */
  close(): Promise<void>;
}

export function createRuntime(
  config: Pick<Config, 'runtime' | 'dataDir' | 'cacheDir' | 'checkpointIntervalMs'>,
  logger: Logger,
): RuntimeParts {
  switch (config.runtime) {
    case 'none': {
      const runtime = new NoRuntime();
      return { runtime, storage: undefined, close: () => runtime.close() };
    }
    case 'local': {
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
      });
      return {
        runtime,
        storage,
        async close() {
          await runtime.close();
          await storage.close();
          await broker.stop();
        },
      };
    }
  }
}
