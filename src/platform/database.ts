import { resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { WeirDatabase } from './database-schema.js';
import { PGliteDialect } from './pglite-driver.js';
import { mkdirPrivate, restrictUmask, tightenTree } from './private-files.js';

export type Db = Kysely<WeirDatabase>;

export interface DatabaseHandle {
  readonly db: Db;
  /** `pglite` (embedded, in process) or `postgres` (a server at DATABASE_URL). */
  readonly kind: 'pglite' | 'postgres';
  /** Where the data lives: a folder for PGlite, the URL without password for Postgres. */
  readonly location: string;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  readonly databaseUrl: string | undefined;
  /** PGlite data folder; `memory://` keeps it in memory (tests). */
  readonly pgliteDir: string;
  readonly poolSize?: number;
  /** Told when Postgres drops an idle pooled connection (the pool recovers by itself). */
  readonly onIdleError?: (error: Error) => void;
}

export async function openDatabase(options: DatabaseOptions): Promise<DatabaseHandle> {
  if (options.databaseUrl) {
    const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolSize ?? 10 });
    // An idle client that the server drops (restart, admin) emits 'error' on the pool;
    // unhandled, that would crash the gateway. The pool replaces the client on next use.
    pool.on('error', (error) => options.onIdleError?.(error));
    const db = new Kysely<WeirDatabase>({ dialect: new PostgresDialect({ pool }) });
    const url = new URL(options.databaseUrl);
    url.password = '';
    return { db, kind: 'postgres', location: url.toString(), close: () => db.destroy() };
  }
  const inMemory = options.pgliteDir === 'memory://';
  const location = inMemory ? 'memory://' : resolve(options.pgliteDir);
  if (!inMemory) {
    // The WAL holds connection secrets in plain text: owner-only.
    restrictUmask();
    await mkdirPrivate(location);
  }
  const pglite = await PGlite.create(inMemory ? undefined : location);
  // PGlite sets the modes of the data folder it initialises itself (0666, whatever the
  // umask); the files it creates later follow the umask.
  if (!inMemory) await tightenTree(location);
  const db = new Kysely<WeirDatabase>({ dialect: new PGliteDialect(pglite) });
  return { db, kind: 'pglite', location, close: () => db.destroy() };
}
