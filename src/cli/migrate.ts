/**
 * `npm run migrate [-- up|down|status]`: applies (or reverts the last of) the SQL
 * migrations in migrations/ to the configured database (DATABASE_URL, else the
 * embedded PGlite in WEIR_DATA_DIR). The gateway also migrates to latest at start-up.
 */
import { join } from 'node:path';
import { loadConfig } from '../config.js';
import { openDatabase } from '../platform/database.js';
import { migrateDown, migrateToLatest, SqlFileMigrationProvider } from '../platform/migrator.js';
import { Migrator } from 'kysely';

const command = process.argv[2] ?? 'up';
if (!['up', 'down', 'status'].includes(command)) {
  process.stderr.write('usage: npm run migrate -- [up|down|status]\n');
  process.exit(2);
}

const config = loadConfig();
const database = await openDatabase({ databaseUrl: config.databaseUrl, pgliteDir: join(config.dataDir, 'pgdata') });
try {
  process.stdout.write(`database: ${database.kind} at ${database.location}\n`);
  if (command === 'status') {
    const migrations = await new Migrator({ db: database.db, provider: new SqlFileMigrationProvider() }).getMigrations();
    for (const m of migrations) process.stdout.write(`${m.executedAt ? 'applied ' : 'pending '} ${m.name}\n`);
  } else {
    const lines = command === 'up' ? await migrateToLatest(database.db) : await migrateDown(database.db);
    process.stdout.write(lines.length ? `${lines.join('\n')}\n` : 'nothing to do\n');
  }
} finally {
  await database.close();
}
