import type { IncomingMessage, Server } from 'node:http';
import type { ExecutionArgs } from 'graphql';
import { getOperationAST, GraphQLError } from 'graphql';
import type { Context, SubscribePayload } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Actor } from '../accounts/actor.js';
import type { App } from '../app.js';
import type { Config } from '../config.js';
import { Tally } from '../platform/tally.js';
import { SECOND } from '../platform/time.js';
import { IdleTimer } from './idle-timer.js';

export interface WebSocketTransport {
  /** Open sockets (for tests and metrics). */
  readonly clients: () => number;
  /** Stops accepting and closes every socket with 1001 (going away). */
  close(): Promise<void>;
}

export interface WebSocketOptions {
  readonly server: Server;
  readonly app: App;
  readonly maxPayloadBytes: number;
  readonly idleTimeoutMs: Config['wsIdleTimeoutMs'];
  readonly maxSocketsPerKey: Config['wsMaxSocketsPerKey'];
}

/** What an acknowledged connection holds until its socket closes. */
type Session = {
  /** Closes the socket once no operation has been in progress for the idle timeout. */
  readonly idle: IdleTimer;
  /** Undoes the session (socket count, revocation watch, idle timer); runs once, at close. */
  readonly end: () => void;
};

type Extra = {
  readonly socket: WebSocket;
  readonly request: IncomingMessage;
  actor?: Actor;
  session?: Session;
};

type ConnectionContext = Context<Record<string, unknown> | undefined, Extra>;

/**
 * Closes a socket whose API key is unknown or was revoked. 4401 (Unauthorized) is one
 * of the codes graphql-ws clients do not retry; 4403 (its default) would be retried.
 */
export const CLOSE_UNAUTHORIZED = 4401;

/**
 * Closes a socket the server found idle. 1000 (normal closure): graphql-ws clients
 * reconnect after it only when they have subscriptions to resume, and an idle one has none.
 */
export const CLOSE_IDLE = 1000;

/**
 * Refuses a socket beyond WEIR_WS_MAX_SOCKETS_PER_KEY. 1013 (try again later): clients
 * retry with back-off, and get in once another socket of the key has closed.
 */
export const CLOSE_TOO_MANY_SOCKETS = 1013;

/** A socket that has not sent connection_init by then is closed (4408) by graphql-ws. */
const CONNECTION_INIT_WAIT_MS = 3 * SECOND;

/**
 * graphql-ws on the same path as HTTP. Every operation goes through yoga's envelop
 * (parse, validate, context, execute), so limits, auth and error masking are shared.
 * Sockets are bounded per API key, and closed when idle.
 */
export function attachWebSocket(options: WebSocketOptions): WebSocketTransport {
  const { app, idleTimeoutMs, maxSocketsPerKey } = options;
  const wss = new WebSocketServer({ server: options.server, path: '/graphql', maxPayload: options.maxPayloadBytes });
  const socketsPerKey = new Tally();

  /** Starts the session of an accepted socket; false: it was refused (and is being closed). */
  function openSession(extra: Extra, actor: Actor | undefined): boolean {
    const { socket } = extra;
    const undo: (() => void)[] = [];
    if (actor) {
      if (socketsPerKey.get(actor.keyId) >= maxSocketsPerKey) {
        socket.close(CLOSE_TOO_MANY_SOCKETS, `Too many WebSockets for this API key (at most ${maxSocketsPerKey} per gateway)`);
        return false;
      }
      socketsPerKey.add(actor.keyId);
      undo.push(() => socketsPerKey.remove(actor.keyId));
      undo.push(app.services.revocations.watch(actor.keyId, () => socket.close(CLOSE_UNAUTHORIZED, 'API key revoked')));
      extra.actor = actor;
    }
    const idle = new IdleTimer(idleTimeoutMs, () => socket.close(CLOSE_IDLE, `Idle: no subscription for ${idleTimeoutMs} ms`));
    undo.push(() => idle.stop());
    let ended = false;
    extra.session = {
      idle,
      end: () => {
        if (ended) return;
        ended = true;
        for (const step of undo) step();
      },
    };
    return true;
  }

  /** Parses, validates and builds the context of one operation through yoga's envelop. */
  async function prepare(ctx: ConnectionContext, payload: SubscribePayload) {
    const { schema, execute, subscribe, contextFactory, parse, validate } = app.yoga.getEnveloped({
      ...ctx,
      req: ctx.extra.request,
      socket: ctx.extra.socket,
      params: payload,
      clientAddress: ctx.extra.request.socket.remoteAddress ?? 'unknown',
      ...(ctx.extra.actor ? { wsActor: ctx.extra.actor } : {}),
    });
    // Some limits throw from parse or validate rather than report: both are the client's errors.
    let document;
    try {
      document = parse(payload.query);
      const errors = validate(schema, document);
      if (errors.length > 0) return errors;
    } catch (error) {
      // graphql-armor may load graphql's CommonJS build: its GraphQLError is another
      // class than ours, so recognise it by name and re-create it for graphql-ws.
      if (error instanceof Error && error.name === 'GraphQLError') {
        const { extensions } = error as GraphQLError;
        return [new GraphQLError(error.message, { extensions: { ...extensions } })];
      }
      throw error;
    }
    // graphql-ws would report this itself, but not always through a hook the idle timer hears.
    if (!getOperationAST(document, payload.operationName ?? null)) {
      return [new GraphQLError('Unable to identify the operation: check operationName.')];
    }
    return {
      schema,
      operationName: payload.operationName ?? null,
      document,
      variableValues: payload.variables ?? null,
      contextValue: await contextFactory(),
      rootValue: { execute, subscribe },
    };
  }

  const cleanup = useServer<Record<string, unknown> | undefined, Extra>(
    {
      execute: (args) => (args.rootValue as { execute: (a: ExecutionArgs) => unknown }).execute(args) as never,
      subscribe: (args) => (args.rootValue as { subscribe: (a: ExecutionArgs) => unknown }).subscribe(args) as never,
      connectionInitWaitTimeout: CONNECTION_INIT_WAIT_MS,
      onConnect: async (ctx) => {
        const authorization = ctx.connectionParams?.authorization;
        let actor: Actor | undefined;
        try {
          actor = await app.authenticate(typeof authorization === 'string' ? authorization : undefined);
        } catch (error) {
          ctx.extra.socket.close(CLOSE_UNAUTHORIZED, error instanceof Error ? error.message.slice(0, 120) : 'Unauthorized');
          return false;
        }
        // The client may have left while its key was checked; then onClose has run already.
        if (ctx.extra.socket.readyState !== ctx.extra.socket.OPEN) return false;
        return openSession(ctx.extra, actor);
      },
      onClose: (ctx) => ctx.extra.session?.end(),
      // Once onSubscribe has returned execution arguments, every way the operation ends
      // reaches onComplete (or closes the socket); the errors onSubscribe returns end it there.
      onComplete: (ctx, id) => ctx.extra.session?.idle.end(id),
      onError: (ctx, id) => ctx.extra.session?.idle.end(id),
      onSubscribe: async (ctx, id, payload: SubscribePayload) => {
        const idle = ctx.extra.session?.idle;
        idle?.begin(id);
        try {
          const prepared = await prepare(ctx, payload);
          if (Array.isArray(prepared)) idle?.end(id);
          return prepared;
        } catch (error) {
          idle?.end(id);
          throw error;
        }
      },
    },
    wss,
  );

  return {
    clients: () => wss.clients.size,
    async close() {
      // graphql-ws closes each socket with 1001 (going away), then the server.
      await cleanup.dispose();
    },
  };
}
