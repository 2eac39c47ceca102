import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../src/platform/logger.js';
import { flinkDistribution } from '../../src/runtime/local/flink-distribution.js';
import { KafkaBroker } from '../../src/runtime/local/kafka-broker.js';
import { KafkaStreamStorage } from '../../src/streams/kafka-stream-storage.js';
import type { KafkaEndpoint } from '../../src/streams/kafka-endpoint.js';

/**
 * A Kafka broker of its own, standing for a user's Kafka outside the platform (what
 * `kafka` connections are for): the same authenticated KRaft broker as the platform's,
 * in a temp folder, reached as its admin.
 */
export interface ExternalKafka {
  readonly endpoint: KafkaEndpoint;
  /** Topics and records on it, as its admin. */
  readonly storage: KafkaStreamStorage;
  /** The connection properties that reach it as its admin (PLAIN over SASL_PLAINTEXT). */
  readonly connectionProperties: Record<string, string>;
  close(): Promise<void>;
}

export async function startExternalKafka(): Promise<ExternalKafka> {
  const logger = createLogger(process.env.WEIR_TEST_LOG_LEVEL ?? 'silent');
  const distribution = flinkDistribution({ logger });
  const dataDir = await mkdtemp(join(tmpdir(), 'weir-external-kafka-'));
  const broker = new KafkaBroker({ dataDir, kafkaClasspath: async () => (await distribution()).kafkaClasspath, logger });
  const storage = new KafkaStreamStorage({ broker, logger });
  try {
    const endpoint = await broker.ensureStarted();
    return {
      endpoint,
      storage,
      connectionProperties: {
        'properties.bootstrap.servers': endpoint.bootstrapServers,
        'properties.security.protocol': 'SASL_PLAINTEXT',
        'properties.sasl.mechanism': endpoint.admin.mechanism,
        'sasl.username': endpoint.admin.username,
        'sasl.password': endpoint.admin.password,
      },
      async close() {
        await storage.close();
        await broker.stop();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await storage.close();
    await broker.stop();
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
}
