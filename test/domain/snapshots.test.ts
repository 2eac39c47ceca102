import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { decodeId } from '../../src/graphql/global-id.js';
import { MAX_PINNED_SNAPSHOTS, SNAPSHOT_RETENTION } from '../../src/jobs/snapshot.service.js';
import { codes, startTestApp, type TestApp } from '../helpers/app.js';
import { InMemoryRuntime } from '../helpers/in-memory-runtime.js';
import { describeDatabases } from '../helpers/postgres.js';

/**
 * Snapshots as the API checks, records and drops them, over a runtime that holds jobs in
 * memory (real savepoints, sizes and files: test/runtime/local/job-lifecycle.test.ts).
 */
let t: TestApp;
let runtime: InMemoryRuntime;
let key: string;

async function ok(query: string, variables: Record<string, unknown> = {}) {
  const result = await t.gql(query, variables, { key });
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  return result.data!;
}

const FIELDS = 'id trigger sizeBytes stateGeneration specVersion pinned';
const take = (id: string) => t.gql(`mutation ($id: ID!) { snapshotPipeline(id: $id) { ${FIELDS} } }`, { id }, { key });
const taken = async (id: string) => (await ok(`mutation ($id: ID!) { snapshotPipeline(id: $id) { ${FIELDS} } }`, { id })).snapshotPipeline;
const listed = async (id: string) => (await ok(`query ($id: ID!) { pipeline(id: $id) { snapshots { ${FIELDS} } } }`, { id })).pipeline.snapshots;
const pin = (id: string, pinned = true) => t.gql('mutation ($id: ID!, $p: Boolean!) { pinSnapshot(id: $id, pinned: $p) { id pinned } }', { id, p: pinned }, { key });
const activateFrom = (id: string, snapshot: string, extra = '') =>
  t.gql(`mutation ($id: ID!, $s: ID!) { activatePipeline(id: $id, fromSnapshot: $s${extra}) { stateGeneration } }`, { id, s: snapshot }, { key });
const rowsOf = (pipelineId: string) =>
  t.database.db.selectFrom('job_snapshots').selectAll().where('job_id', '=', decodeId(pipelineId, 'Pipeline')).execute();

/** Active and seen RUNNING, after the reconciler's passes. */
async function running(id: string) {
  await ok('mutation ($id: ID!) { activatePipeline(id: $id) { id } }', { id });
  await t.app.reconciler.pass();
  runtime.setPhase(decodeId(id, 'Pipeline'), 'RUNNING');
  await t.app.reconciler.pass();
}

async function stopped(id: string) {
  await ok('mutation ($id: ID!) { deactivatePipeline(id: $id) { id } }', { id });
  await t.app.reconciler.pass();
}

