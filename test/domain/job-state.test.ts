import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import type { StreamStorage } from '../../src/streams/stream-storage.js';
import { codes, startTestApp, type TestApp } from '../helpers/app.js';
import { describeDatabases } from '../helpers/postgres.js';

/**
 * Where an activation restores from and starts reading, as the API checks and records
 * it. The runtime is none (nothing runs); the stream storage answers only the end of a
 * stream, 42 (the real one is exercised in test/runtime/local/job-lifecycle.test.ts).
 */
let t: TestApp;
let key: string;

const storage = { topicFor: (_account: string, stream: string) => `topic-${stream}`, endOffset: async () => 42n } as unknown as StreamStorage;

async function ok(query: string, variables: Record<string, unknown> = {}) {
  const result = await t.gql(query, variables, { key });
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  return result.data!;
}

const STATE = 'desiredState stateGeneration stateStartedAt startPositions { stream from offset timestamp }';
const activate = (id: string, variables: Record<string, unknown> = {}) =>
  t.gql(`mutation ($id: ID!, $restore: RestoreMode, $startFrom: [StartPositionInput!]) { activatePipeline(id: $id, restore: $restore, startFrom: $startFrom) { ${STATE} } }`, { id, ...variables }, { key });
const stateOf = async (id: string) => (await ok(`query ($id: ID!) { pipeline(id: $id) { ${STATE} } }`, { id })).pipeline;
const deactivate = (id: string) => ok('mutation ($id: ID!) { deactivatePipeline(id: $id) { id } }', { id });
const messageOf = (result: Awaited<ReturnType<typeof activate>>) => result.errors?.[0]?.message ?? '';

async function createStream(name: string, kind: 'APPEND' | 'CHANGE' = 'APPEND') {
  const data = await ok('mutation ($input: CreateStreamInput!) { createStream(input: $input) { id } }', {
    input: { name, kind, fields: [{ name: 'id', type: 'BIGINT' }], ...(kind === 'CHANGE' ? { primaryKey: ['id'] } : {}) },
  });
  return data.createStream.id as string;
}

