import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeId } from '../../src/graphql/global-id.js';
import { MINUTE } from '../../src/platform/time.js';
import { startLocalApp, type LocalTestApp } from '../helpers/local.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * A job on the real local runtime that dies on every start ends FAILED after its restart
 * budget instead of looping. The death is the local runtime's own verdict: a job process
 * that has not submitted its job within the start limit (here 1.5 s, far too short for a
 * Flink JVM to get there) is reported hung (RECOVERING), and the reconciler removes it and
 * restarts it.
 */
let t: LocalTestApp;
let key: string;

async function ok(query: string, variables: Record<string, unknown> = {}) {
  const result = await t.gql(query, variables, { key });
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  return result.data!;
}

beforeAll(async () => {
  t = await startLocalApp({
    limits: { jobStartTimeoutMs: 1500 },
    config: { jobMaxRestarts: 2, jobRestartWindowMs: MINUTE },
  });
  ({ key } = await t.signUp('Crash loop'));
}, 600_000);
afterAll(() => t?.close(), 120_000);

describe('a job that dies on every start', () => {
  it('ends FAILED after the configured restarts, with the count in its history, and the runtime holds nothing', async () => {
    const stream = await ok('mutation { createStream(input: { name: "loop", kind: APPEND, fields: [{ name: "id", type: "BIGINT" }] }) { id } }');
    const created = await ok('mutation ($input: CreateConnectionInput!) { createConnection(input: $input) { id } }', {
      input: { name: 'loop_gen', connector: 'datagen', type: 'SOURCE', streamId: stream.createStream.id, properties: {} },
    });
    const id = created.createConnection.id as string;
    const uuid = decodeId(id, 'Connection');
    const started = Date.now();
    await ok('mutation ($id: ID!) { activateConnection(id: $id) { id } }', { id });

    const failed = await waitFor('the connection FAILED', async () => {
      const data = await ok('query ($id: ID!) { connection(id: $id) { actualState actualReason history(first: 50) { edges { node { state reason at } } } } }', { id });
      return data.connection.actualState === 'FAILED' ? data.connection : undefined;
    }, 180_000);
    const elapsedMs = Date.now() - started;

    expect(failed.actualReason).toMatch(/^Restarted 2 times in 1 minute; last cause: The job process did not start within 1.5 s/);
    const history = failed.history.edges.map((e: any) => e.node as { state: string; reason: string | null; at: string });
    const states = history.map((h: { state: string }) => h.state);
    expect(states[0]).toBe('STARTING');
    expect(states.at(-1)).toBe('FAILED');
    expect(states.filter((s: string) => s === 'FAILED')).toHaveLength(1);
    // Three deaths: each the runtime's kill, the first two followed by the reconciler's restart.
    const kills = history.filter((h: { reason: string | null }) => h.reason?.startsWith('The job process did not start'));
    const restarts = history.filter((h: { reason: string | null }) => /restart \d of 2/.test(h.reason ?? ''));
    expect(kills).toHaveLength(3);
    expect(restarts.map((h: { reason: string | null }) => /restart (\d)/.exec(h.reason!)![1])).toEqual(['1', '2']);
    // The second restart backed off (0.5–1 s after the death was noticed), the first did not.
    expect(restarts[1]!.reason).toMatch(/in (0\.\d|1(\.0)?) s/);
    console.log(`crash loop: FAILED after ${elapsedMs} ms; ${history.map((h: any) => `${h.state}@${Date.parse(h.at) - started}`).join(' ')}`);

    // It stays FAILED and holds no process, pass after pass.
    expect((await t.runtime.pids()).get(uuid)).toBeUndefined();
    await t.app.reconciler.pass();
    await t.app.reconciler.pass();
    expect((await t.runtime.pids()).get(uuid)).toBeUndefined();
    const after = await ok('query ($id: ID!) { connection(id: $id) { actualState history(first: 50) { edges { node { state } } } } }', { id });
    expect(after.connection.actualState).toBe('FAILED');
    expect(after.connection.history.edges).toHaveLength(history.length);

    await ok('mutation ($id: ID!) { deactivateConnection(id: $id) { id } }', { id });
    await waitFor('the connection STOPPED', async () => {
      const data = await ok('query ($id: ID!) { connection(id: $id) { actualState } }', { id });
      return data.connection.actualState === 'STOPPED' ? true : undefined;
    }, 90_000);
  }, 300_000);
});
