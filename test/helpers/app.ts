import type { ExecutionResult } from 'graphql';
import { buildApp, type App, type AppDeps } from '../../src/app.js';
import { testConfig, type Config } from '../../src/config.js';
import { openDatabase, type DatabaseHandle } from '../../src/platform/database.js';
import { createLogger } from '../../src/platform/logger.js';
import { migrateToLatest } from '../../src/platform/migrator.js';
import type { Runtime } from '../../src/runtime/runtime.js';
import { NoRuntime } from '../../src/runtime/no-runtime.js';
import type { StreamStorage } from '../../src/streams/stream-storage.js';
import { decodeId } from '../../src/graphql/global-id.js';

export interface TestApp {
  readonly app: App;
  readonly database: DatabaseHandle;
  readonly config: Config;
  /** Runs one operation through yoga in process (no port). */
  gql<T = Record<string, any>>(
    query: string,
    variables?: Record<string, unknown>,
    options?: { key?: string; headers?: Record<string, string> },
  ): Promise<ExecutionResult<T> & { status: number }>;
  /** Signs up a fresh account; returns its ADMIN key and ids. */
  signUp(name?: string): Promise<{ key: string; accountId: string; accountUuid: string }>;
  close(): Promise<void>;
}

let addressCounter = 0;

/** A gateway on an in-memory PGlite (or DATABASE_URL when given), in process. */
export async function startTestApp(
  options: {
    runtime?: Runtime;
    storage?: StreamStorage;
    /** The preview cluster and pool (e.g. a runtime's `parts.preview`); unset: previews are UNAVAILABLE. */
    preview?: AppDeps['preview'];
    config?: Partial<Config>;
    databaseUrl?: string;
    /** An open database to share (a second gateway on the same data); not closed by close(). */
    database?: DatabaseHandle;
  } = {},
): Promise<TestApp> {
  const config = testConfig({ signupRatePerMinute: 100_000, ...options.config });
  const database = options.database ?? (await openDatabase({ databaseUrl: options.databaseUrl, pgliteDir: 'memory://' }));
  if (!options.database) await migrateToLatest(database.db);
  const app = buildApp({
    config,
    logger: createLogger(config.logLevel),
    db: database.db,
    secret: 'test-secret-test-secret-test-secret!',
    runtime: options.runtime ?? new NoRuntime(),
    storage: options.storage,
    preview: options.preview,
  });

  const gql: TestApp['gql'] = async (query, variables, opts = {}) => {
    const response = await app.yoga.fetch(
      new Request('http://weir.test/graphql', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(opts.key ? { authorization: `Bearer ${opts.key}` } : {}),
          ...opts.headers,
        },
        body: JSON.stringify({ query, variables }),
      }),
      { clientAddress: `10.0.0.${(addressCounter++ % 250) + 1}` },
    );
    return { ...((await response.json()) as ExecutionResult<any>), status: response.status };
  };

  return {
    app,
    database,
    config,
    gql,
    async signUp(name = 'Test account') {
      const result = await gql<{ signUp: { secret: string; account: { id: string } } }>(
        'mutation ($name: String!) { signUp(input: { name: $name }) { secret account { id } } }',
        { name },
      );
      if (result.errors) throw new Error(`signUp failed: ${JSON.stringify(result.errors)}`);
      const accountId = result.data!.signUp.account.id;
      return { key: result.data!.signUp.secret, accountId, accountUuid: decodeId(accountId, 'Account') };
    },
    async close() {
      await app.close();
      if (!options.database) await database.close();
    },
  };
}

/** The `extensions.code` of each error, for assertions. */
export const codes = (result: ExecutionResult): unknown[] => (result.errors ?? []).map((e) => e.extensions?.code);