describeDatabases((_label, open) => {
  let orders: string;
  let refunds: string;
  let totals: string;
  let pipeline: string;

  beforeAll(async () => {
    t = await startTestApp({ database: await open(), storage });
  });
  afterAll(() => t.close());

  beforeEach(async () => {
    ({ key } = await t.signUp('Job state'));
    orders = await createStream('orders');
    refunds = await createStream('refunds', 'CHANGE');
    totals = await createStream('totals');
    const data = await ok('mutation ($input: CreatePipelineInput!) { createPipeline(input: $input) { id } }', {
      input: { name: 'copy', sql: 'INSERT INTO totals SELECT o.id FROM orders o JOIN refunds r ON o.id = r.id' },
    });
    pipeline = data.createPipeline.id;
  });

  it('has no state before its first activation, which starts from EARLIEST unless told', async () => {
    expect(await stateOf(pipeline)).toEqual({ desiredState: 'INACTIVE', stateGeneration: 1, stateStartedAt: null, startPositions: [] });
    const activated = await activate(pipeline);
    expect(activated.errors).toBeUndefined();
    expect(activated.data!.activatePipeline).toMatchObject({ desiredState: 'ACTIVE', stateGeneration: 1, startPositions: [] });
    expect(Date.parse(activated.data!.activatePipeline.stateStartedAt)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('resolves LATEST to the end of the stream at activation, and a timestamp as given', async () => {
    const at = new Date(Date.now() - 3_600_000).toISOString();
    const activated = await activate(pipeline, { startFrom: [{ stream: orders, from: 'LATEST' }] });
    expect(activated.errors).toBeUndefined();
    expect(activated.data!.activatePipeline.startPositions).toEqual([{ stream: orders, from: 'LATEST', offset: '42', timestamp: null }]);
    await deactivate(pipeline);

    const restarted = await activate(pipeline, { restore: 'NONE', startFrom: [{ stream: orders, from: 'TIMESTAMP', timestamp: at }] });
    expect(restarted.errors).toBeUndefined();
    expect(restarted.data!.activatePipeline).toMatchObject({
      stateGeneration: 2,
      startPositions: [{ stream: orders, from: 'TIMESTAMP', offset: null, timestamp: at }],
    });
  });

  it('restore NONE starts a new generation from EARLIEST when no start position is given', async () => {
    expect((await activate(pipeline, { startFrom: [{ from: 'LATEST', stream: orders }] })).errors).toBeUndefined();
    await deactivate(pipeline);
    const restarted = await activate(pipeline, { restore: 'NONE' });
    expect(restarted.data!.activatePipeline).toMatchObject({ stateGeneration: 2, startPositions: [] });
  });

  it('refuses a start position for a job that has state unless restore is NONE, and changes nothing', async () => {
    await activate(pipeline);
    await deactivate(pipeline);
    const before = await stateOf(pipeline);
    const refused = await activate(pipeline, { startFrom: [{ from: 'LATEST', stream: orders }] });
    expect(codes(refused)).toEqual(['VALIDATION']);
    expect(messageOf(refused)).toMatch(/has state from an earlier run.*restore: NONE/);
    expect(refused.errors![0]!.extensions!.field).toEqual(['startFrom']);
    expect(await stateOf(pipeline)).toEqual(before);
  });

  it('refuses to choose what an active job restores or where it starts', async () => {
    await activate(pipeline);
    expect(codes(await activate(pipeline, { restore: 'NONE' }))).toEqual(['CONFLICT']);
    expect(codes(await activate(pipeline, { startFrom: [{ from: 'EARLIEST' }] }))).toEqual(['CONFLICT']);
    // Activating it as it is stays a no-op.
    expect((await activate(pipeline)).errors).toBeUndefined();
    expect((await stateOf(pipeline)).stateGeneration).toBe(1);
  });

  it('checks every start position, naming the entry, and activates nothing when one is wrong', async () => {
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const otherAccountStream = await (async () => {
      const own = key;
      ({ key } = await t.signUp('Someone else'));
      const id = await createStream('orders');
      key = own;
      return id;
    })();
    const cases: [unknown[], RegExp, (string | number)[]][] = [
      [[{ stream: orders, from: 'TIMESTAMP', timestamp: future }], /is in the future/, ['startFrom', 0, 'timestamp']],
      [[{ stream: orders, from: 'TIMESTAMP' }], /is required with from: TIMESTAMP/, ['startFrom', 0, 'timestamp']],
      [[{ stream: orders, from: 'LATEST', timestamp: new Date().toISOString() }], /only taken with from: TIMESTAMP/, ['startFrom', 0, 'timestamp']],
      [[{ stream: totals, from: 'LATEST' }], /is not a stream this job reads/, ['startFrom', 0, 'stream']],
      [[{ stream: otherAccountStream, from: 'LATEST' }], /is not a stream this job reads/, ['startFrom', 0, 'stream']],
      [[{ stream: orders, from: 'LATEST' }, { stream: orders, from: 'EARLIEST' }], /has a start position already/, ['startFrom', 1, 'stream']],
      [[{ from: 'LATEST' }, { from: 'EARLIEST' }], /a second start position without a stream/, ['startFrom', 1]],
      [[{ stream: refunds, from: 'LATEST' }], /"refunds" is a CHANGE stream, always read from EARLIEST/, ['startFrom', 0, 'from']],
    ];
    for (const [startFrom, message, path] of cases) {
      const refused = await activate(pipeline, { startFrom });
      expect(codes(refused), JSON.stringify(startFrom)).toEqual(['VALIDATION']);
      expect(messageOf(refused)).toMatch(message);
      expect(refused.errors![0]!.extensions!.field).toEqual(path);
    }
    expect(await stateOf(pipeline)).toEqual({ desiredState: 'INACTIVE', stateGeneration: 1, stateStartedAt: null, startPositions: [] });
  });

  it('takes no start position for a SOURCE connection, which reads no stream', async () => {
    const data = await ok('mutation ($input: CreateConnectionInput!) { createConnection(input: $input) { id } }', {
      input: { name: 'gen', connector: 'datagen', type: 'SOURCE', streamId: orders, properties: { 'rows-per-second': 1 } },
    });
    const refused = await t.gql(
      'mutation ($id: ID!, $startFrom: [StartPositionInput!]) { activateConnection(id: $id, startFrom: $startFrom) { id } }',
      { id: data.createConnection.id, startFrom: [{ from: 'LATEST' }] },
      { key },
    );
    expect(codes(refused)).toEqual(['VALIDATION']);
    expect(messageOf(refused)).toMatch(/reads no stream/);
  });

  it('starts a new generation when the SQL changes, keeping the start positions; not for a new task count', async () => {
    await activate(pipeline, { startFrom: [{ stream: orders, from: 'LATEST' }] });
    await deactivate(pipeline);
    const update = (input: Record<string, unknown>) =>
      ok(`mutation ($id: ID!, $input: UpdatePipelineInput!) { updatePipeline(id: $id, input: $input) { ${STATE} } }`, { id: pipeline, input }).then((d) => d.updatePipeline);
    expect(await update({ taskCount: 2 })).toMatchObject({ stateGeneration: 1 });
    const changed = await update({ sql: 'INSERT INTO totals SELECT o.id FROM orders o JOIN refunds r ON o.id = r.id WHERE o.id > 0' });
    // Inactive: the new generation has no state yet, so a start position may be chosen again.
    expect(changed).toMatchObject({ stateGeneration: 2, stateStartedAt: null, startPositions: [{ stream: orders, from: 'LATEST', offset: '42' }] });
    expect((await activate(pipeline, { startFrom: [{ from: 'EARLIEST' }] })).errors).toBeUndefined();
  });
});
