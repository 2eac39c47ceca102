import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { access, appendFile, chown, constants, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe } from 'vitest';
import { openDatabase, type DatabaseHandle } from '../../src/platform/database.js';
import { migrateToLatest } from '../../src/platform/migrator.js';
import { freePort } from '../../src/platform/net.js';

const SECOND = 1000;
const START_TIMEOUT_MS = 30 * SECOND;
const STOP_TIMEOUT_MS = 10 * SECOND;
const DEBIAN_POSTGRES_DIR = '/usr/lib/postgresql';
const INSTALL_HINT =
  'Install the server with `apt-get install postgresql` (Debian/Ubuntu), ' +
  'or set WEIR_TEST_DATABASE_URL to a superuser URL of a running Postgres.';

/** A Postgres for one test file: a fresh database now, more on demand, all gone after `stop()`. */
export interface TestPostgres {
  /** A fresh, empty database of this caller's own. */
  readonly url: string;
  /** Another fresh, empty database on the same server. */
  createDatabase(): Promise<TestPostgresDatabase>;
  /** Drops every database created here, and stops the server if it was started here. */
  stop(): Promise<void>;
  /**
   * Stops the server (fast shutdown: sessions are cut), keeps it down for `downMs` (an
   * outage of that length, not a wait), then starts it again on the same data and port.
   * Throwaway servers only.
   */
  stopFor(downMs: number): Promise<void>;
}

export interface TestPostgresDatabase {
  readonly url: string;
  drop(): Promise<void>;
}

export class TestPostgresError extends Error {
  override readonly name = 'TestPostgresError';
  constructor(
    message: string,
    /** The server's last output, when there was a server. */
    readonly serverLog = '',
    options?: ErrorOptions,
  ) {
    super(serverLog ? `${message}\n--- postgres output ---\n${serverLog}` : message, options);
  }
}

export interface TestPostgresOptions {
  /**
   * Also listen on `address` and trust clients from `clients` (a CIDR), e.g. pods of the
   * single-node cluster; the URLs then name `address`. Always a throwaway server.
   */
  readonly listenOn?: { readonly address: string; readonly clients: string };
  /** Server settings (`-c key=value`), e.g. `wal_level: 'logical'`. Always a throwaway server. */
  readonly settings?: Readonly<Record<string, string>>;
  /**
   * Superuser `weir` logs in with this password (scram-sha-256) instead of being trusted;
   * the URLs carry it. Always a throwaway server.
   */
  readonly password?: string;
}

/**
 * A real Postgres for tests. With `WEIR_TEST_DATABASE_URL` (a server CI started, superuser)
 * it only creates databases there; otherwise it starts a throwaway server from Debian's
 * binaries on a free port, so parallel vitest workers each get their own.
 */
export async function startTestPostgres(options: TestPostgresOptions = {}): Promise<TestPostgres> {
  const throwaway = options.listenOn !== undefined || options.settings !== undefined || options.password !== undefined;
  const sharedServerUrl = throwaway ? undefined : process.env['WEIR_TEST_DATABASE_URL'];
  const server = sharedServerUrl ? undefined : await startThrowawayServer(options);
  let databases: DatabaseFactory | undefined;
  try {
    databases = await DatabaseFactory.connect(sharedServerUrl ?? server!.adminUrl);
    const first = await databases.create();
    const factory = databases;
    return {
      url: first.url,
      createDatabase: () => factory.create(),
      async stopFor(downMs) {
        if (!server) throw new TestPostgresError('stopFor needs a throwaway server, not WEIR_TEST_DATABASE_URL');
        await factory.reconnectAfter(() => server.stopFor(downMs));
      },
      async stop() {
        try {
          await factory.dropAll();
        } finally {
          await server?.stop();
        }
      },
    };
  } catch (error) {
    await databases?.dropAll().catch(() => {});
    await server?.stop();
    throw error;
  }
}

/** Creates and drops databases through one admin connection. */
class DatabaseFactory {
  private readonly live = new Set<string>();

  private constructor(
    private readonly adminUrl: string,
    private admin: pg.Client,
  ) {}

  static async connect(adminUrl: string): Promise<DatabaseFactory> {
    const admin = new pg.Client({ connectionString: adminUrl });
    // Without a listener, a server going away would crash the worker instead of failing a query.
    admin.on('error', () => {});
    await admin.connect();
    return new DatabaseFactory(adminUrl, admin);
  }

