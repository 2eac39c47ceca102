import type { IncomingMessage, Server } from 'node:http';
import type { ExecutionArgs } from 'graphql';
import { GraphQLError } from 'graphql';
import type { SubscribePayload } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Actor } from '../accounts/actor.js';
import type { App } from '../app.js';

export interface WebSocketTransport {
  /** Open sockets (for tests and metrics). */
  readonly clients: () => number;
  /** Stops accepting and closes every socket with 1001 (going away). */
  close(): Promise<void>;
}

type Extra = {
  readonly socket: WebSocket;
  readonly request: IncomingMessage;
  actor?: Actor;
  unwatch?: () => void;
};

/**
 * Closes a socket whose API key is unknown or was revoked. 4401 (Unauthorized) is one
 * of the codes graphql-ws clients do not retry; 4403 (its default) would be retried.
 */
export const CLOSE_UNAUTHORIZED = 4401;

/**
 * graphql-ws on the same path as HTTP. Every operation goes through yoga's envelop
 * (parse, validate, context, execute), so limits, auth and error masking are shared.
 */
export function attachWebSocket(options: { server: Server; app: App; maxPayloadBytes: number }): WebSocketTransport {
  const { app } = options;
  const wss = new WebSocketServer({ server: options.server, path: '/graphql', maxPayload: options.maxPayloadBytes });

  const cleanup = useServer<Record<string, unknown> | undefined, Extra>(
    {
      execute: (args) => (args.rootValue as { execute: (a: ExecutionArgs) => unknown }).execute(args) as never,
      subscribe: (args) => (args.rootValue as { subscribe: (a: ExecutionArgs) => unknown }).subscribe(args) as never,
      onConnect: async (ctx) => {
        const authorization = ctx.connectionParams?.authorization;
        try {
          const actor = await app.authenticate(typeof authorization === 'string' ? authorization : undefined);
          if (actor) {
            ctx.extra.actor = actor;
            ctx.extra.unwatch = app.services.revocations.watch(actor.keyId, () =>
              ctx.extra.socket.close(CLOSE_UNAUTHORIZED, 'API key revoked'),
            );
          }
          return true;
        } catch (error) {
          ctx.extra.socket.close(CLOSE_UNAUTHORIZED, error instanceof Error ? error.message.slice(0, 120) : 'Unauthorized');
          return false;
        }
      },
      onClose: (ctx) => ctx.extra.unwatch?.(),
      onSubscribe: async (ctx, _id, payload: SubscribePayload) => {
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
        return {
          schema,
          operationName: payload.operationName ?? null,
          document,
          variableValues: payload.variables ?? null,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
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
