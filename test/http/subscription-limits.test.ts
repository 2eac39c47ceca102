import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { FormattedExecutionResult } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { sql } from 'kysely';
import { createHttpServer, type HttpServer } from '../../src/http/server.js';
import { CLOSE_IDLE, CLOSE_TOO_MANY_SOCKETS } from '../../src/http/ws.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Bounded subscriptions against a real server: per API key and per account (the tier's
 * limits, made small here), over WebSocket and SSE together; sockets per key; idle sockets.
 */
const PER_KEY = 3;
const PER_ACCOUNT = 4;
const SOCKETS_PER_KEY = 2;
const IDLE_MS = 300;

const STATUS = 'subscription { statusChanged { state } }';

let s: TestServer;
/** A second front on the same gateway with a small socket cap and idle timeout. */
let tight: HttpServer;

beforeAll(async () => {
  s = await startTestServer();
  await s.testApp.database.db
    .updateTable('tiers')
    .set({ max_subscriptions_per_key: PER_KEY, max_subscriptions_per_account: PER_ACCOUNT })
    .where('name', '=', 'FREE')
    .execute();
  tight = createHttpServer({
    app: s.app,
    config: { ...s.testApp.config, host: '127.0.0.1', port: 0, wsMaxSocketsPerKey: SOCKETS_PER_KEY, wsIdleTimeoutMs: IDLE_MS },
    ready: async () => void (await sql`select 1`.execute(s.testApp.database.db)),
  });
  await tight.listen();
});

const clients: Client[] = [];
const aborts: AbortController[] = [];
afterAll(async () => {
  for (const abort of aborts) abort.abort();
  await Promise.all(clients.map((client) => client.dispose()));
  await tight?.close();
  await s?.close();
});

type Closed = { code: number; reason: string };

/** Waits for a condition; generous, for a loaded machine (the default is 1 s). */
const WAIT = { timeout: 10_000 };

/**
 * A graphql-ws client that connects at once; `connected` and `closed` settle with its
 * first socket, `closes` lists every close (the client reconnects after some).
 */
function ws(key: string, base = s.url) {
  let onConnected!: () => void;
  let onClosed!: (event: Closed) => void;
  const connected = new Promise<void>((resolve) => (onConnected = resolve));
  const closed = new Promise<Closed>((resolve) => (onClosed = resolve));
  const closes: Closed[] = [];
  const client = createClient({
    url: base.replace('http', 'ws'),
    webSocketImpl: WebSocket,
    lazy: false,
    retryAttempts: 0,
    onNonLazyError: () => {},
    connectionParams: { authorization: `Bearer ${key}` },
    on: {
      connected: () => onConnected(),
      closed: (event) => {
        const close = { code: (event as Closed).code, reason: String((event as Closed).reason) };
        closes.push(close);
        onClosed(close);
      },
    },
  });
  clients.push(client);
  return { client, connected, closed, closes };
}

/** One operation over graphql-ws: its results so far, when it ends, and how to end it. */
function subscribe(client: Client, query: string) {
  const results: FormattedExecutionResult<Record<string, unknown>, unknown>[] = [];
  let dispose!: () => void;
  const ended = new Promise<void>((resolve, reject) => {
    dispose = client.subscribe({ query }, { next: (r) => void results.push(r), error: reject, complete: resolve });
  });
  ended.catch(() => {});
  return { results, ended, dispose };
}