describeDatabases((_label, open) => {
  let pipeline: string;

  beforeAll(async () => {
    runtime = new InMemoryRuntime();
    t = await startTestApp({ runtime, database: await open() });
  });
  afterAll(() => t.close());

  beforeEach(async () => {
    ({ key } = await t.signUp('Snapshots'));
    for (const name of ['orders', 'copied']) {
      await ok('mutation ($n: String!) { createStream(input: { name: $n, kind: APPEND, fields: [{ name: "id", type: "BIGINT" }] }) { id } }', { n: name });
    }
    const data = await ok('mutation { createPipeline(input: { name: "copy", sql: "INSERT INTO copied SELECT id FROM orders" }) { id } }');
    pipeline = data.createPipeline.id;
  });

  it('takes snapshots of a running job only, and a failed savepoint stores nothing', async () => {
    const inactive = await take(pipeline);
    expect(codes(inactive)).toEqual(['CONFLICT']);
    expect(inactive.errors![0]!.message).toMatch(/is not running \(STOPPED\)/);

    await running(pipeline);
    runtime.snapshotFailure = 'the savepoint failed: IOException: disk full';
    try {
      const failed = await take(pipeline);
      expect(codes(failed)).toEqual(['SNAPSHOT_FAILED']);
      expect(failed.errors![0]!.message).toBe('Pipeline "copy": the savepoint failed: IOException: disk full.');
    } finally {
      runtime.snapshotFailure = undefined;
    }
    expect(await rowsOf(pipeline)).toEqual([]);

    const snapshot = await taken(pipeline);
    expect(snapshot).toMatchObject({ trigger: 'ON_DEMAND', stateGeneration: 1, specVersion: 1, pinned: false });
    expect(await listed(pipeline)).toEqual([snapshot]);
    await stopped(pipeline);
    const [last, ...rest] = await listed(pipeline);
    expect(last).toMatchObject({ trigger: 'DEACTIVATION', stateGeneration: 1 });
    expect(rest).toEqual([snapshot]);
  });

  it(`keeps the newest ${SNAPSHOT_RETENTION} unpinned and every pinned one, dropping the others’ rows and files`, async () => {
    await running(pipeline);
    const first = await taken(pipeline);
    expect((await pin(first.id)).data?.pinSnapshot).toEqual({ id: first.id, pinned: true });
    const later = [];
    for (let i = 0; i < SNAPSHOT_RETENTION + 2; i++) later.push(await taken(pipeline));
    const [oldest, second] = later;
    const rows = await rowsOf(pipeline);
    expect((await listed(pipeline)).map((s: { id: string }) => s.id)).toEqual([...later.slice(2).map((s) => s.id).reverse(), first.id]);
    expect(rows).toHaveLength(SNAPSHOT_RETENTION + 1);
    // The two dropped ones: their files were deleted, their rows are gone.
    expect(runtime.deletedSnapshots.slice(-2)).toHaveLength(2);
    expect(rows.map((r) => r.location)).not.toContain(runtime.deletedSnapshots.at(-1));
    for (const gone of [oldest, second]) expect(codes(await t.gql('query ($id: ID!) { node(id: $id) { id } }', { id: gone.id }, { key }))).toEqual(['NOT_FOUND']);

    // Unpinned, the first is the oldest of 6 unpinned: the retention drops it at once.
    const deletedBefore = runtime.deletedSnapshots.length;
    expect((await pin(first.id, false)).data?.pinSnapshot).toEqual({ id: first.id, pinned: false });
    expect(runtime.deletedSnapshots.length).toBe(deletedBefore + 1);
    expect((await listed(pipeline)).map((s: { id: string }) => s.id)).not.toContain(first.id);
  });

  it(`pins at most ${MAX_PINNED_SNAPSHOTS} snapshots of a job`, async () => {
    await running(pipeline);
    for (let i = 0; i < MAX_PINNED_SNAPSHOTS; i++) {
      const s = await taken(pipeline);
      expect((await pin(s.id)).errors).toBeUndefined();
    }
    const extra = await taken(pipeline);
    const refused = await pin(extra.id);
    expect(codes(refused)).toEqual(['QUOTA_EXCEEDED']);
    expect((await listed(pipeline)).filter((s: { pinned: boolean }) => s.pinned)).toHaveLength(MAX_PINNED_SNAPSHOTS);
  });

  it('starts a new generation from a chosen snapshot of the job; any other id is not found and changes nothing', async () => {
    await running(pipeline);
    const chosen = await taken(pipeline);
    await stopped(pipeline);
    const other = (await ok('mutation { createPipeline(input: { name: "other", sql: "INSERT INTO copied SELECT id FROM orders" }) { id } }')).createPipeline.id;
    const before = await ok('query ($id: ID!) { pipeline(id: $id) { desiredState stateGeneration } }', { id: other });

    expect(codes(await activateFrom(other, chosen.id))).toEqual(['NOT_FOUND']);
    const stranger = await t.signUp('Stranger');
    const theirs = await t.gql('mutation ($s: ID!) { pinSnapshot(id: $s, pinned: true) { id } }', { s: chosen.id }, { key: stranger.key });
    expect(codes(theirs)).toEqual(['NOT_FOUND']);
    expect(codes(await activateFrom(pipeline, chosen.id, ', restore: NONE'))).toEqual(['VALIDATION']);
    expect(await ok('query ($id: ID!) { pipeline(id: $id) { desiredState stateGeneration } }', { id: other })).toEqual(before);
    expect((await rowsOf(pipeline)).find((r) => r.id === decodeId(chosen.id, 'Snapshot'))?.pinned).toBe(false);

    expect((await activateFrom(pipeline, chosen.id)).data?.activatePipeline).toEqual({ stateGeneration: 2 });
    await t.app.reconciler.pass();
    const spec = runtime.jobs.get(decodeId(pipeline, 'Pipeline'))!.spec;
    const [row] = (await rowsOf(pipeline)).filter((r) => r.id === decodeId(chosen.id, 'Snapshot'));
    expect(spec.state).toMatchObject({ generation: 2, initialSnapshot: row!.location });
    // Already active: choosing again is a conflict.
    expect(codes(await activateFrom(pipeline, chosen.id))).toEqual(['CONFLICT']);
  });

  it('deletes a job’s snapshots with it', async () => {
    await running(pipeline);
    await taken(pipeline);
    await stopped(pipeline);
    expect(await rowsOf(pipeline)).toHaveLength(2);
    await ok('mutation ($id: ID!) { deletePipeline(id: $id) { deletedId } }', { id: pipeline });
    expect(await rowsOf(pipeline)).toEqual([]);
  });
});
