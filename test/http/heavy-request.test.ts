import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** The attacker's walk: with 48 pipelines over one stream it answered 9.9 MB in two minutes. */
const NESTED_WALK =
  'query ($id: ID!) { stream(id: $id) { pipelines { inputStreams { pipelines { inputStreams { pipelines { inputStreams { id } } } } } } } }';
/** The deepest walk under the cost limit: 48 × 48 pipelines. */
const ALLOWED_WALK = 'query ($id: ID!) { stream(id: $id) { pipelines { name inputStreams { pipelines { id name } } } } }';
const PIPELINES = 48;

let server: TestServer;
let key: string;
let streamId: string;

async function graphql(query: string, variables: Record<string, unknown> = {}): Promise<{ status: number; body: any; ms: number }> {
  const started = performance.now();
  const response = await fetch(server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  return { status: response.status, body, ms: performance.now() - started };
}

async function probe(path: '/readyz' | '/healthz'): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  const response = await fetch(server.url.replace('/graphql', path));
  await response.text();
  return { status: response.status, ms: performance.now() - started };
}
const readyz = () => probe('/readyz');

/** Runs `heavy` while asking /readyz and /healthz, in turn, over and over; answers both. */
async function whileProbed<T>(heavy: () => Promise<T>): Promise<{ result: T; probes: { status: number; ms: number }[] }> {
  let done = false;
  const running = heavy().finally(() => (done = true));
  const answers: { status: number; ms: number }[] = [];
  // At least four answers, and as many as fit while the heavy request runs.
  while (!done || answers.length < 4) answers.push(await probe(answers.length % 2 ? '/healthz' : '/readyz'));
  return { result: await running, probes: answers };
}

beforeAll(async () => {
  server = await startTestServer();
  ({ key } = await server.testApp.signUp('Heavy'));
  const streams = await graphql(`mutation {
    src: createStream(input: { name: "src", kind: APPEND, fields: [{ name: "id", type: "INT" }] }) { id }
    dst: createStream(input: { name: "dst", kind: APPEND, fields: [{ name: "id", type: "INT" }] }) { id } }`);
  streamId = streams.body.data.src.id;
  for (let i = 0; i < PIPELINES; i++) {
    const created = await graphql(`mutation { createPipeline(input: { name: "p${i}", sql: "INSERT INTO dst SELECT id FROM src" }) { id } }`);
    expect(created.body.errors).toBeUndefined();
  }
  // What is measured is the gateway, not a cold JIT: every path runs once first, with
  // other query texts (yoga caches parse and validation by text, so the measured
  // requests below are parsed, validated and costed afresh).
  for (let i = 0; i < 5; i++) await readyz();
  await graphql(`${NESTED_WALK} # warm-up`, { id: streamId });
  await graphql(`${ALLOWED_WALK} # warm-up`, { id: streamId });
}, 180_000);
afterAll(() => server?.close());

describe(`with ${PIPELINES} pipelines over one stream`, () => {
  it('refuses the nested walk at once, and /readyz and /healthz stay answered', async () => {
    const { result, probes } = await whileProbed(() => graphql(NESTED_WALK, { id: streamId }));
    expect(result.body.errors.map((e: any) => e.extensions.code)).toEqual(['COST_LIMIT_EXCEEDED']);
    expect(result.body.data).toBeUndefined();
    expect(result.ms).toBeLessThan(1000);
    for (const answer of probes) {
      expect(answer.status).toBe(200);
      expect(answer.ms).toBeLessThan(100);
    }
  });

  it('answers the deepest walk the limit allows in under a second', async () => {
    const { result, probes } = await whileProbed(() => graphql(ALLOWED_WALK, { id: streamId }));
    expect(result.body.errors).toBeUndefined();
    const pipelines = result.body.data.stream.pipelines;
    expect(pipelines).toHaveLength(PIPELINES);
    expect(pipelines[0].inputStreams[0].pipelines).toHaveLength(PIPELINES);
    expect(result.ms).toBeLessThan(1000);
    // Its 2,304 pipelines are completed in one synchronous stretch, which a probe can
    // wait behind (170–290 ms on a 2-core machine at load 13–28), but no longer.
    for (const answer of probes) {
      expect(answer.status).toBe(200);
      expect(answer.ms).toBeLessThan(1000);
    }
  });
});
