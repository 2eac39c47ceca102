import {
  getOperationAST,
  print,
  type DocumentNode,
  type FormattedExecutionResult,
  type GraphQLFormattedError,
  type OperationTypeNode,
} from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { getSdk, type Requester } from './generated.js';

export interface WeirClientOptions {
  /** The GraphQL endpoint, e.g. http://127.0.0.1:4000/graphql. Subscriptions use the same URL over ws(s). */
  readonly url: string;
  /** An API key. Only `signUp` and `connectors` work without one. */
  readonly apiKey?: string;
  /** Defaults to the global fetch (keep-alive). */
  readonly fetch?: typeof fetch;
}

/** The last argument of every SDK method. */
export interface RequestOptions {
  /** Aborts the HTTP request, or ends the subscription. */
  readonly signal?: AbortSignal;
}

export type WeirSdk = ReturnType<typeof getSdk<RequestOptions>>;

export interface WeirClient extends WeirSdk {
  /** Closes the WebSocket, which ends every open subscription. HTTP needs no closing. */
  close(): Promise<void>;
}

/**
 * The API answered with errors. `code` is the first error's `extensions.code`
 * (NOT_FOUND, VALIDATION, UNAUTHENTICATED, ...); `errors` holds them all.
 */
export class WeirApiError extends Error {
  override readonly name = 'WeirApiError';

  constructor(
    readonly errors: readonly GraphQLFormattedError[],
    /** The HTTP status; undefined for errors that came over the WebSocket. */
    readonly status?: number,
    /** Whatever data came with the errors (a partial result), if any. */
    readonly data?: unknown,
  ) {
    super(errors.map((error) => error.message).join('; ') || 'The Weir API answered with an error.');
  }

  get code(): string {
    return this.codes[0] ?? 'UNKNOWN';
  }

  get codes(): string[] {
    return this.errors.map((error) => String(error.extensions?.code ?? 'UNKNOWN'));
  }
}

/**
 * The server closed the subscription's WebSocket: 4401 when the API key was revoked or
 * refused, 1001 when the gateway shuts down. Not retried for 4401 and 4403.
 */
export class WeirSocketClosedError extends Error {
  override readonly name = 'WeirSocketClosedError';

  constructor(
    readonly code: number,
    readonly reason: string,
  ) {
    super(`The WebSocket was closed (${code}${reason ? `: ${reason}` : ''}).`);
  }
}

/** Close codes after which reconnecting with the same key cannot help. */
const FINAL_CLOSE_CODES = new Set([4401, 4403]);

interface CloseEventLike {
  readonly code: number;
  readonly reason: string;
}

const isCloseEvent = (value: unknown): value is CloseEventLike =>
  typeof value === 'object' && value !== null && 'code' in value && 'reason' in value;

interface Operation {
  readonly query: string;
  readonly operationName: string | undefined;
  readonly type: OperationTypeNode | undefined;
}

/** The SDK's documents are module constants: print and inspect each one once. */
const operations = new WeakMap<DocumentNode, Operation>();

function operationOf(document: DocumentNode): Operation {
  let operation = operations.get(document);
  if (!operation) {
    const ast = getOperationAST(document);
    operation = { query: print(document), operationName: ast?.name?.value, type: ast?.operation };
    operations.set(document, operation);
  }
  return operation;
}

function webSocketUrl(url: string): string {
  const ws = new URL(url);
  ws.protocol = ws.protocol === 'https:' ? 'wss:' : 'ws:';
  return ws.toString();
}

/**
 * The typed Weir SDK: queries and mutations over HTTP, subscriptions over graphql-ws
 * (one lazily opened WebSocket per client, closed when its last subscription ends).
 */
export function createWeirClient(options: WeirClientOptions): WeirClient {
  const fetchImpl = options.fetch ?? fetch;
  const authorization = options.apiKey ? `Bearer ${options.apiKey}` : undefined;
  let socket: Client | undefined;

  const webSocket = (): Client =>
    (socket ??= createClient({
      url: webSocketUrl(options.url),
      webSocketImpl: WebSocket,
      connectionParams: authorization ? { authorization } : {},
      // graphql-ws retries 4403 by default ("access may be granted later"); a revoked key never is.
      shouldRetry: (error) => isCloseEvent(error) && !FINAL_CLOSE_CODES.has(error.code),
    }));

  async function post<R>(operation: Operation, variables: unknown, signal: AbortSignal | undefined): Promise<R> {
    const response = await fetchImpl(options.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
        ...(authorization ? { authorization } : {}),
      },
      body: JSON.stringify({ query: operation.query, variables, operationName: operation.operationName }),
      ...(signal ? { signal } : {}),
    });
    const text = await response.text();
    let result: FormattedExecutionResult<R> | undefined;
    try {
      result = JSON.parse(text) as FormattedExecutionResult<R>;
    } catch {
      // Not GraphQL at all (a proxy's error page, say): reported below.
    }
    if (result?.errors?.length) throw new WeirApiError(result.errors, response.status, result.data ?? undefined);
    if (result?.data == null) {
      const message = `Expected a GraphQL response, got HTTP ${response.status}: ${text.slice(0, 200)}`;
      throw new WeirApiError([{ message, extensions: { code: 'BAD_RESPONSE' } }], response.status);
    }
    return result.data;
  }

  function subscribe<R>(operation: Operation, variables: unknown, signal: AbortSignal | undefined): AsyncIterable<R> {
    return {
      async *[Symbol.asyncIterator]() {
        const results = webSocket().iterate<R>({
          query: operation.query,
          variables: (variables ?? {}) as Record<string, unknown>,
          ...(operation.operationName ? { operationName: operation.operationName } : {}),
        });
        const stop = () => void results.return?.();
        if (signal?.aborted) return;
        signal?.addEventListener('abort', stop, { once: true });
        try {
          for await (const result of results) {
            if (result.errors?.length) throw new WeirApiError(result.errors, undefined, result.data ?? undefined);
            yield result.data as R;
          }
        } catch (error) {
          if (isCloseEvent(error)) throw new WeirSocketClosedError(error.code, error.reason);
          throw error;
        } finally {
          signal?.removeEventListener('abort', stop);
        }
      },
    };
  }

  const requester: Requester<RequestOptions> = <R, V>(document: DocumentNode, variables?: V, request?: RequestOptions) => {
    const operation = operationOf(document);
    return operation.type === 'subscription'
      ? subscribe<R>(operation, variables, request?.signal)
      : post<R>(operation, variables, request?.signal);
  };

  return {
    ...getSdk(requester),
    async close() {
      await socket?.dispose();
    },
  };
}
