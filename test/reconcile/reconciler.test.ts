import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { codes, startTestApp, type TestApp } from '../helpers/app.js';
import { InMemoryRuntime } from '../helpers/in-memory-runtime.js';
import { describeDatabases, type OpenTestDatabase } from '../helpers/postgres.js';
import { raceAtOnce } from '../helpers/race.js';
import { waitFor } from '../helpers/wait-for.js';
import { decodeId } from '../../src/graphql/global-id.js';
import { StatusEvents } from '../../src/jobs/status-events.js';
import { createLogger } from '../../src/platform/logger.js';
import { MINUTE, SECOND } from '../../src/platform/time.js';
import { ReconcileLoop } from '../../src/reconcile/loop.js';
import { Reconciler } from '../../src/reconcile/reconciler.js';
import type { RestartPolicy } from '../../src/reconcile/restart-policy.js';

let t: TestApp;
let runtime: InMemoryRuntime;
let key: string;
let pipelineId: string;

const STATE = `query ($id: ID!) { pipeline(id: $id) {
  desiredState actualState actualReason history(first: 20) { edges { node { state reason } } }
} }`;

async function state(id = pipelineId) {
  const result = await t.gql(STATE, { id }, { key });
  expect(result.errors).toBeUndefined();
  return result.data!.pipeline;
}

async function makePipeline(name: string): Promise<string> {
  const result = await t.gql(
    `mutation ($name: String!) { createPipeline(input: { name: $name, sql: "INSERT INTO sink SELECT id FROM src" }) { id } }`,
    { name },
    { key },
  );
  expect(result.errors).toBeUndefined();
  return result.data!.createPipeline.id;
}

/** One gateway per kind of database, shared by that kind's tests (each test makes its own pipeline). */
async function startGateway(open: OpenTestDatabase) {
  runtime = new InMemoryRuntime();
  t = await startTestApp({ runtime, database: await open() });
  ({ key } = await t.signUp('Reconcile'));
  for (const name of ['src', 'sink']) {
    const r = await t.gql(
      `mutation ($name: String!) { createStream(input: { name: $name, kind: APPEND, fields: [{ name: "id", type: "BIGINT" }] }) { id } }`,
      { name },
      { key },
    );
    expect(r.errors).toBeUndefined();
  }
}

/** Activates the test's pipeline and takes it to RUNNING; its id in the runtime. */
async function activeAndRunning(): Promise<string> {
  const uuid = decodeId(pipelineId, 'Pipeline');
  await t.gql('mutation ($id: ID!) { activatePipeline(id: $id) { id } }', { id: pipelineId }, { key });
  await t.app.reconciler.pass();
  runtime.setPhase(uuid, 'RUNNING');
  await t.app.reconciler.pass();
  return uuid;
}

type JobKind = 'pipeline' | 'connection';

/** A fresh FREE account (2 active jobs, 4 tasks in all) with a job of `kind` for each task count. */
async function quotaAccount(taskCounts: number[], kind: JobKind = 'pipeline') {
  const { key: own, accountUuid } = await t.signUp('Quota');
  const streams: string[] = [];
  for (const name of ['a', 'b']) {
    const r = await t.gql(
      `mutation ($name: String!) { createStream(input: { name: $name, kind: APPEND, fields: [{ name: "id", type: "INT" }] }) { id } }`,
      { name },
      { key: own },
    );
    expect(r.errors).toBeUndefined();
    streams.push(r.data!.createStream.id);
  }
  const Kind = kind === 'pipeline' ? 'Pipeline' : 'Connection';
  const create =
    kind === 'pipeline'
      ? 'mutation ($name: String!, $n: Int!) { created: createPipeline(input: { name: $name, sql: "INSERT INTO b SELECT id FROM a", taskCount: $n }) { id } }'
      : `mutation ($name: String!, $n: Int!, $s: ID!) { created: createConnection(input: { name: $name, connector: "datagen", type: SOURCE,
          streamId: $s, taskCount: $n }) { id } }`;
  const ids: string[] = [];
  for (const [i, taskCount] of taskCounts.entries()) {
    const r = await t.gql(create, { name: `q${i}`, n: taskCount, s: streams[0] }, { key: own });
    expect(r.errors).toBeUndefined();
    ids.push(r.data!.created.id);
  }
  return {
    ids,
    activate: (id: string) => t.gql(`mutation ($id: ID!) { activate${Kind}(id: $id) { desiredState } }`, { id }, { key: own }),
    setTaskCount: (id: string, n: number) =>
      t.gql(`mutation ($id: ID!, $n: Int!) { update${Kind}(id: $id, input: { taskCount: $n }) { taskCount } }`, { id, n }, { key: own }),
    /** What the account has active, as the database holds it. */
    async active() {
      const rows = await t.database.db
        .selectFrom(kind === 'pipeline' ? 'pipelines' : 'connections')
        .select('task_count')
        .where('account_id', '=', accountUuid)
        .where('desired_state', '=', 'ACTIVE')
        .execute();
      return { jobs: rows.length, tasks: rows.reduce((sum, row) => sum + row.task_count, 0) };
    },
  };
}

