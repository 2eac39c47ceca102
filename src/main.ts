import { sql } from 'kysely';
import { buildApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { createHttpServer } from './http/server.js';
import { openDatabase } from './platform/database.js';
import { createLogger } from './platform/logger.js';
import { migrateToLatest } from './platform/migrator.js';
import { makeDataDirPrivate } from './platform/private-files.js';
import { loadOrCreateSecret } from './platform/secret.js';
import { join } from 'node:path';
import { createRuntime } from './runtime/create-runtime.js';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  // First, before anything writes there: the database's WAL holds connection secrets.
  const tightened = await makeDataDirPrivate(config.dataDir);
  if (tightened > 0) logger.warn({ dataDir: config.dataDir, tightened }, 'made files and folders left readable by others owner-only');
  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    pgliteDir: join(config.dataDir, 'pgdata'),
    onIdleError: (error) => logger.warn({ err: error }, 'database dropped an idle connection'),
  });
  logger.info({ database: database.kind, location: database.location }, 'database opened');
  for (const line of await migrateToLatest(database.db)) logger.info(line);
  const secret = await loadOrCreateSecret(config.secret, config.dataDir);
  const parts = createRuntime(config, logger, database.db);
  const { runtime } = parts;
  const app = buildApp({ config, logger, db: database.db, secret, runtime, storage: parts.storage, preview: parts.preview });
  if (config.previewWarmAtStart && parts.preview) {
    parts.preview.pool.start().catch((error) => logger.error({ err: error }, 'warming the preview pool failed'));
  }
  // The SQL workers start now, in the background, so the first pipeline is not the one that waits for them.
  const warming = Date.now();
  app.sql
    .warm()
    .then(() => logger.info({ ms: Date.now() - warming }, 'SQL workers ready'))
    .catch((error) => logger.error({ err: error }, 'starting the SQL workers failed'));
  const http = createHttpServer({ app, config, ready: async () => void (await sql`select 1`.execute(database.db)) });
  await http.listen();

  const stop = new AbortController();
  app.loop.start(stop.signal);
  logger.info({ url: `${http.url()}/graphql`, runtime: runtime.name }, 'Weir gateway listening');

  let shuttingDown = false;
  const shutdown = async (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info({ signal }, 'shutting down: closing subscriptions, draining requests, stopping jobs');
    await http.close();
    stop.abort();
    await app.loop.done();
    await app.close();
    await parts.close();
    await database.close();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((error) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
  } else {
    process.stderr.write(`Weir failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  }
  process.exit(1);
});
