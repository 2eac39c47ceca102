import { readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { decodeId } from '../../../src/graphql/global-id.js';
import { pathOf, sizeOf } from '../../../src/runtime/local/state-files.js';
import { processesOfScope } from '../../../src/runtime/local/processes.js';
import { startTestApp } from '../../helpers/app.js';
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

const jobDirOf = (pipelineId: string) => join(t.dataDir, 'local', 'jobs', decodeId(pipelineId, 'Pipeline'));

/** The savepoints a job's generation holds on disk. */
async function savepointsOf(pipelineId: string, generation: number): Promise<string[]> {
  return (await readdir(join(jobDirOf(pipelineId), 'savepoints', `g${generation}`))).filter((name) => name.startsWith('savepoint-'));
}

const SNAPSHOTS = `query ($id: ID!) { pipeline(id: $id) { snapshots { id trigger sizeBytes stateGeneration specVersion pinned } } }`;
interface SnapshotView {
  readonly id: string;
  readonly trigger: string;
  readonly sizeBytes: number;
  readonly stateGeneration: number;
  readonly specVersion: number;
  readonly pinned: boolean;
}
const snapshotsOf = (id: string): Promise<SnapshotView[]> => api.ok(SNAPSHOTS, { id }).then((d) => d.pipeline.snapshots);
const takeSnapshot = (id: string): Promise<SnapshotView> =>
  api.ok(`mutation ($id: ID!) { snapshotPipeline(id: $id) { id trigger sizeBytes stateGeneration specVersion pinned } }`, { id }).then((d) => d.snapshotPipeline);
/** Where the runtime keeps a snapshot's files (the database knows; the API does not say). */
async function locationOf(snapshotId: string): Promise<string> {
  const row = await t.database.db.selectFrom('job_snapshots').select('location').where('id', '=', decodeId(snapshotId, 'Snapshot')).executeTakeFirstOrThrow();
  return pathOf(row.location);
}
const exists = (path: string) => stat(path).then(() => true, () => false);

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

/** An active pipeline `copy` from `input` to `output`, once it has copied ids 1 to 10. */
async function copyingTen() {
  const input = await api.stream('input', [{ name: 'id', type: 'BIGINT' }]);
  const output = await api.stream('output', [{ name: 'id', type: 'BIGINT' }]);
  const copy = await api.pipeline('copy', 'INSERT INTO output SELECT id FROM input', { checkpointIntervalMs: 1000 });
  await api.publish(input, range(1, 10).map((id) => ({ id })));
  await activate(copy);
  await recordsReach(output, 10, '10 copied');
  return { input, output, copy };
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
    // The first generation's checkpoints are gone with it; its savepoint is a snapshot, kept.
    await expect(readdir(join(jobDirOf(copy), 'state', 'g1'))).rejects.toThrow(/ENOENT/);
    expect(await savepointsOf(copy, 1)).toHaveLength(1);
    expect((await snapshotsOf(copy)).map((s) => [s.trigger, s.stateGeneration])).toEqual([['DEACTIVATION', 2], ['DEACTIVATION', 1]]);

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
    const { input, output, copy } = await copyingTen();
    // The savepoint folder becomes a file: Flink cannot write a savepoint there.
    const savepoints = join(jobDirOf(copy), 'savepoints', 'g1');
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
    expect(await snapshotsOf(copy)).toHaveLength(1); // the second stop's; the failed one left none
  }, SLOW);

  it('keeps snapshots on demand and at deactivation with real sizes, drops old ones with their files, restores a chosen one', async () => {
    const { input, output, copy } = await copyingTen();
    await api.until('pipeline', copy, 'RUNNING');

    // The first, pinned, outlives the retention; of the rest, the newest 5 stay.
    const first = await takeSnapshot(copy);
    expect(first).toMatchObject({ trigger: 'ON_DEMAND', stateGeneration: 1, specVersion: 1, pinned: false });
    expect(first.sizeBytes).toBeGreaterThan(0);
    expect(first.sizeBytes).toBe(await sizeOf(await locationOf(first.id)));
    await api.ok('mutation ($id: ID!) { pinSnapshot(id: $id, pinned: true) { pinned } }', { id: first.id });
    const taken: SnapshotView[] = [];
    for (let i = 0; i < 6; i++) taken.push(await takeSnapshot(copy));
    const dropped = taken[0]!;
    const listed = await snapshotsOf(copy);
    expect(listed.map((s) => s.id)).toEqual([...taken.slice(1).map((s) => s.id).reverse(), first.id]);
    expect(listed.at(-1)!.pinned).toBe(true);
    for (const s of listed) expect(s.sizeBytes).toBe(await sizeOf(await locationOf(s.id)));
    // The dropped one's row and files are gone; the job runs on.
    expect(await savepointsOf(copy, 1)).toHaveLength(6);
    const dropGone = await t.gql('query ($id: ID!) { node(id: $id) { id } }', { id: dropped.id }, { key });
    expect(dropGone.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await api.jobState('pipeline', copy)).actualState).toBe('RUNNING');

    // Deactivated, it stops with a savepoint of its own: one more, one more dropped.
    await api.publish(input, range(11, 15).map((id) => ({ id })));
    await recordsReach(output, 15, '15 copied');
    await stop(copy);
    const afterStop = await snapshotsOf(copy);
    expect(afterStop[0]).toMatchObject({ trigger: 'DEACTIVATION', stateGeneration: 1 });
    expect(afterStop).toHaveLength(6);
    expect(await savepointsOf(copy, 1)).toHaveLength(6);

    // Another gateway over the same database lists them the same.
    const second = await startTestApp({ database: t.database });
    try {
      const again = await second.gql(SNAPSHOTS, { id: copy }, { key });
      expect(again.data?.pipeline.snapshots).toEqual(afterStop);
    } finally {
      await second.close();
    }

    // Only this pipeline's own snapshots restore it: another pipeline's, another account's are not found.
    const other = await api.pipeline('other', 'INSERT INTO output SELECT id FROM input');
    const refused = await t.gql(ACTIVATE_FROM, { id: other, snapshot: first.id }, { key });
    expect(refused.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const stranger = await t.signUp('Stranger');
    const theirs = await t.gql('query ($id: ID!) { node(id: $id) { id } }', { id: first.id }, { key: stranger.key });
    expect(theirs.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const both = await t.gql(ACTIVATE_FROM.replace('fromSnapshot', 'restore: NONE, fromSnapshot'), { id: copy, snapshot: first.id }, { key });
    expect(both.errors?.[0]?.extensions?.code).toBe('VALIDATION');
    expect((await api.jobState('pipeline', copy)).actualState).toBe('STOPPED');

    // From the first snapshot (taken after 10 records): a new generation re-reads 11 to 15.
    expect((await t.gql(ACTIVATE_FROM, { id: copy, snapshot: first.id }, { key })).data?.activatePipeline).toEqual({ stateGeneration: 2 });
    expect(ids(await recordsReach(output, 20, '11 to 15 again'))).toEqual([...range(1, 15), ...range(11, 15)].sort((a, b) => a - b));
    await stop(copy);

    // Deleted, the pipeline takes its snapshots along: rows and files.
    await api.ok('mutation ($id: ID!) { deletePipeline(id: $id) { deletedId } }', { id: copy });
    const rows = await t.database.db.selectFrom('job_snapshots').select('id').where('job_id', '=', decodeId(copy, 'Pipeline')).execute();
    expect(rows).toEqual([]);
    await waitFor('the job folder gone', async () => !(await exists(jobDirOf(copy))), 30_000);
  }, SLOW);
});

const ACTIVATE_FROM = `mutation ($id: ID!, $snapshot: ID!) { activatePipeline(id: $id, fromSnapshot: $snapshot) { stateGeneration } }`;
