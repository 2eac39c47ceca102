import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { decodeId } from '../../../src/graphql/global-id.js';
import { processesOfScope } from '../../../src/runtime/local/processes.js';
import { jobApi, reasonsOf } from '../../helpers/job-api.js';
import { startLocalApp, type LocalTestApp } from '../../helpers/local.js';
import { waitFor } from '../../helpers/wait-for.js';

/**
 * A job's life with state, against real Flink and Kafka: where a first activation starts
 * reading, a deactivation that stops with a savepoint and an activation that resumes from
 * it, and restore NONE starting over.
 */
let t: LocalTestApp;
let key: string;
const api = jobApi(() => t, () => key);

beforeAll(async () => {
  t = await startLocalApp();
}, 600_000);

beforeEach(async () => {
  ({ key } = await t.signUp('Lifecycle'));
});

afterAll(async () => {
  await t?.close();
  expect(await processesOfScope(join(t.dataDir, 'local'))).toEqual([]);
}, 120_000);

const SLOW = 420_000;
const ACTIVATE = `mutation ($id: ID!, $restore: RestoreMode, $startFrom: [StartPositionInput!]) {
  activatePipeline(id: $id, restore: $restore, startFrom: $startFrom) { stateGeneration startPositions { stream from offset timestamp } }
}`;
const activate = (id: string, variables: Record<string, unknown> = {}) => api.ok(ACTIVATE, { id, ...variables }).then((d) => d.activatePipeline);
const deactivate = (id: string) => api.ok('mutation ($id: ID!) { deactivatePipeline(id: $id) { id } }', { id });

/** Deactivates a pipeline and waits until it is STOPPED; returns its state then. */
async function stop(id: string) {
  await deactivate(id);
  return api.until('pipeline', id, 'STOPPED', 120_000);
}

/** The savepoints a job's current generation holds on disk. */
async function savepointsOf(pipelineId: string, generation: number): Promise<string[]> {
  const dir = join(t.dataDir, 'local', 'jobs', decodeId(pipelineId, 'Pipeline'), 'state', `g${generation}`, 'savepoints');
  return (await readdir(dir)).filter((name) => name.startsWith('savepoint-'));
}

/** Waits until a stream holds exactly `count` records (and fails if it ever holds more). */
async function recordsReach(streamId: string, count: number, what: string) {
  return waitFor(
    what,
    async () => {
      const values = await api.records(streamId, count + 100);
      if (values.length > count) throw new Error(`${values.length} records, more than ${count}`);
      return values.length === count ? values : undefined;
    },
    180_000,
  );
}

/** Waits until the clock has moved past `ms`, so that the next record gets a later timestamp. */
const clockPast = (ms: number) => waitFor('the clock to tick', () => Date.now() > ms, 1_000, 1);