describeDatabases((_label, open) => {
  beforeAll(() => startGateway(open));
  afterAll(() => t.close());
  beforeEach(async () => {
    pipelineId = await makePipeline(`p${Math.random().toString(36).slice(2, 8)}`);
  });

  describe('reconciler', () => {
    it('starts an activated job, follows the runtime to RUNNING, and records history', async () => {
      await t.gql('mutation ($id: ID!) { activatePipeline(id: $id) { desiredState } }', { id: pipelineId }, { key });
      expect(await state()).toMatchObject({ desiredState: 'ACTIVE', actualState: 'STOPPED' });

      await t.app.reconciler.pass();
      const uuid = decodeId(pipelineId, 'Pipeline');
      expect(runtime.jobs.get(uuid)?.spec.program).toMatchObject({
        type: 'PIPELINE',
        sql: 'INSERT INTO sink SELECT id FROM src',
        output: { name: 'sink' },
        inputs: [{ name: 'src' }],
      });
      expect((await state()).actualState).toBe('STARTING');

      runtime.setPhase(uuid, 'RUNNING');
      await t.app.reconciler.pass();
      const running = await state();
      expect(running.actualState).toBe('RUNNING');
      expect(running.history.edges.map((e: any) => e.node.state)).toEqual(['STARTING', 'RUNNING']);

      // Level-triggered: more passes with nothing new change nothing and apply nothing.
      const calls = runtime.calls.length;
      await t.app.reconciler.pass();
      await t.app.reconciler.pass();
      expect(runtime.calls.length).toBe(calls);
      expect((await state()).history.edges).toHaveLength(2);
    });

    it('changes nothing while the runtime cannot tell a job’s state (a process that did not answer)', async () => {
      const uuid = await activeAndRunning();
      const calls = runtime.calls.length;

      runtime.setPhase(uuid, null);
      await t.app.reconciler.pass();
      const unknown = await state();
      expect(unknown.actualState).toBe('RUNNING');
      expect(unknown.history.edges.map((e: any) => e.node.state)).toEqual(['STARTING', 'RUNNING']);
      expect(runtime.calls.length).toBe(calls);

      // Then it is gone (the kill took effect): recovering, and applied again.
      runtime.lose(uuid);
      await t.app.reconciler.pass();
      expect((await state()).history.edges.map((e: any) => e.node.state)).toEqual(['STARTING', 'RUNNING', 'RECOVERING']);
      expect(runtime.jobs.get(uuid)).toBeDefined();
      await t.gql('mutation ($id: ID!) { deactivatePipeline(id: $id) { id } }', { id: pipelineId }, { key });
      await t.app.reconciler.pass();
    });

    it('re-applies a job that vanished from the runtime, and stops it on deactivate', async () => {
      const uuid = await activeAndRunning();

      runtime.lose(uuid);
      await t.app.reconciler.pass();
      expect(runtime.jobs.has(uuid)).toBe(true);
      expect(await state()).toMatchObject({ actualState: 'RECOVERING', actualReason: expect.stringMatching(/latest checkpoint/) });

      await t.gql('mutation ($id: ID!) { deactivatePipeline(id: $id) { id } }', { id: pipelineId }, { key });
      await t.app.reconciler.pass();
      expect(runtime.jobs.has(uuid)).toBe(false);
      const stopped = await state();
      expect(stopped).toMatchObject({ desiredState: 'INACTIVE', actualState: 'STOPPED' });
      expect(stopped.history.edges.map((e: any) => e.node.state)).toEqual([
        'STARTING',
        'RUNNING',
        'RECOVERING',
        'STOPPING',
        'STOPPED',
      ]);
    });

    it('stops a deactivated job with a savepoint, and records why when it stopped without one', async () => {
      const uuid = await activeAndRunning();
      runtime.savepointFailure = 'Stopped without a savepoint: the savepoint failed: disk full; it resumes from its latest checkpoint.';
      try {
        await t.gql('mutation ($id: ID!) { deactivatePipeline(id: $id) { id } }', { id: pipelineId }, { key });
        await t.app.reconciler.pass();
      } finally {
        runtime.savepointFailure = undefined;
      }
      expect(runtime.removals.at(-1)).toEqual({ id: uuid, savepoint: true });
      const stopped = await state();
      expect(stopped).toMatchObject({ actualState: 'STOPPED', actualReason: expect.stringMatching(/^Stopped without a savepoint: the savepoint failed: disk full/) });
      expect(stopped.history.edges.map((e: any) => [e.node.state, e.node.reason])).toEqual([
        ['STARTING', null],
        ['RUNNING', null],
        ['STOPPING', null],
        ['STOPPED', stopped.actualReason],
      ]);
    });

    it('marks a rejected spec FAILED with the reason and does not retry until the spec changes', async () => {
      const name = (await t.gql('query ($id: ID!) { pipeline(id: $id) { name } }', { id: pipelineId }, { key })).data!
        .pipeline.name;
      runtime.rejectNames.add(name);
      await t.gql('mutation ($id: ID!) { activatePipeline(id: $id) { id } }', { id: pipelineId }, { key });
      await t.app.reconciler.pass();
      expect(await state()).toMatchObject({ actualState: 'FAILED', actualReason: `rejected ${name}` });
      const calls = runtime.calls.length;
      await t.app.reconciler.pass();
      expect(runtime.calls.length).toBe(calls);

      runtime.rejectNames.delete(name);
      await t.gql(
        'mutation ($id: ID!) { updatePipeline(id: $id, input: { taskCount: 2 }) { id } }',
        { id: pipelineId },
        { key },
      );
      await t.app.reconciler.pass();
      expect((await state()).actualState).toBe('STARTING');
      await t.gql('mutation ($id: ID!) { deactivatePipeline(id: $id) { id } }', { id: pipelineId }, { key });
      await t.app.reconciler.pass();
    });

    it('retries after a transient runtime error', async () => {
      runtime.failNextApply = new Error('connection reset');
      await t.gql('mutation ($id: ID!) { activatePipeline(id: $id) { id } }', { id: pipelineId }, { key });
      await t.app.reconciler.pass();
      expect((await state()).actualState).toBe('STOPPED');
      await t.app.reconciler.pass();
      expect((await state()).actualState).toBe('STARTING');
      await t.gql('mutation ($id: ID!) { deactivatePipeline(id: $id) { id } }', { id: pipelineId }, { key });
      await t.app.reconciler.pass();
    });

    it('redeploys an active job whose spec changed', async () => {
      const uuid = decodeId(pipelineId, 'Pipeline');
      await t.gql('mutation ($id: ID!) { activatePipeline(id: $id) { id } }', { id: pipelineId }, { key });
      await t.app.reconciler.pass();
      runtime.setPhase(uuid, 'RUNNING');
      await t.gql(
        'mutation ($id: ID!) { updatePipeline(id: $id, input: { sql: "INSERT INTO sink SELECT id + 1 AS id FROM src" }) { id } }',
        { id: pipelineId },
        { key },
      );
      await t.app.reconciler.pass();
      expect(runtime.jobs.get(uuid)).toMatchObject({ specVersion: 2 });
      expect(runtime.jobs.get(uuid)!.spec.program).toMatchObject({ sql: 'INSERT INTO sink SELECT id + 1 AS id FROM src' });
      expect((await state()).actualState).toBe('RECOVERING');
      await t.gql('mutation ($id: ID!) { deactivatePipeline(id: $id) { id } }', { id: pipelineId }, { key });
      await t.app.reconciler.pass();
    });

    it('completes a half-made deployment (the runtime holds it at version 0) without saying the spec changed', async () => {
      const uuid = decodeId(pipelineId, 'Pipeline');
      runtime.failNextApply = new Error('the gateway died halfway');
      await t.gql('mutation ($id: ID!) { activatePipeline(id: $id) { id } }', { id: pipelineId }, { key });
      await t.app.reconciler.pass();
      // What a runtime reports after a crash between "create pending" and "apply the spec".
      runtime.jobs.set(uuid, {
        kind: 'PIPELINE',
        id: uuid,
        accountId: '0190aaaa-0000-7000-8000-000000000001',
        specVersion: 0,
        phase: 'STARTING',
        reason: null,
        spec: undefined as never,
      });
      await t.app.reconciler.pass();
      expect(runtime.jobs.get(uuid)).toMatchObject({ specVersion: 1 });
      // A first activation: it never ran, so it is still starting.
      expect(await state()).toMatchObject({ actualState: 'STARTING', actualReason: null });

      // One that was running when a later apply stopped partway is recovering.
      runtime.jobs.set(uuid, { ...runtime.jobs.get(uuid)!, phase: 'RUNNING' });
      await t.app.reconciler.pass();
      expect((await state()).actualState).toBe('RUNNING');
      runtime.jobs.set(uuid, { ...runtime.jobs.get(uuid)!, specVersion: 0, phase: 'STARTING' });
      await t.app.reconciler.pass();
      expect(runtime.jobs.get(uuid)).toMatchObject({ specVersion: 1 });
      expect(await state()).toMatchObject({ actualState: 'RECOVERING', actualReason: 'Completing a half-made deployment.' });
      await t.gql('mutation ($id: ID!) { deactivatePipeline(id: $id) { id } }', { id: pipelineId }, { key });
      await t.app.reconciler.pass();
    });

    it('removes jobs the runtime holds that no row wants (deleted while the gateway was down)', async () => {
      runtime.jobs.set('0190aaaa-0000-7000-8000-000000000000', {
        kind: 'PIPELINE',
        id: '0190aaaa-0000-7000-8000-000000000000',
        accountId: '0190aaaa-0000-7000-8000-000000000001',
        specVersion: 1,
        phase: 'RUNNING',
        reason: null,
        spec: undefined as never,
      });
      await t.app.reconciler.pass();
      expect(runtime.jobs.has('0190aaaa-0000-7000-8000-000000000000')).toBe(false);
    });

    it('discards the kept state of stopped jobs that were deleted, and only theirs', async () => {
      const deleted = { kind: 'PIPELINE' as const, id: '0190aaaa-0000-7000-8000-0000000000d1', accountId: '0190aaaa-0000-7000-8000-000000000001' };
      // A row that exists (the test's pipeline, never activated): its state stays.
      const stopped = { ...deleted, id: decodeId(pipelineId, 'Pipeline') };
      runtime.kept.set(deleted.id, deleted);
      runtime.kept.set(stopped.id, stopped);
      const before = runtime.removals.length;
      await t.app.reconciler.pass();
      expect(runtime.removals.slice(before)).toEqual([{ id: deleted.id, discardState: true }]);
      expect([...runtime.kept.keys()]).toEqual([stopped.id]);
      runtime.kept.clear();
    });

    it('enforces the tier quota at activation, under a lock, and changes nothing when refused', async () => {
      const quota = await quotaAccount([1, 1, 1]);
      // FREE allows 2 active jobs: of three concurrent activations exactly two win.
      const results = await raceAtOnce(t.database, 'pipelines', quota.ids.map((id) => () => quota.activate(id)));
      const refused = results.filter((r) => r.errors);
      expect(refused).toHaveLength(1);
      expect(codes(refused[0]!)).toEqual(['QUOTA_EXCEEDED']);
      expect(refused[0]!.errors![0]!.message).toMatch(/active pipelines and connections is limited to 2/);
      expect(await quota.active()).toEqual({ jobs: 2, tasks: 2 });
    });

    it('counts task counts at activation under the lock: of two that fit alone, one wins', async () => {
      // FREE allows 4 tasks in all.
      const quota = await quotaAccount([3, 3]);
      const results = await raceAtOnce(t.database, 'pipelines', quota.ids.map((id) => () => quota.activate(id)));
      expect(results.flatMap(codes)).toEqual(['QUOTA_EXCEEDED']);
      expect(results.find((r) => r.errors)!.errors![0]!.message).toMatch(/total task count of active jobs is limited to 4/);
      expect(await quota.active()).toEqual({ jobs: 1, tasks: 3 });
    });

    it('checks a larger task count of active jobs under the lock: of two raises that fit alone, one wins', async () => {
      const quota = await quotaAccount([1, 1]);
      for (const id of quota.ids) expect((await quota.activate(id)).errors).toBeUndefined();
      const results = await raceAtOnce(t.database, 'pipelines', quota.ids.map((id) => () => quota.setTaskCount(id, 3)));
      expect(results.flatMap(codes)).toEqual(['QUOTA_EXCEEDED']);
      expect(await quota.active()).toEqual({ jobs: 2, tasks: 4 });
    });

    // The update reads whether the job is active and then writes its task count; an
    // activation between the two would count the old task count.
    it.each(['pipeline', 'connection'] as const)(
      'never lets an activation and a larger task count of one %s together exceed the quota',
      async (kind) => {
        const quota = await quotaAccount([1], kind);
        const [id] = quota.ids;
        // Alone, either is fine: an inactive job may ask for more tasks than the tier runs.
        const table = kind === 'pipeline' ? 'pipelines' : 'connections';
        const results = await raceAtOnce(t.database, table, [() => quota.activate(id!), () => quota.setTaskCount(id!, 5)]);
        expect((await quota.active()).tasks).toBeLessThanOrEqual(4);
        expect(results.flatMap(codes)).toEqual(['QUOTA_EXCEEDED']);
      },
    );
  });

  describe('reconciler: jobs that keep dying', () => {
    const policy: RestartPolicy = { maxRestarts: 3, windowMs: MINUTE, minBackoffMs: SECOND, maxBackoffMs: 4 * SECOND };
    /** A reconciler on the test's database and runtime with a clock the test moves, past its first pass. */
    async function crashReconciler() {
      const clock = { now: Date.now() };
      const reconciler = new Reconciler(t.database.db, runtime, new StatusEvents(), createLogger('silent'), {
        restartPolicy: policy,
        now: () => clock.now,
        random: () => 1 - Number.EPSILON, // the longest backoff of each step
      });
      await reconciler.pass();
      return { reconciler, clock };
    }
    const states = async () => (await state()).history.edges.map((e: any) => e.node.state as string);
    const applies = (uuid: string) => runtime.calls.filter((c) => c.startsWith(`apply ${uuid}`)).length;

    it('restarts a dying job with growing backoff, then ends it FAILED with the count and the last cause', async () => {
      const { reconciler, clock } = await crashReconciler();
      const uuid = await activeAndRunning();

      // First death: restarted at once.
      runtime.lose(uuid);
      await reconciler.pass();
      expect(applies(uuid)).toBe(2);
      expect(await state()).toMatchObject({ actualState: 'RECOVERING', actualReason: expect.stringMatching(/restart 1 of 3 .* now/) });

      // Second, dying while it starts: it waits 1 s (the longest jitter of the first step).
      runtime.setPhase(uuid, 'STARTING');
      await reconciler.pass();
      runtime.lose(uuid);
      await reconciler.pass();
      expect(await state()).toMatchObject({ actualState: 'RECOVERING', actualReason: expect.stringMatching(/restart 2 of 3 .* in 1 s/) });
      expect(applies(uuid)).toBe(2);
      clock.now += 999;
      await reconciler.pass();
      expect(applies(uuid)).toBe(2);
      clock.now += 1;
      await reconciler.pass();
      expect(applies(uuid)).toBe(3);

      // Third, dying before it was ever seen starting (no transition between): still counted, 2 s.
      runtime.lose(uuid);
      await reconciler.pass();
      expect((await state()).actualReason).toMatch(/restart 3 of 3 .* in 2 s/);
      clock.now += 2 * SECOND;
      await reconciler.pass();
      expect(applies(uuid)).toBe(4);

      // A fourth death is one too many: FAILED, and the runtime holds nothing for it.
      runtime.setPhase(uuid, 'RUNNING');
      await reconciler.pass();
      runtime.lose(uuid);
      await reconciler.pass();
      expect(runtime.jobs.has(uuid)).toBe(false);
      const failed = await state();
      expect(failed.actualState).toBe('FAILED');
      expect(failed.actualReason).toMatch(/^Restarted 3 times in 1 minute; last cause: the job process exited without saying why/);
      expect(await states()).toEqual([
        'STARTING',
        'RUNNING',
        'RECOVERING',
        'STARTING',
        'RECOVERING',
        'RECOVERING',
        'RUNNING',
        'FAILED',
      ]);

      // It stays FAILED, however much time passes.
      clock.now += 10 * MINUTE;
      await reconciler.pass();
      await reconciler.pass();
      expect(applies(uuid)).toBe(4);
      expect((await state()).actualState).toBe('FAILED');

      // Deactivated and activated again, it starts afresh.
      await t.gql('mutation ($id: ID!) { deactivatePipeline(id: $id) { id } }', { id: pipelineId }, { key });
      await reconciler.pass();
      await t.gql('mutation ($id: ID!) { activatePipeline(id: $id) { id } }', { id: pipelineId }, { key });
      await reconciler.pass();
      expect(applies(uuid)).toBe(5);
      expect((await state()).actualState).toBe('STARTING');
      await t.gql('mutation ($id: ID!) { deactivatePipeline(id: $id) { id } }', { id: pipelineId }, { key });
      await reconciler.pass();
    });

    it('counts the restarts the runtime makes itself, and a spec change gives the job a new budget', async () => {
      const { reconciler } = await crashReconciler();
      const uuid = await activeAndRunning();
      for (let i = 1; i <= 3; i++) {
        runtime.setPhase(uuid, 'RECOVERING', `boom ${i}`);
        await reconciler.pass();
        // A second report of the same restart (a new root exception) is not another restart.
        runtime.setPhase(uuid, 'RECOVERING', `boom ${i} again`);
        await reconciler.pass();
        runtime.setPhase(uuid, 'RUNNING');
        await reconciler.pass();
      }
      expect(runtime.jobs.has(uuid)).toBe(true);
      runtime.setPhase(uuid, 'RECOVERING', 'boom 4');
      await reconciler.pass();
      expect(runtime.jobs.has(uuid)).toBe(false);
      expect(await state()).toMatchObject({ actualState: 'FAILED', actualReason: expect.stringMatching(/^Restarted 3 times in 1 minute; last cause: boom 4\./) });

      await t.gql('mutation ($id: ID!) { updatePipeline(id: $id, input: { taskCount: 2 }) { id } }', { id: pipelineId }, { key });
      await reconciler.pass();
      expect(await state()).toMatchObject({ actualState: 'STARTING' });
      runtime.lose(uuid);
      await reconciler.pass();
      expect((await state()).actualReason).toMatch(/restart 1 of 3/);
      await t.gql('mutation ($id: ID!) { deactivatePipeline(id: $id) { id } }', { id: pipelineId }, { key });
      await reconciler.pass();
    });

    it('counts a hung process the runtime killed, and the restart that follows, as one restart', async () => {
      const { reconciler } = await crashReconciler();
      const uuid = await activeAndRunning();
      runtime.setPhase(uuid, 'RECOVERING', 'The job process did not answer for 60 s; it was stopped.');
      await reconciler.pass();
      runtime.lose(uuid);
      await reconciler.pass();
      expect(runtime.jobs.has(uuid)).toBe(true);
      expect((await state()).actualReason).toMatch(/restart 1 of 3 .* now/);
      await t.gql('mutation ($id: ID!) { deactivatePipeline(id: $id) { id } }', { id: pipelineId }, { key });
      await reconciler.pass();
    });

    it('resumes, without counting a restart, jobs a new gateway finds gone (stopped with the previous one)', async () => {
      const uuid = await activeAndRunning();
      runtime.lose(uuid);
      const successor = new Reconciler(t.database.db, runtime, new StatusEvents(), createLogger('silent'), { restartPolicy: policy });
      await successor.pass();
      expect(runtime.jobs.has(uuid)).toBe(true);
      expect((await state()).actualReason).toMatch(/^The gateway restarted/);
      runtime.lose(uuid);
      await successor.pass();
      expect((await state()).actualReason).toMatch(/restart 1 of 3 .* now/);
      await t.gql('mutation ($id: ID!) { deactivatePipeline(id: $id) { id } }', { id: pipelineId }, { key });
      await successor.pass();
    });

    it('forgets restarts older than the window', async () => {
      const { reconciler, clock } = await crashReconciler();
      const uuid = await activeAndRunning();
      for (let i = 1; i <= 3; i++) {
        runtime.lose(uuid);
        await reconciler.pass();
        clock.now += 4 * SECOND; // past any backoff
        await reconciler.pass();
        expect(runtime.jobs.has(uuid)).toBe(true);
      }
      expect((await state()).actualReason).toMatch(/restart 3 of 3/);
      clock.now += MINUTE;
      runtime.lose(uuid);
      await reconciler.pass();
      expect(await state()).toMatchObject({ actualState: 'RECOVERING', actualReason: expect.stringMatching(/restart 1 of 3 .* now/) });
      expect(runtime.jobs.has(uuid)).toBe(true);
      await t.gql('mutation ($id: ID!) { deactivatePipeline(id: $id) { id } }', { id: pipelineId }, { key });
      await reconciler.pass();
    });
  });
});