  /** Runs `outage` (the server going away and coming back) and connects the admin client again. */
  async reconnectAfter(outage: () => Promise<void>): Promise<void> {
    await this.admin.end().catch(() => {});
    await outage();
    this.admin = new pg.Client({ connectionString: this.adminUrl });
    this.admin.on('error', () => {});
    await this.admin.connect();
  }

  async create(): Promise<TestPostgresDatabase> {
    const name = `weir_test_${randomBytes(6).toString('hex')}`;
    await this.admin.query(`CREATE DATABASE ${name}`);
    this.live.add(name);
    const url = new URL(this.adminUrl);
    url.pathname = `/${name}`;
    return { url: url.toString(), drop: () => this.drop(name) };
  }

  async dropAll(): Promise<void> {
    try {
      for (const name of [...this.live]) await this.drop(name);
    } finally {
      await this.admin.end();
    }
  }

  /**
   * pg's `Pool.end()` resolves before its sockets close, so backends of a pool that was
   * just closed may still be there. Terminating them would hand those closing clients an
   * error nobody listens to (an uncaught exception in the worker), so give them a moment
   * to leave, and only then force the rest out.
   */
  private async drop(name: string): Promise<void> {
    if (!this.live.delete(name)) return;
    const deadline = Date.now() + 2 * SECOND;
    for (let delayMs = 5; Date.now() < deadline; delayMs = Math.min(delayMs * 2, 100)) {
      const { rows } = await this.admin.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1',
        [name],
      );
      if (rows[0]?.n === 0) break;
      await sleep(delayMs);
    }
    await this.admin.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [name],
    );
    await this.admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}

interface ThrowawayServer {
  /** Superuser `weir`, database `postgres`. */
  readonly adminUrl: string;
  stop(): Promise<void>;
  stopFor(downMs: number): Promise<void>;
}

interface Binaries {
  readonly initdb: string;
  readonly postgres: string;
}

/** Which OS user to run Postgres as; `undefined` means as ourselves. */
interface RunAs {
  readonly uid: number;
  readonly gid: number;
}

async function startThrowawayServer({ listenOn, settings = {}, password }: TestPostgresOptions): Promise<ThrowawayServer> {
  const binaries = await findBinaries();
  const runAs = await postgresUserIfRoot();
  const root = await mkdtemp(join(tmpdir(), 'weir-test-pg-'));
  const removeRoot = () => rm(root, { recursive: true, force: true });
  try {
    if (runAs) await chown(root, runAs.uid, runAs.gid);
    const dataDir = join(root, 'data');
    const passwordFile = join(root, 'password');
    if (password !== undefined) {
      await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
      if (runAs) await chown(passwordFile, runAs.uid, runAs.gid);
    }
    const auth = password === undefined ? ['-A', 'trust'] : ['-A', 'scram-sha-256', `--pwfile=${passwordFile}`];
    await run(binaries.initdb, ['-D', dataDir, ...auth, '-U', 'weir', '--no-sync', '-E', 'UTF8', '--locale=C'], {
      cwd: root,
      runAs,
    });
    if (password !== undefined) await rm(passwordFile);
    // This machine reaches `address` from `address` itself.
    if (listenOn) await appendFile(join(dataDir, 'pg_hba.conf'), `host all all ${listenOn.address}/32 trust\nhost all all ${listenOn.clients} trust\n`);
    const host = listenOn?.address ?? '127.0.0.1';
    // Another worker may take the port between our probe and postgres's bind: try again.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const spawnHere = () => spawnServer(binaries.postgres, dataDir, root, port, runAs, listenOn ? `127.0.0.1,${host}` : host, settings);
      let server = spawnHere();
      const login = password === undefined ? 'weir' : `weir:${encodeURIComponent(password)}`;
      const adminUrl = `postgresql://${login}@${host}:${port}/postgres`;
      try {
        await waitUntilReady(adminUrl, server);
      } catch (error) {
        await server.stop();
        if (attempt < 3 && /address already in use/i.test(server.log())) continue;
        throw error;
      }
      return {
        adminUrl,
        async stop() {
          await server.stop();
          await removeRoot();
        },
        async stopFor(downMs) {
          await server.stop();
          await sleep(downMs);
          server = spawnHere();
          await waitUntilReady(adminUrl, server);
        },
      };
    }
  } catch (error) {
    await removeRoot();
    throw error;
  }
}