const ids = (values: Record<string, any>[]) => values.map((v) => Number(v.id)).sort((a, b) => a - b);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('job lifecycle (local runtime)', () => {
  it('starts a pipeline from EARLIEST, LATEST and a timestamp: 100, 0 then only new ones, 60', async () => {
    const events = await api.stream('events', [{ name: 'id', type: 'BIGINT' }]);
    const copied = await api.stream('copied', [{ name: 'id', type: 'BIGINT' }]);
    await api.publish(events, range(1, 40).map((id) => ({ id })));
    await clockPast(Date.now());
    const between = new Date(Date.now());
    await clockPast(between.getTime());
    await api.publish(events, range(41, 100).map((id) => ({ id })));
    const copy = await api.pipeline('copy', 'INSERT INTO copied SELECT id FROM events', { checkpointIntervalMs: 1000 });

    // A first activation reads from EARLIEST by default.
    expect(await activate(copy)).toEqual({ stateGeneration: 1, startPositions: [] });
    expect(ids(await recordsReach(copied, 100, '100 copied'))).toEqual(range(1, 100));
    const stopped = await stop(copy);
    expect(reasonsOf(stopped).at(-1), JSON.stringify(stopped.history)).toBeNull(); // stopped with its savepoint
    expect(await savepointsOf(copy, 1)).toHaveLength(1);

    // LATEST: where the stream ends now; nothing old is read, only what follows.
    const latest = await activate(copy, { restore: 'NONE', startFrom: [{ from: 'LATEST' }] });
    expect(latest).toEqual({ stateGeneration: 2, startPositions: [{ stream: events, from: 'LATEST', offset: '100', timestamp: null }] });
    await api.until('pipeline', copy, 'RUNNING', 180_000);
    await api.publish(events, range(101, 105).map((id) => ({ id })));
    expect(ids(await recordsReach(copied, 105, '5 new copied'))).toEqual(range(1, 105));
    await stop(copy);
    // The first generation's state is gone with it.
    await expect(savepointsOf(copy, 1)).rejects.toThrow(/ENOENT/);

    // A timestamp between records 40 and 41: 41 to 105 again (60 of the first 100, and the 5 new).
    const fromTimestamp = await activate(copy, { restore: 'NONE', startFrom: [{ stream: events, from: 'TIMESTAMP', timestamp: between.toISOString() }] });
    expect(fromTimestamp.startPositions).toEqual([{ stream: events, from: 'TIMESTAMP', offset: null, timestamp: between.toISOString() }]);
    expect(ids(await recordsReach(copied, 170, '65 copied from the timestamp'))).toEqual([...range(1, 105), ...range(41, 105)].sort((a, b) => a - b));
    await stop(copy);
  }, SLOW);

  it('resumes a GROUP BY from its savepoint after a deactivation, and restore NONE starts it over', async () => {
    const clicks = await api.stream('clicks', [{ name: 'id', type: 'BIGINT' }, { name: 'k', type: 'INT', nullable: false }]);
    const counts = await api.stream('counts', [{ name: 'k', type: 'INT' }, { name: 'n', type: 'BIGINT' }], 'CHANGE', ['k']);
    const counter = await api.pipeline('counter', 'INSERT INTO counts SELECT k, COUNT(*) AS n FROM clicks GROUP BY k', { checkpointIntervalMs: 1000 });
    const click = (from: number, to: number) => range(from, to).map((id) => ({ id, k: id % 3 }));
    /** The latest count of each key, once every key has reached `n`. */
    const countsReach = (n: number) =>
      waitFor(`counts of ${n}`, async () => {
        const log = await api.records(counts, 1000);
        const latest = new Map(log.map((v) => [Number(v.k), Number(v.n)]));
        return [0, 1, 2].every((k) => latest.get(k) === n) ? log : undefined;
      }, 180_000);

    await api.publish(clicks, click(1, 30));
    await activate(counter);
    await countsReach(10);
    const stopped = await stop(counter);
    expect(reasonsOf(stopped).at(-1)).toBeNull();
    expect(await savepointsOf(counter, 1)).toHaveLength(1);

    // Stopped, more clicks arrive; resumed (restore LATEST, the default), it counts on.
    await api.publish(clicks, click(31, 60));
    await activate(counter);
    const log = await countsReach(20);
    // Nothing counted twice, nothing lost: every key's count only ever rose, one at a time.
    for (const k of [0, 1, 2]) {
      const ofKey = log.filter((v) => Number(v.k) === k).map((v) => Number(v.n));
      expect(ofKey.every((n, i) => i === 0 || n > ofKey[i - 1]!), `counts of ${k}: ${ofKey.join(',')}`).toBe(true);
      expect(ofKey.at(-1)).toBe(20);
    }

    // A new task count redeploys the active job from a savepoint: it rescales and counts on.
    await api.ok('mutation ($id: ID!) { updatePipeline(id: $id, input: { taskCount: 2 }) { id } }', { id: counter });
    await waitFor('the job redeployed at 2 tasks', async () => {
      const processes = await t.runtime.pids();
      const s = await api.jobState('pipeline', counter);
      return s.actualState === 'RUNNING' && reasonsOf(s).includes('Redeploying a changed spec.') && processes.get(decodeId(counter, 'Pipeline'))?.length === 1;
    }, 180_000);
    await api.publish(clicks, click(61, 90));
    const rescaled = await countsReach(30);
    for (const k of [0, 1, 2]) {
      const ofKey = rescaled.filter((v) => Number(v.k) === k).map((v) => Number(v.n));
      expect(ofKey.every((n, i) => i === 0 || n > ofKey[i - 1]!), `counts of ${k} after rescaling: ${ofKey.join(',')}`).toBe(true);
    }
    await stop(counter);

    // restore NONE with startFrom LATEST: the counts start again from what is new.
    await activate(counter, { restore: 'NONE', startFrom: [{ from: 'LATEST' }] });
    await api.until('pipeline', counter, 'RUNNING', 180_000);
    await api.publish(clicks, click(91, 93));
    await countsReach(1);
    await stop(counter);
  }, SLOW);

  it('stops a job whose savepoint fails anyway, saying so in its history, and it resumes from its checkpoint', async () => {
    const input = await api.stream('input', [{ name: 'id', type: 'BIGINT' }]);
    const output = await api.stream('output', [{ name: 'id', type: 'BIGINT' }]);
    const copy = await api.pipeline('copy', 'INSERT INTO output SELECT id FROM input', { checkpointIntervalMs: 1000 });
    await api.publish(input, range(1, 10).map((id) => ({ id })));
    await activate(copy);
    await recordsReach(output, 10, '10 copied');
    // The savepoint folder becomes a file: Flink cannot write a savepoint there.
    const savepoints = join(t.dataDir, 'local', 'jobs', decodeId(copy, 'Pipeline'), 'state', 'g1', 'savepoints');
    await rm(savepoints, { recursive: true, force: true });
    await writeFile(savepoints, 'not a folder');
    const stopped = await stop(copy);
    expect(stopped.actualReason).toMatch(/^Stopped without a savepoint: the savepoint failed: .+; it resumes from its latest checkpoint\.$/);
    expect(reasonsOf(stopped).at(-1)).toBe(stopped.actualReason);
    expect((await t.runtime.pids()).has(decodeId(copy, 'Pipeline'))).toBe(false);

    // Its checkpoints carry it on: nothing is copied twice.
    await rm(savepoints, { force: true });
    await api.publish(input, range(11, 15).map((id) => ({ id })));
    await activate(copy);
    expect(ids(await recordsReach(output, 15, '5 more copied'))).toEqual(range(1, 15));
    await stop(copy);
  }, SLOW);
});
