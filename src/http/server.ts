import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import type { App } from '../app.js';
import type { Config } from '../config.js';
import { attachWebSocket, type WebSocketTransport } from './ws.js';

export interface HttpServer {
  readonly server: Server;
  readonly ws: WebSocketTransport;
  /** The bound address, e.g. http://127.0.0.1:4000. */
  url(): string;
  listen(): Promise<void>;
  /** Graceful: stop accepting, close subscriptions (1001), drain requests up to the grace period. */
  close(): Promise<void>;
}

export interface HttpDeps {
  readonly app: App;
  readonly config: Pick<
    Config,
    'host' | 'port' | 'maxBodyBytes' | 'shutdownGraceMs' | 'trustProxy' | 'wsIdleTimeoutMs' | 'wsMaxSocketsPerKey'
  >;
  /** Readiness: resolves when the gateway can serve (the database answers). */
  readonly ready: () => Promise<void>;
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(text);
}

function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  const forwarded = trustProxy ? req.headers['x-forwarded-for'] : undefined;
  const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
  return first || req.socket.remoteAddress || 'unknown';
}

class BodyTooLarge extends Error {}

/**
 * Copies a web ReadableStream (yoga's, which need not be Node's own class) to the
 * response with back-pressure: a slow client slows its own stream, nothing piles up.
 */
async function pipeBody(body: ReadableStream<Uint8Array>, res: ServerResponse): Promise<void> {
  const reader = body.getReader();
  const cancel = () => void reader.cancel().catch(() => {});
  res.once('close', cancel);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || res.destroyed) break;
      if (!res.write(value)) await once(res, 'drain');
    }
    res.end();
  } catch {
    res.destroy();
  } finally {
    res.off('close', cancel);
  }
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new BodyTooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new BodyTooLarge();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The gateway's HTTP front: health, readiness, and /graphql (HTTP, SSE, WebSocket). */
export function createHttpServer(deps: HttpDeps): HttpServer {
  const { app, config } = deps;
  const streams = new Set<AbortController>();
  let closing = false;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/healthz') return json(res, 200, { status: 'ok' });
    if (url.pathname === '/readyz') {
      if (closing) return json(res, 503, { status: 'shutting down' });
      try {
        await deps.ready();
        return json(res, 200, { status: 'ready' });
      } catch {
        return json(res, 503, { status: 'database unavailable' });
      }
    }
    if (url.pathname !== '/graphql') return json(res, 404, { error: 'Not found. The API is at /graphql.' });

    let body: Buffer | undefined;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      try {
        body = await readBody(req, config.maxBodyBytes);
      } catch (error) {
        if (!(error instanceof BodyTooLarge)) throw error;
        return json(
          res,
          413,
          {
            errors: [
              {
                message: `The request body exceeds ${config.maxBodyBytes} bytes.`,
                extensions: { code: 'PAYLOAD_TOO_LARGE', maxBodyBytes: config.maxBodyBytes },
              },
            ],
          },
          { connection: 'close' },
        );
      }
    }

    const abort = new AbortController();
    res.on('close', () => {
      abort.abort();
      streams.delete(abort);
    });
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
    }
    const request = new Request(url, {
      method: req.method ?? 'GET',
      headers,
      ...(body !== undefined ? { body: new Uint8Array(body) } : {}),
      signal: abort.signal,
    });
    const response = await app.yoga.fetch(request, {
      requestId: randomUUID(),
      clientAddress: clientAddress(req, config.trustProxy),
    });
    res.writeHead(response.status, Object.fromEntries(response.headers));
    // Server-Sent Events subscriptions are ended at shutdown; plain requests drain.
    if (response.headers.get('content-type')?.includes('text/event-stream') && !res.closed) streams.add(abort);
    if (!response.body) return void res.end();
    await pipeBody(response.body, res);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      app.logger.error({ err: error }, 'http handler failed');
      if (!res.headersSent) json(res, 500, { errors: [{ message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
      else res.destroy();
    });
  });
  const ws = attachWebSocket({
    server,
    app,
    maxPayloadBytes: config.maxBodyBytes,
    idleTimeoutMs: config.wsIdleTimeoutMs,
    maxSocketsPerKey: config.wsMaxSocketsPerKey,
  });

  return {
    server,
    ws,
    url() {
      const address = server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      return `http://${host}:${address.port}`;
    },
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, config.host, () => {
          server.off('error', reject);
          resolve();
        });
      }),
    async close() {
      closing = true;
      const started = Date.now();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await ws.close();
      // Streaming responses (SSE subscriptions) end now; plain requests are let finish.
      for (const stream of streams) stream.abort();
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), config.shutdownGraceMs);
      await closed;
      clearTimeout(timer);
      app.logger.info({ ms: Date.now() - started }, 'http server closed');
    },
  };
}
