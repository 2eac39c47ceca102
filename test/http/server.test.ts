import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { sql } from 'kysely';
import { createHttpServer, type HttpServer } from '../../src/http/server.js';
import { CLOSE_UNAUTHORIZED } from '../../src/http/ws.js';
import { startTestApp, type TestApp } from '../helpers/app.js';

/** The real HTTP front: a listening server on a free port, spoken to over the network. */
let t: TestApp;
let http: HttpServer;
let url: string;
let key: string;

const MAX_BODY = 64 * 1024;

beforeAll(async () => {
  t = await startTestApp();
  http = createHttpServer({
    app: t.app,
    config: { ...t.config, host: '127.0.0.1', port: 0, maxBodyBytes: MAX_BODY, shutdownGraceMs: 2000 },
    ready: async () => void (await sql`select 1`.execute(t.database.db)),
  });
  await http.listen();
  url = http.url();
  ({ key } = await t.signUp('HTTP'));
});
afterAll(async () => {
  await http.close();
  await t.close();
});

const post = (body: string, headers: Record<string, string> = {}) =>
  fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

function wsClient(apiKey: string | undefined, onClose?: (code: number) => void) {
  return createClient({
    url: url.replace('http', 'ws') + '/graphql',
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: false,
    // The 4401 of a refused key is asserted through `closed`; keep the client quiet.
    onNonLazyError: () => {},
    connectionParams: apiKey ? { authorization: `Bearer ${apiKey}` } : {},
    on: { closed: (event) => onClose?.((event as { code: number }).code) },
  });
}

/** First result of an operation over graphql-ws. */
function wsOnce(client: ReturnType<typeof createClient>, query: string): Promise<any> {
  return new Promise((resolve, reject) => {
    let first: unknown;
    client.subscribe({ query }, { next: (r) => (first ??= r), error: reject, complete: () => resolve(first) });
  });
}

describe('HTTP server', () => {
  it('answers health and readiness', async () => {
    expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: 'ok' });
    expect(await (await fetch(`${url}/readyz`)).json()).toEqual({ status: 'ready' });
    expect((await fetch(`${url}/nope`)).status).toBe(404);
  });

  it('serves signUp over plain HTTP', async () => {
    const response = await post(JSON.stringify({ query: 'mutation { signUp(input: { name: "Over HTTP" }) { secret } }' }));
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(body.data.signUp.secret).toMatch(/^weir_/);
  });

  it('refuses an oversize body with 413 and a typed error, before parsing it', async () => {
    const before = await t.database.db.selectFrom('accounts').select('id').execute();
    const huge = JSON.stringify({ query: `mutation { signUp(input: { name: "${'x'.repeat(MAX_BODY)}" }) { secret } }` });
    const response = await post(huge);
    expect(response.status).toBe(413);
    const body = await response.json();
    expect(body.errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
    expect(await t.database.db.selectFrom('accounts').select('id').execute()).toHaveLength(before.length);
  });

  it('applies the same limits and auth to WebSocket operations', async () => {
    const client = wsClient(key);
    try {
      const viewer = await wsOnce(client, '{ viewer { name } }');
      expect(viewer.data.viewer.name).toBe('HTTP');
      const aliases = await wsOnce(client, `{ ${Array.from({ length: 20 }, (_, i) => `a${i}: viewer { id }`).join(' ')} }`).catch(
        (errors) => ({ errors }),
      );
      expect(JSON.stringify(aliases)).toContain('ALIAS_LIMIT_EXCEEDED');
    } finally {
      await client.dispose();
    }
    // A bad key is refused at connection time (4401, not retried by clients).
    const codes: number[] = [];
    const bad = wsClient(`weir_${'B'.repeat(43)}`, (code) => codes.push(code));
    await wsOnce(bad, '{ viewer { id } }').catch(() => undefined);
    await bad.dispose();
    expect(codes).toContain(CLOSE_UNAUTHORIZED);
  });

  it('closes the WebSocket of a revoked key at once', async () => {
    const created = await post(
      JSON.stringify({ query: 'mutation { createApiKey(input: { name: "ws", role: VIEWER }) { secret apiKey { id } } }' }),
      { authorization: `Bearer ${key}` },
    ).then((r) => r.json());
    const { secret, apiKey } = created.data.createApiKey;
    const closed = new Promise<number>((resolve) => {
      const client = wsClient(secret, resolve);
      client.subscribe({ query: 'subscription { statusChanged { state } }' }, { next: () => {}, error: () => {}, complete: () => {} });
    });
    // Wait until the server holds the subscription, then revoke.
    await expect.poll(() => t.app.services.revocations.size).toBeGreaterThan(0);
    await post(JSON.stringify({ query: `mutation { revokeApiKey(id: "${apiKey.id}") { id } }` }), { authorization: `Bearer ${key}` });
    expect(await closed).toBe(CLOSE_UNAUTHORIZED);
  });

  it('streams subscriptions over Server-Sent Events', async () => {
    const response = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${key}` },
      body: JSON.stringify({ query: 'subscription { statusChanged { state reason } }' }),
    });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    // Produce a transition for this account: the 'none' runtime fails the job with a reason.
    await post(
      JSON.stringify({
        query: `mutation { a: createStream(input: { name: "sse_in", kind: APPEND, fields: [{ name: "id", type: "INT" }] }) { id }
                          b: createStream(input: { name: "sse_out", kind: APPEND, fields: [{ name: "id", type: "INT" }] }) { id } }`,
      }),
      { authorization: `Bearer ${key}` },
    );
    const pipeline = await post(
      JSON.stringify({ query: 'mutation { createPipeline(input: { name: "sse", sql: "INSERT INTO sse_out SELECT id FROM sse_in" }) { id } }' }),
      { authorization: `Bearer ${key}` },
    ).then((r) => r.json());
    await post(JSON.stringify({ query: `mutation { activatePipeline(id: "${pipeline.data.createPipeline.id}") { id } }` }), {
      authorization: `Bearer ${key}`,
    });
    await t.app.reconciler.pass();
    let text = '';
    while (!text.includes('"statusChanged"')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    await reader.cancel();
    expect(text).toContain('"state":"FAILED"');
    expect(text).toContain('WEIR_RUNTIME=none');
  });
});

describe('graceful shutdown', () => {
  it('stops accepting, closes subscriptions with 1001 and drains', async () => {
    const other = await startTestApp();
    const server = createHttpServer({
      app: other.app,
      config: { ...other.config, host: '127.0.0.1', port: 0, maxBodyBytes: MAX_BODY, shutdownGraceMs: 2000 },
      ready: async () => {},
    });
    await server.listen();
    const base = server.url();
    const { key: k } = await other.signUp('Shutdown');
    const closed = new Promise<number>((resolve) => {
      const client = createClient({
        url: base.replace('http', 'ws') + '/graphql',
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        connectionParams: { authorization: `Bearer ${k}` },
        on: { closed: (event) => resolve((event as { code: number }).code) },
      });
      client.subscribe({ query: 'subscription { statusChanged { state } }' }, { next: () => {}, error: () => {}, complete: () => {} });
    });
    await expect.poll(() => server.ws.clients()).toBe(1);
    await server.close();
    expect(await closed).toBe(1001);
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
    await other.close();
  });
});