/** A subscription over SSE on the real port; the response is back once the server holds it. */
async function sse(key: string, query: string) {
  const abort = new AbortController();
  aborts.push(abort);
  const response = await fetch(s.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${key}` },
    body: JSON.stringify({ query }),
    signal: abort.signal,
  });
  return { response, close: () => abort.abort() };
}

async function newKey(adminKey: string, role = 'VIEWER'): Promise<{ secret: string; id: string }> {
  const result = await s.testApp.gql<{ createApiKey: { secret: string; apiKey: { id: string } } }>(
    `mutation { createApiKey(input: { name: "second", role: ${role} }) { secret apiKey { id } } }`,
    {},
    { key: adminKey },
  );
  return { secret: result.data!.createApiKey.secret, id: result.data!.createApiKey.apiKey.id };
}

const codesOf = (result: FormattedExecutionResult<Record<string, unknown>, unknown>): unknown[] => (result.errors ?? []).map((e) => e.extensions?.code);

const open = (accountUuid: string) => s.app.services.subscriptions.openForAccount(accountUuid);

describe('subscription limits', () => {
  it('refuses the subscription beyond the per-key limit, keeps the socket, and frees a slot when one ends', async () => {
    const { key, accountUuid } = await s.testApp.signUp('Per key');
    const { client, connected } = ws(key);
    await connected;
    const held = Array.from({ length: PER_KEY }, () => subscribe(client, STATUS));
    await expect.poll(() => open(accountUuid), WAIT).toBe(PER_KEY);

    const refused = subscribe(client, STATUS);
    await expect.poll(() => refused.results.length, WAIT).toBe(1);
    expect(codesOf(refused.results[0]!)).toEqual(['SUBSCRIPTION_LIMIT_EXCEEDED']);
    expect(refused.results[0]!.errors![0]!.extensions).toMatchObject({ scope: 'key', limit: PER_KEY });

    // Nothing else on the socket broke: the held ones stay, a query answers.
    const viewer = subscribe(client, '{ viewer { name } }');
    await viewer.ended;
    expect(viewer.results[0]!.data).toEqual({ viewer: { name: 'Per key' } });
    expect(open(accountUuid)).toBe(PER_KEY);

    held[0]!.dispose();
    await expect.poll(() => open(accountUuid), WAIT).toBe(PER_KEY - 1);
    const again = subscribe(client, STATUS);
    await expect.poll(() => open(accountUuid), WAIT).toBe(PER_KEY);
    expect(again.results).toEqual([]);

    // Closing the socket frees every slot it held.
    await client.dispose();
    await expect.poll(() => open(accountUuid), WAIT).toBe(0);
  });

  it('counts every kind of subscription, and frees the slot of one its resolver refused', async () => {
    const { key, accountUuid } = await s.testApp.signUp('Kinds');
    const { client, connected } = ws(key);
    await connected;
    // Refused by the resolver (no preview backend, unknown id): the slot is back at once.
    const preview = subscribe(client, 'subscription { preview(input: { sql: "SELECT 1" }) { __typename } }');
    await preview.ended;
    expect(codesOf(preview.results[0]!)).toEqual(['UNAVAILABLE']);
    const unknown = subscribe(client, 'subscription { statusChanged(id: "nope") { state } }');
    await unknown.ended;
    expect(codesOf(unknown.results[0]!)).toEqual(['NOT_FOUND']);
    expect(open(accountUuid)).toBe(0);
    // The limits unreadable (say the database is down): that subscription fails, masked; the socket stays.
    vi.spyOn(s.app.services.subscriptions, 'take').mockRejectedValueOnce(new Error('database unavailable'));
    const failed = subscribe(client, STATUS);
    await failed.ended;
    expect(codesOf(failed.results[0]!)).toEqual(['INTERNAL_SERVER_ERROR']);

    Array.from({ length: PER_KEY }, () => subscribe(client, STATUS));
    await expect.poll(() => open(accountUuid), WAIT).toBe(PER_KEY);
    // At the limit a preview is refused for the limit, before its resolver runs.
    const over = subscribe(client, 'subscription { preview(input: { sql: "SELECT 1" }) { __typename } }');
    await over.ended;
    expect(codesOf(over.results[0]!)).toEqual(['SUBSCRIPTION_LIMIT_EXCEEDED']);
    await client.dispose();
  });

  it('bounds the account across its keys, and a revoked key gives its slots back', async () => {
    const { key, accountUuid } = await s.testApp.signUp('Per account');
    const second = await newKey(key);
    const a = ws(key);
    const b = ws(second.secret);
    await Promise.all([a.connected, b.connected]);
    Array.from({ length: PER_KEY }, () => subscribe(a.client, STATUS));
    subscribe(b.client, STATUS);
    await expect.poll(() => open(accountUuid), WAIT).toBe(PER_ACCOUNT);

    const refused = subscribe(b.client, STATUS);
    await expect.poll(() => refused.results.length, WAIT).toBe(1);
    expect(refused.results[0]!.errors![0]!.extensions).toMatchObject({
      code: 'SUBSCRIPTION_LIMIT_EXCEEDED',
      scope: 'account',
      limit: PER_ACCOUNT,
    });

    await s.testApp.gql(`mutation { revokeApiKey(id: "${second.id}") { id } }`, {}, { key });
    expect((await b.closed).code).toBe(4401);
    await expect.poll(() => open(accountUuid), WAIT).toBe(PER_KEY);
    await a.client.dispose();
  });

  it('counts SSE and WebSocket subscriptions together', async () => {
    const { key, accountUuid } = await s.testApp.signUp('SSE');
    const { client, connected } = ws(key);
    await connected;
    subscribe(client, STATUS);
    subscribe(client, STATUS);
    const first = await sse(key, STATUS);
    expect(first.response.headers.get('content-type')).toContain('text/event-stream');
    await expect.poll(() => open(accountUuid), WAIT).toBe(PER_KEY);

    const refused = await sse(key, STATUS);
    const text = await refused.response.text();
    expect(text).toContain('"SUBSCRIPTION_LIMIT_EXCEEDED"');
    expect(text).toContain('"scope":"key"');
    const overWs = subscribe(client, STATUS);
    await expect.poll(() => overWs.results.length, WAIT).toBe(1);
    expect(codesOf(overWs.results[0]!)).toEqual(['SUBSCRIPTION_LIMIT_EXCEEDED']);

    // The client going away ends the SSE subscription and frees its slot.
    first.close();
    await expect.poll(() => open(accountUuid), WAIT).toBe(PER_KEY - 1);
    const again = await sse(key, STATUS);
    await expect.poll(() => open(accountUuid), WAIT).toBe(PER_KEY);
    again.close();
    await client.dispose();
    await expect.poll(() => open(accountUuid), WAIT).toBe(0);
  });
});

describe('WebSocket bounds', () => {
  it('refuses a socket beyond the per-key cap with 1013, and takes one once another closed', async () => {
    const { key } = await s.testApp.signUp('Sockets');
    const base = `${tight.url()}/graphql`;
    const first = ws(key, base);
    const second = ws(key, base);
    await Promise.all([first.connected, second.connected]);
    // Keep them busy so the idle timeout of this front does not close them.
    subscribe(first.client, STATUS);
    subscribe(second.client, STATUS);

    const third = ws(key, base);
    const closed = await third.closed;
    expect(closed.code).toBe(CLOSE_TOO_MANY_SOCKETS);
    expect(closed.reason).toContain(`at most ${SOCKETS_PER_KEY}`);

    await first.client.dispose();
    await expect.poll(() => tight.ws.clients(), WAIT).toBe(1);
    const fourth = ws(key, base);
    await fourth.connected;
    await Promise.all([second.client.dispose(), fourth.client.dispose()]);
  });

  it('closes a socket with no subscription after the idle timeout, and not one that has one', async () => {
    const { key, accountUuid } = await s.testApp.signUp('Idle');
    const base = `${tight.url()}/graphql`;
    const busy = ws(key, base);
    await busy.connected;
    const held = subscribe(busy.client, STATUS);
    await expect.poll(() => open(accountUuid), WAIT).toBe(1);

    // Connected after the busy one: had the busy one no protection, it would close first.
    const idle = ws(key, base);
    await idle.connected;
    const closed = await idle.closed;
    expect(closed).toEqual({ code: CLOSE_IDLE, reason: `Idle: no subscription for ${IDLE_MS} ms` });

    // Still its first socket (a graphql-ws client would reconnect after a 1000 and hide it).
    expect(busy.closes).toEqual([]);
    const viewer = subscribe(busy.client, '{ viewer { name } }');
    await viewer.ended;
    expect(viewer.results[0]!.data).toEqual({ viewer: { name: 'Idle' } });
    expect(busy.closes).toEqual([]);

    // Its last subscription ended, the busy socket is idle too.
    held.dispose();
    expect((await busy.closed).code).toBe(CLOSE_IDLE);
    await expect.poll(() => open(accountUuid), WAIT).toBe(0);
  });

  it('closes a socket that never sends connection_init (graphql-ws, 4408)', async () => {
    const socket = new WebSocket(`${tight.url().replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
    const code = await new Promise<number>((resolve) => socket.on('close', (c) => resolve(c)));
    expect(code).toBe(4408);
  });
});
