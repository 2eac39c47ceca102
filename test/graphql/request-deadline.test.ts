import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { codes, startTestApp, type TestApp } from '../helpers/app.js';

const TIMEOUT_MS = 400;

/** A promise and the function that settles it. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

let t: TestApp;
let key: string;
let accountUuid: string;
beforeAll(async () => {
  t = await startTestApp({ config: { requestTimeoutMs: TIMEOUT_MS } });
  ({ key, accountUuid } = await t.signUp('Deadline'));
  await t.gql('mutation { createStream(input: { name: "s", kind: APPEND, fields: [{ name: "id", type: "INT" }] }) { id } }', {}, { key });
});
afterAll(() => t.close());

describe('the request deadline', () => {
  it('is read from WEIR_REQUEST_TIMEOUT_MS, 10 s by default, and validated', () => {
    expect(loadConfig({}).requestTimeoutMs).toBe(30_000);
    expect(loadConfig({ WEIR_REQUEST_TIMEOUT_MS: '2500' }).requestTimeoutMs).toBe(2500);
    expect(() => loadConfig({ WEIR_REQUEST_TIMEOUT_MS: '5' })).toThrow(ConfigError);
    expect(() => loadConfig({ WEIR_REQUEST_TIMEOUT_MS: 'soon' })).toThrow(/WEIR_REQUEST_TIMEOUT_MS/);
  });

  it('cuts a query that runs past it with REQUEST_TIMEOUT, and starts nothing after it', async () => {
    const streams = t.app.services.streams;
    const slow = gate();
    const listed = gate();
    const list = streams.list.bind(streams);
    // A slow database read: the page of streams waits until the test lets it go.
    const listSpy = vi.spyOn(streams, 'list').mockImplementation(async (...args) => {
      await slow.opened;
      try {
        return await list(...args);
      } finally {
        listed.open();
      }
    });
    const pipelinesOf = vi.spyOn(streams, 'pipelinesOf');
    try {
      const started = performance.now();
      const result = await t.gql('{ streams { edges { node { name pipelines { name } } } } }', {}, { key });
      const elapsed = performance.now() - started;

      expect(codes(result)).toEqual(['REQUEST_TIMEOUT']);
      expect(result.errors![0]!.extensions).toMatchObject({ timeoutMs: TIMEOUT_MS });
      expect(result.data ?? null).toBeNull();
      expect(result.status).toBe(200);
      expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
      expect(elapsed).toBeLessThan(TIMEOUT_MS + 1500);

      // The read finishes after the deadline; its rows' relations are never fetched.
      slow.open();
      await listed.opened;
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      expect(listSpy).toHaveBeenCalledTimes(1);
      expect(pipelinesOf).not.toHaveBeenCalled();
    } finally {
      slow.open();
      vi.restoreAllMocks();
    }
  });

  it('leaves fast operations and later requests alone', async () => {
    const result = await t.gql('{ streams { edges { node { name pipelines { name } } } } }', {}, { key });
    expect(result.errors).toBeUndefined();
    expect(result.data!.streams.edges[0].node.name).toBe('s');
  });

  it('does not cut subscriptions', async () => {
    const response = await t.app.yoga.fetch(
      new Request('http://weir.test/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${key}` },
        body: JSON.stringify({ query: 'subscription { statusChanged { state reason } }' }),
      }),
      { clientAddress: '10.9.9.9' },
    );
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    try {
      // Well past the deadline, the subscription still delivers.
      const opened = performance.now();
      await vi.waitFor(() => expect(performance.now() - opened).toBeGreaterThan(2 * TIMEOUT_MS), { timeout: 10 * TIMEOUT_MS });
      t.app.services.statusEvents.publish({
        accountId: accountUuid,
        kind: 'PIPELINE',
        jobId: '01900000-0000-7000-8000-000000000000',
        desiredState: 'ACTIVE',
        state: 'RUNNING',
        reason: 'still here',
        at: new Date(),
      });
      let text = '';
      while (!text.includes('statusChanged')) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
      }
      expect(text).toContain('still here');
      expect(text).not.toContain('REQUEST_TIMEOUT');
    } finally {
      await reader.cancel();
    }
  });
});
