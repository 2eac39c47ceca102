import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createLogger } from '../../src/platform/logger.js';
import { flinkDistribution } from '../../src/runtime/local/flink-distribution.js';
import { KafkaBroker } from '../../src/runtime/local/kafka-broker.js';
import { KafkaStreamStorage } from '../../src/streams/kafka-stream-storage.js';
import { saslClientProperties, type KafkaEndpoint } from '../../src/streams/kafka-endpoint.js';

const execFileAsync = promisify(execFile);

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

/**
 * Every record of a topic as Kafka's own Java consumer reads it at `read_committed`
 * (`kafka-console-consumer`, the broker's admin as its user): a reader that is not Weir's.
 * Reads until `expected` records came, or nothing came for `idleMs`. Records are Weir's JSON values.
 */
export async function readCommittedWithKafkaConsumer(
  endpoint: KafkaEndpoint,
  topic: string,
  options: { expected: number; idleMs?: number },
): Promise<string[]> {
  const { kafkaClasspath } = await flinkDistribution({ logger: createLogger('silent') })();
  const client = saslClientProperties(endpoint.securityProtocol, endpoint.admin);
  const args = [
    '-Dweir.log.level=WARN',
    '-cp',
    kafkaClasspath,
    'org.apache.kafka.tools.consumer.ConsoleConsumer',
    '--bootstrap-server',
    endpoint.bootstrapServers,
    '--topic',
    topic,
    '--from-beginning',
    '--isolation-level',
    'read_committed',
    '--max-messages',
    String(options.expected),
    '--timeout-ms',
    String(options.idleMs ?? 15_000),
    ...Object.entries(client).flatMap(([key, value]) => ['--command-property', `${key}=${value}`]),
  ];
  const { stdout } = await execFileAsync('java', args, { maxBuffer: 64 * 1024 * 1024, timeout: 120_000 });
  // The tool logs to stdout too (its end on --timeout-ms is an ERROR line): records are the JSON objects.
  return stdout.split('\n').filter((line) => line.startsWith('{'));
}