async function findBinaries(): Promise<Binaries> {
  const versions = await readdir(DEBIAN_POSTGRES_DIR).catch(() => [] as string[]);
  const newestFirst = versions.filter((v) => /^\d+(\.\d+)?$/.test(v)).sort((a, b) => Number(b) - Number(a));
  for (const version of newestFirst) {
    const bin = join(DEBIAN_POSTGRES_DIR, version, 'bin');
    const binaries = { initdb: join(bin, 'initdb'), postgres: join(bin, 'postgres') };
    if ((await isExecutable(binaries.initdb)) && (await isExecutable(binaries.postgres))) return binaries;
  }
  throw new TestPostgresError(
    `No Postgres server found (looked for ${DEBIAN_POSTGRES_DIR}/<version>/bin/initdb and postgres). ${INSTALL_HINT}`,
  );
}

const isExecutable = (file: string) =>
  access(file, constants.X_OK).then(
    () => true,
    () => false,
  );

/** Postgres refuses to run as root, so as root we run it as the `postgres` user Debian's package creates. */
async function postgresUserIfRoot(): Promise<RunAs | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const id = async (flag: string) => Number((await promisify(execFile)('id', [flag, 'postgres'])).stdout.trim());
  try {
    return { uid: await id('-u'), gid: await id('-g') };
  } catch (error) {
    throw new TestPostgresError(
      `Running as root, and Postgres refuses to run as root, but there is no \`postgres\` OS user. ${INSTALL_HINT}`,
      '',
      { cause: error },
    );
  }
}

/**
 * Spawns with `uid`/`gid` rather than through `runuser`: runuser stays as a parent that
 * turns any signal into SIGTERM for its child and a SIGKILL two seconds later, which is
 * not how a postmaster should be stopped.
 */
function spawnAs(command: string, args: string[], options: { cwd: string; runAs: RunAs | undefined }): ChildProcess {
  return spawn(command, args, {
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LC_ALL: 'C' },
    ...(options.runAs ?? {}),
  });
}

async function run(command: string, args: string[], options: { cwd: string; runAs: RunAs | undefined }) {
  const child = spawnAs(command, args, options);
  const output = captureOutput(child);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) throw new TestPostgresError(`${command} exited with ${code}`, output());
}

/** Keeps reading the child's output (a full pipe would block postgres) and remembers its tail. */
function captureOutput(child: ChildProcess): () => string {
  let tail = '';
  const append = (chunk: Buffer) => (tail = (tail + chunk.toString('utf8')).slice(-16_000));
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  return () => tail;
}

interface RunningServer {
  readonly exited: Promise<void>;
  hasExited(): boolean;
  log(): string;
  stop(): Promise<void>;
}

/** Runs postgres on `dataDir`, with its socket and lock file in `root` (removed on exit). */
function spawnServer(
  postgres: string,
  dataDir: string,
  root: string,
  port: number,
  runAs: RunAs | undefined,
  listenAddresses: string,
  settings: Readonly<Record<string, string>>,
) {
  const child = spawnAs(
    postgres,
    [
      ...['-D', dataDir, '-p', String(port), '-k', root],
      ...['-c', `listen_addresses=${listenAddresses}`, '-c', 'fsync=off'],
      ...['-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
      ...Object.entries(settings).flatMap(([key, value]) => ['-c', `${key}=${value}`]),
    ],
    { cwd: root, runAs },
  );
  const log = captureOutput(child);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const hasExited = () => child.exitCode !== null || child.signalCode !== null || child.pid === undefined;
  // If the worker exits without afterAll (a crash, a bail), don't leave a postmaster behind.
  // Exit handlers must be synchronous: SIGQUIT (immediate shutdown), then best-effort removal.
  const onProcessExit = () => {
    if (!hasExited()) child.kill('SIGQUIT');
    try {
      rmSync(root, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // The server may still be writing; the folder is in the OS temp dir regardless.
    }
  };
  process.once('exit', onProcessExit);

  const server: RunningServer = {
    exited,
    hasExited,
    log,
    async stop() {
      process.off('exit', onProcessExit);
      if (hasExited()) return;
      // SIGINT is Postgres's fast shutdown: it ends open sessions instead of waiting for them.
      child.kill('SIGINT');
      const timedOut = await Promise.race([exited.then(() => false), sleep(STOP_TIMEOUT_MS, true)]);
      if (timedOut && !hasExited()) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
  return server;
}

/** Polls with a short backoff until the server answers, it exits, or START_TIMEOUT_MS passes. */
async function waitUntilReady(url: string, server: RunningServer): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let delayMs = 10;
  let lastError: unknown;
  for (;;) {
    if (server.hasExited()) throw new TestPostgresError('postgres exited while starting', server.log());
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2 * SECOND });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      return;
    } catch (error) {
      lastError = error;
    } finally {
      await client.end().catch(() => {});
    }
    if (Date.now() + delayMs > deadline) {
      throw new TestPostgresError(
        `postgres did not accept connections within ${START_TIMEOUT_MS / SECOND}s (last error: ${String(lastError)})`,
        server.log(),
        { cause: lastError },
      );
    }
    await Promise.race([sleep(delayMs), server.exited]);
    delayMs = Math.min(delayMs * 2, 250);
  }
}

