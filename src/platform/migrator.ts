import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Migrator, sql, type Kysely, type Migration, type MigrationProvider, type MigrationResultSet } from 'kysely';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

/** Plain SQL migrations: `NNNN_name.up.sql` with a matching `NNNN_name.down.sql`. */
export class SqlFileMigrationProvider implements MigrationProvider {
  constructor(private readonly dir: string = MIGRATIONS_DIR) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    const files = await readdir(this.dir);
    const migrations: Record<string, Migration> = {};
    for (const file of files.filter((f) => f.endsWith('.up.sql')).sort()) {
      const name = file.slice(0, -'.up.sql'.length);
      const up = await readFile(`${this.dir}/${file}`, 'utf8');
      const downFile = `${name}.down.sql`;
      const down = files.includes(downFile) ? await readFile(`${this.dir}/${downFile}`, 'utf8') : undefined;
      migrations[name] = {
        up: async (db) => void (await sql.raw(up).execute(db)),
        ...(down !== undefined ? { down: async (db: Kysely<any>) => void (await sql.raw(down).execute(db)) } : {}),
      };
    }
    return migrations;
  }
}

export class MigrationError extends Error {
  override readonly name = 'MigrationError';
}

function check(result: MigrationResultSet): string[] {
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error');
    throw new MigrationError(`Migration ${failed?.migrationName ?? '?'} failed: ${String(result.error)}`, {
      cause: result.error,
    });
  }
  return (result.results ?? []).map((r) => `${r.direction === 'Up' ? 'applied' : 'reverted'} ${r.migrationName}`);
}

export async function migrateToLatest(db: Kysely<any>): Promise<string[]> {
  return check(await new Migrator({ db, provider: new SqlFileMigrationProvider() }).migrateToLatest());
}

export async function migrateDown(db: Kysely<any>): Promise<string[]> {
  return check(await new Migrator({ db, provider: new SqlFileMigrationProvider() }).migrateDown());
}
