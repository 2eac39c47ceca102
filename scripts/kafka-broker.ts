/**
 * Weir's Kafka broker (the local runtime's: KRaft, SASL, ACLs) on its own, for a gateway
 * with `WEIR_RUNTIME=kubernetes` that needs a Kafka its Flink pods reach.
 *
 *   npx tsx scripts/kafka-broker.ts start <dir> <host>   start it (or adopt the one
 *       running for <dir>), listening on and advertising <host>; prints KAFKA_BOOTSTRAP,
 *       KAFKA_USERNAME and KAFKA_PASSWORD (the admin's, a super user) as KEY=value lines
 *   npx tsx scripts/kafka-broker.ts stop <dir>           stop it (its data stays in <dir>)
 *
 * The broker runs detached: it outlives this command, as it outlives a gateway.
 */
import { KafkaBroker } from '../src/runtime/local/kafka-broker.js';
import { flinkDistribution } from '../src/runtime/local/flink-distribution.js';
import { createLogger } from '../src/platform/logger.js';

const [command, dir, host] = process.argv.slice(2);
const logger = createLogger(process.env.LOG_LEVEL ?? 'info');

function usage(): never {
  process.stderr.write('usage: tsx scripts/kafka-broker.ts start <dir> <host> | stop <dir>\n');
  process.exit(2);
}

if (!dir || (command === 'start' && !host)) usage();
const distribution = flinkDistribution({ cacheDir: process.env.WEIR_CACHE_DIR, logger });
const broker = new KafkaBroker({ dataDir: dir, host, logger, kafkaClasspath: async () => (await distribution()).kafkaClasspath });

if (command === 'start') {
  const endpoint = await broker.ensureStarted();
  process.stdout.write(
    `KAFKA_BOOTSTRAP=${endpoint.bootstrapServers}\nKAFKA_USERNAME=${endpoint.admin.username}\nKAFKA_PASSWORD=${endpoint.admin.password}\n`,
  );
} else if (command === 'stop') {
  await broker.stop();
} else {
  usage();
}
