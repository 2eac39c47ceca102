import { randomUUID } from 'node:crypto';
import { GraphQLError } from 'graphql';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import type { Actor } from './accounts/actor.js';
import type { Config } from './config.js';
import type { GraphQLContext } from './graphql/context.js';
import { useWeirErrors } from './graphql/error-plugin.js';
import { useOperationLimits } from './graphql/limits.js';
import { createLoaders } from './graphql/loaders.js';
import { useRequestDeadline } from './graphql/request-deadline.js';
import { useSubscriptionLimits } from './graphql/subscription-limits.js';
import { buildSchema } from './graphql/schema.js';
import { StatusEvents } from './jobs/status-events.js';
import type { Db } from './platform/database.js';
import { Deadline } from './platform/deadline.js';
import { WeirError } from './platform/errors.js';
import type { Logger } from './platform/logger.js';
import type { PreviewDeps } from './preview/preview.service.js';
import { Reconciler } from './reconcile/reconciler.js';
import { DEFAULT_RESTART_POLICY } from './reconcile/restart-policy.js';
import { ReconcileLoop } from './reconcile/loop.js';
import type { Runtime } from './runtime/runtime.js';
import { SqlWorkerPool } from './sql/sql-worker-pool.js';
import type { StreamStorage } from './streams/stream-storage.js';
import { createServices, type Services } from './services.js';

/** What the transport (HTTP or WebSocket) knows before GraphQL starts. */
export interface ServerContext {
  readonly requestId?: string;
  readonly clientAddress?: string;
  /** Set by the WebSocket transport, which authenticates once at connection time. */
  readonly wsActor?: Actor;
}

export interface AppDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly db: Db;
  readonly secret: string;
  readonly runtime: Runtime;
  /** Where stream records live; undefined when the gateway keeps none (WEIR_RUNTIME=none). */
  readonly storage?: StreamStorage | undefined;
  /** The preview cluster and pool (local or kubernetes runtime); undefined: previews are UNAVAILABLE. */
  readonly preview?: Omit<PreviewDeps, 'storage'> | undefined;
}

export interface App {
  readonly yoga: YogaServerInstance<ServerContext, GraphQLContext>;
  readonly services: Services;
  readonly reconciler: Reconciler;
  readonly loop: ReconcileLoop;
  readonly logger: Logger;
  /** Where pipeline and preview SQL is parsed and checked (worker threads, started on first use). */
  readonly sql: SqlWorkerPool;
  /** Reads the API key of a request: undefined when none was sent. */
  authenticate(authorization: string | null | undefined): Promise<Actor | undefined>;
  /** Stops what the app itself started (the SQL workers); the database, runtime and server are their owners'. */
  close(): Promise<void>;
}

function bearer(header: string | null | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw new GraphQLError('The Authorization header must be "Bearer <API key>".', {
    extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } },
  });
  return match[1];
}

/** The gateway without a port: tests call `app.yoga.fetch()` directly. */
export function buildApp(deps: AppDeps): App {
  const { config, logger, db } = deps;
  const events = new StatusEvents();
  const reconciler = new Reconciler(db, deps.runtime, events, logger.child({ component: 'reconciler' }), {
    restartPolicy: { ...DEFAULT_RESTART_POLICY, maxRestarts: config.jobMaxRestarts, windowMs: config.jobRestartWindowMs },
  });
  const loop = new ReconcileLoop(reconciler, config.reconcileIntervalMs, logger.child({ component: 'reconcile-loop' }));
  const sqlPool = new SqlWorkerPool({
    size: config.sqlWorkers,
    timeLimitMs: config.sqlCheckTimeoutMs,
    logger: logger.child({ component: 'sql-workers' }),
  });
  const services = createServices({
    db,
    sql: sqlPool,
    secret: deps.secret,
    signupRatePerMinute: config.signupRatePerMinute,
    logger,
    wakeReconciler: () => loop.wake(),
    statusEvents: events,
    storage: deps.storage,
    runtime: deps.runtime,
    preview: deps.preview,
    platformDatabase: hostAndPort(config.databaseUrl),
  });

  // A runtime that watches its platform wakes the reconciler on every change.
  deps.runtime.onChange?.(() => loop.wake());

  async function authenticate(authorization: string | null | undefined): Promise<Actor | undefined> {
    const key = bearer(authorization);
    if (key === undefined) return undefined;
    try {
      return await services.accounts.authenticate(key);
    } catch (error) {
      if (error instanceof WeirError) {
        throw new GraphQLError(error.message, { extensions: { code: error.code, http: { status: 401 } } });
      }
      throw error;
    }
  }

  const yoga = createYoga<ServerContext, GraphQLContext>({
    schema: buildSchema(),
    graphqlEndpoint: '/graphql',
    landingPage: false,
    graphiql: config.graphiql ? { subscriptionsProtocol: 'WS', title: 'Weir' } : false,
    logging: logger.child({ component: 'yoga' }),
    // useWeirErrors is the error boundary (it knows the request id); yoga's own masking
    // would run first and hide Weir's typed errors.
    maskedErrors: false,
    plugins: [...useOperationLimits(), useRequestDeadline(config.requestTimeoutMs), useSubscriptionLimits(), useWeirErrors()],
    context: async (initial): Promise<GraphQLContext> => {
      const requestId = initial.requestId ?? randomUUID();
      let actor: Actor | null;
      try {
        actor = initial.wsActor ?? (await authenticate(initial.request?.headers.get('authorization'))) ?? null;
      } catch (error) {
        if (error instanceof GraphQLError) throw error;
        logger.error({ err: error, requestId }, 'authentication failed unexpectedly');
        throw new GraphQLError('Unexpected error.', { extensions: { code: 'INTERNAL_SERVER_ERROR', requestId } });
      }
      // The deadline also ends when the HTTP client goes away.
      const deadline = new Deadline(initial.request?.signal);
      return {
        requestId,
        logger: logger.child({ requestId, ...(actor ? { accountId: actor.accountId } : {}) }),
        services,
        actor,
        clientAddress: initial.clientAddress ?? 'unknown',
        deadline,
        loaders: createLoaders(services, actor, deadline.signal),
      };
    },
  });

  return { yoga, services, reconciler, loop, logger, sql: sqlPool, authenticate, close: () => sqlPool.close() };
}

/** `host:port` of a Postgres URL (the platform's own database, which no connection may name). */
function hostAndPort(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const parsed = new URL(url);
    return parsed.hostname ? `${parsed.hostname}:${parsed.port || '5432'}` : undefined;
  } catch {
    return undefined;
  }
}