describe('reconcile loop', () => {
  /** A reconciler whose passes each wait until the test ends them, counting how many run at once. */
  function heldPasses() {
    const held = { running: 0, mostAtOnce: 0, ends: [] as (() => void)[] };
    const reconciler = {
      async pass() {
        held.running += 1;
        held.mostAtOnce = Math.max(held.mostAtOnce, held.running);
        await new Promise<void>((resolve) => held.ends.push(resolve));
        held.running -= 1;
        return { applied: 0, removed: 0, transitions: 0 };
      },
    } as unknown as Reconciler;
    const loop = new ReconcileLoop(reconciler, MINUTE, createLogger('silent'));
    const stop = new AbortController();
    loop.start(stop.signal);
    return { held, loop, stop };
  }

  it('runs one pass at a time, however often it is woken: a wake during a pass asks for one more after it', async () => {
    const { held, loop, stop } = heldPasses();
    try {
      await waitFor('the first pass', () => held.ends.length === 1);
      for (let i = 0; i < 5; i++) loop.wake();
      held.ends[0]!();
      await waitFor('a second pass', () => held.ends.length === 2);
      held.ends[1]!();
      // Nothing asked for a third: the loop sleeps out its interval, until woken.
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(held.ends).toHaveLength(2);
      loop.wake();
      await waitFor('a third pass', () => held.ends.length === 3);
      expect(held.mostAtOnce).toBe(1);
    } finally {
      stop.abort();
      for (const end of held.ends) end();
      await loop.done();
    }
  });

  it('stops when the pass it was stopped during ends, without sleeping out its interval', async () => {
    const { held, loop, stop } = heldPasses();
    await waitFor('a pass', () => held.ends.length === 1);
    stop.abort();
    const started = Date.now();
    held.ends[0]!();
    await loop.done();
    expect(Date.now() - started).toBeLessThan(5 * SECOND);
    expect(held.ends).toHaveLength(1);
  });
});