export type DatabaseLabel = DatabaseHandle['kind'];

/** A database of one test (or of one describe block); a DatabaseHandle, so `startTestApp({ database })` takes it. */
export interface TestDatabase extends DatabaseHandle {
  readonly label: DatabaseLabel;
  /** Idempotent; a database still open when its test (or block) ends is closed then. */
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Apply migrations before handing the database over (default true). */
  readonly migrate?: boolean;
}

export type OpenTestDatabase = (options?: OpenOptions) => Promise<TestDatabase>;

/**
 * Defines the same tests against an in-memory PGlite and a real Postgres, the one place
 * that says which kinds of database the tests run on:
 *
 *     describeDatabases((label, open) => {
 *       test('…', async () => {
 *         const { db } = await open();
 *         …
 *       });
 *     });
 *
 * Each `open()` is a fresh, migrated database (a new database on a server started once
 * per file, for Postgres). One opened in a test is closed after that test; one opened in
 * a `beforeAll` (a gateway the whole block shares) after the block, once the block's own
 * `afterAll`s have run. PGlite runs one transaction at a time, so only the Postgres block
 * shows whether concurrent requests are kept apart by locks.
 */
export function describeDatabases(define: (label: DatabaseLabel, open: OpenTestDatabase) => void): void {
  describe('pglite', () => {
    const open = tracked(async () => {
      const handle = await openDatabase({ databaseUrl: undefined, pgliteDir: 'memory://' });
      return { ...handle, label: 'pglite' };
    });
    define('pglite', open);
  });

  describe('postgres', () => {
    let server: TestPostgres | undefined;
    beforeAll(async () => {
      server = await startTestPostgres();
    });
    afterAll(async () => {
      await server?.stop();
    });
    const open = tracked(async () => {
      if (!server) throw new TestPostgresError('the test Postgres did not start (see the beforeAll error)');
      const database = await server.createDatabase();
      // The gateway's own pool size, so that as many requests run at once as in production.
      const handle = await openDatabase({ databaseUrl: database.url, pgliteDir: 'memory://' });
      return {
        ...handle,
        label: 'postgres',
        async close() {
          try {
            await handle.close();
          } finally {
            await database.drop();
          }
        },
      };
    });
    define('postgres', open);
  });
}

/**
 * Wraps an opener so that it migrates on request and closes what it opened: after each
 * test what that test opened, after the block what was opened outside a test. Registered
 * before `define` runs, so (hooks run as a stack) its afterEach/afterAll run after the
 * block's own, which may still use the database (closing a gateway on it).
 */
function tracked(openRaw: () => Promise<TestDatabase>): OpenTestDatabase {
  const ofTest = new Set<TestDatabase>();
  const ofBlock = new Set<TestDatabase>();
  let inTest = false;
  const closeAll = async (databases: Set<TestDatabase>) => {
    const closing = [...databases].map((database) => database.close());
    databases.clear();
    await Promise.all(closing);
  };
  beforeEach(() => {
    inTest = true;
  });
  afterEach(async () => {
    inTest = false;
    await closeAll(ofTest);
  });
  afterAll(() => closeAll(ofBlock));
  return async (options = {}) => {
    const owner = inTest ? ofTest : ofBlock;
    const raw = await openRaw();
    let closed: Promise<void> | undefined;
    const database: TestDatabase = {
      ...raw,
      close: () => {
        owner.delete(database);
        return (closed ??= raw.close());
      },
    };
    owner.add(database);
    if (options.migrate ?? true) await migrateToLatest(database.db);
    return database;
  };
}
