import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSchema } from '../../src/graphql/schema.js';
import { decodeId, encodeId } from '../../src/graphql/global-id.js';
import { insertSnapshot } from '../../src/jobs/snapshot.repository.js';
import { newId } from '../../src/platform/ids.js';
import { codes, startTestApp, type TestApp } from '../helpers/app.js';
import { InMemoryRuntime } from '../helpers/in-memory-runtime.js';
import { describeDatabases } from '../helpers/postgres.js';
import { sseResults } from '../helpers/sse.js';

/**
 * Account B holds a valid key and account A's ids. Every root field that takes an id
 * must answer NOT_FOUND, exactly as for an id that never existed, and change nothing;
 * every root field that lists account data must show B nothing of A's.
 */

type Ids = { stream: string; connection: string; pipeline: string; apiKey: string; account: string; snapshot: string };
type Op = 'query' | 'mutation' | 'subscription';

interface ByIdCase {
  readonly kind: 'by-id';
  readonly document: string;
  /** Variables carrying the id under test. */
  readonly vars: (ids: Ids, id: (type: keyof Ids) => string) => Record<string, unknown>;
}
interface ListCase {
  readonly kind: 'list';
  readonly document: string;
}
interface PublicCase {
  readonly kind: 'public';
  readonly why: string;
}
type Case = ByIdCase | ListCase | PublicCase;

const byId = (document: string, vars: ByIdCase['vars']): ByIdCase => ({ kind: 'by-id', document, vars });

const CASES: Record<Op, Record<string, Case>> = {
  query: {
    node: byId('query ($id: ID!) { node(id: $id) { id } }', (_ids, id) => ({ id: id('pipeline') })),
    stream: byId('query ($id: ID!) { stream(id: $id) { id name } }', (_ids, id) => ({ id: id('stream') })),
    connection: byId('query ($id: ID!) { connection(id: $id) { id } }', (_ids, id) => ({ id: id('connection') })),
    pipeline: byId('query ($id: ID!) { pipeline(id: $id) { id } }', (_ids, id) => ({ id: id('pipeline') })),
    viewer: { kind: 'list', document: '{ viewer { id name } }' },
    streams: { kind: 'list', document: '{ streams(first: 100) { edges { node { id name } } } }' },
    connections: { kind: 'list', document: '{ connections(first: 100) { edges { node { id name properties } } } }' },
    pipelines: { kind: 'list', document: '{ pipelines(first: 100) { edges { node { id name sql } } } }' },
    apiKeys: { kind: 'list', document: '{ apiKeys(first: 100) { edges { node { id prefix } } } }' },
    connectors: { kind: 'public', why: 'the connector catalog is the same for everyone' },
    streamRecords: byId('query ($id: ID!) { streamRecords(streamId: $id) { value } }', (_ids, id) => ({ id: id('stream') })),
    testConnection: byId('query ($id: ID) { testConnection(id: $id) { passed } }', (_ids, id) => ({ id: id('connection') })),
    sourceSchema: { kind: 'public', why: 'reads a table of a server the caller names; takes no id and reads no account data' },
  },
  mutation: {
    signUp: { kind: 'public', why: 'creates a new account; takes no id' },
    createApiKey: { kind: 'list', document: 'mutation { createApiKey(input: { name: "b", role: VIEWER }) { apiKey { id } } }' },
    revokeApiKey: byId('mutation ($id: ID!) { revokeApiKey(id: $id) { id } }', (_ids, id) => ({ id: id('apiKey') })),
    createStream: {
      kind: 'list',
      document: 'mutation { createStream(input: { name: "orders", kind: APPEND, fields: [{ name: "x", type: "INT" }] }) { id } }',
    },
    updateStream: byId(
      'mutation ($id: ID!) { updateStream(id: $id, input: { name: "hijacked" }) { id } }',
      (_ids, id) => ({ id: id('stream') }),
    ),
    publishRecords: byId(
      'mutation ($id: ID!, $r: [JSON!]!) { publishRecords(streamId: $id, records: $r) { count } }',
      (_ids, id) => ({ id: id('stream'), r: [{ id: 1, amount: '1.00' }] }),
    ),
    deleteStream: byId('mutation ($id: ID!) { deleteStream(id: $id) { deletedId } }', (_ids, id) => ({ id: id('stream') })),
    createConnection: byId(
      `mutation ($id: ID!, $props: JSON) { createConnection(input: { name: "c", connector: "datagen", type: SOURCE,
        streamId: $id, properties: $props }) { id } }`,
      (_ids, id) => ({ id: id('stream'), props: { 'rows-per-second': 1 } }),
    ),
    updateConnection: byId(
      'mutation ($id: ID!) { updateConnection(id: $id, input: { name: "hijacked" }) { id } }',
      (_ids, id) => ({ id: id('connection') }),
    ),
    deleteConnection: byId('mutation ($id: ID!) { deleteConnection(id: $id) { deletedId } }', (_ids, id) => ({ id: id('connection') })),
    activateConnection: byId('mutation ($id: ID!) { activateConnection(id: $id) { id } }', (_ids, id) => ({
      id: id('connection'),
    })),
    deactivateConnection: byId('mutation ($id: ID!) { deactivateConnection(id: $id) { id } }', (_ids, id) => ({
      id: id('connection'),
    })),
    createPipeline: {
      kind: 'list',
      // B names A's stream: B has no stream by that name, so it is unknown to B.
      document: 'mutation { createPipeline(input: { name: "p", sql: "INSERT INTO orders_out SELECT * FROM orders" }) { id } }',
    },
    updatePipeline: byId(
      'mutation ($id: ID!) { updatePipeline(id: $id, input: { name: "hijacked" }) { id } }',
      (_ids, id) => ({ id: id('pipeline') }),
    ),
    deletePipeline: byId('mutation ($id: ID!) { deletePipeline(id: $id) { deletedId } }', (_ids, id) => ({ id: id('pipeline') })),
    activatePipeline: byId('mutation ($id: ID!) { activatePipeline(id: $id) { id } }', (_ids, id) => ({ id: id('pipeline') })),
    deactivatePipeline: byId('mutation ($id: ID!) { deactivatePipeline(id: $id) { id } }', (_ids, id) => ({
      id: id('pipeline'),
    })),
    snapshotPipeline: byId('mutation ($id: ID!) { snapshotPipeline(id: $id) { id } }', (_ids, id) => ({ id: id('pipeline') })),
    snapshotConnection: byId('mutation ($id: ID!) { snapshotConnection(id: $id) { id } }', (_ids, id) => ({ id: id('connection') })),
    pinSnapshot: byId('mutation ($id: ID!) { pinSnapshot(id: $id, pinned: true) { pinned } }', (_ids, id) => ({ id: id('snapshot') })),
  },
  subscription: {
    statusChanged: byId('subscription ($id: ID) { statusChanged(id: $id) { jobId state } }', (_ids, id) => ({
      id: id('pipeline'),
    })),
    preview: byId('subscription ($id: ID!) { preview(input: { pipelineId: $id }) { __typename } }', (_ids, id) => ({
      id: id('pipeline'),
    })),
  },
};

let t: TestApp;
let a: { key: string; accountId: string; accountUuid: string };
let b: { key: string; accountId: string; accountUuid: string };
let ids: Ids;

async function must(query: string, variables: Record<string, unknown>, key: string) {
  const result = await t.gql(query, variables, { key });
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  return result.data!;
}

/** Everything account A has stored, to prove B's attempts changed nothing. */
async function snapshotOfA() {
  const db = t.database.db;
  const owner = a.accountUuid;
  return JSON.stringify(
    await Promise.all([
      db.selectFrom('accounts').selectAll().where('id', '=', owner).execute(),
      db.selectFrom('api_keys').select(['id', 'name', 'role', 'revoked_at']).where('account_id', '=', owner).orderBy('id').execute(),
      db.selectFrom('streams').selectAll().where('account_id', '=', owner).orderBy('id').execute(),
      db.selectFrom('connections').selectAll().where('account_id', '=', owner).orderBy('id').execute(),
      db.selectFrom('pipelines').selectAll().where('account_id', '=', owner).orderBy('id').execute(),
      db.selectFrom('job_snapshots').selectAll().where('account_id', '=', owner).orderBy('id').execute(),
      db
        .selectFrom('pipeline_streams')
        .innerJoin('pipelines', 'pipelines.id', 'pipeline_streams.pipeline_id')
        .select(['pipeline_streams.pipeline_id', 'pipeline_streams.stream_id', 'pipeline_streams.role'])
        .where('pipelines.account_id', '=', owner)
        .orderBy(['pipeline_streams.pipeline_id', 'pipeline_streams.stream_id'])
        .execute(),
    ]),
  );
}

describe('tenant isolation cases', () => {
  it('has a case for every root field of the schema', () => {
    const schema = buildSchema();
    const roots: Record<Op, string[]> = {
      query: Object.keys(schema.getQueryType()!.getFields()),
      mutation: Object.keys(schema.getMutationType()!.getFields()),
      subscription: Object.keys(schema.getSubscriptionType()!.getFields()),
    };
    for (const op of ['query', 'mutation', 'subscription'] as const) {
      expect(roots[op].filter((field) => !(field in CASES[op])), `${op} fields without an isolation case`).toEqual([]);
      expect(Object.keys(CASES[op]).filter((field) => !roots[op].includes(field)), `stale ${op} cases`).toEqual([]);
    }
  });
});

describeDatabases((_label, open) => {
  beforeAll(async () => {
    t = await startTestApp({ runtime: new InMemoryRuntime(), database: await open() });
    a = await t.signUp('Account A');
    b = await t.signUp('Account B');
    const stream = await must(
      `mutation { createStream(input: { name: "orders", kind: APPEND, fields: [{ name: "id", type: "BIGINT" }, { name: "amount", type: "DECIMAL(10, 2)" }] }) { id } }`,
      {},
      a.key,
    );
    await must(
      `mutation { createStream(input: { name: "orders_out", kind: APPEND, fields: [{ name: "id", type: "BIGINT" }, { name: "amount", type: "DECIMAL(10, 2)" }] }) { id } }`,
      {},
      a.key,
    );
    const connection = await must(
      `mutation ($s: ID!, $props: JSON) { createConnection(input: { name: "gen", connector: "datagen", type: SOURCE,
        streamId: $s, properties: $props }) { id } }`,
      { s: stream.createStream.id, props: { 'rows-per-second': 5 } },
      a.key,
    );
    const pipeline = await must(
      `mutation { createPipeline(input: { name: "copy", sql: "INSERT INTO orders_out SELECT id, amount FROM orders" }) { id } }`,
      {},
      a.key,
    );
    const keys = await must('{ apiKeys { edges { node { id } } } }', {}, a.key);
    // A savepoint A's pipeline stopped with (the in-memory runtime takes none).
    const snapshot = await insertSnapshot(t.database.db, {
      accountId: a.accountUuid,
      jobKind: 'PIPELINE',
      jobId: decodeId(pipeline.createPipeline.id, 'Pipeline'),
      trigger: 'DEACTIVATION',
      stateGeneration: 1,
      specVersion: 1,
      location: 'file:///nowhere/savepoint-0',
      sizeBytes: 1,
    });
    ids = {
      snapshot: encodeId('Snapshot', snapshot.id),
      stream: stream.createStream.id,
      connection: connection.createConnection.id,
      pipeline: pipeline.createPipeline.id,
      apiKey: keys.apiKeys.edges[0].node.id,
      account: a.accountId,
    };
  });
  afterAll(() => t.close());

  describe('tenant isolation', () => {
    const allCases = (['query', 'mutation', 'subscription'] as const).flatMap((op) =>
      Object.entries(CASES[op]).map(([field, c]) => ({ op, field, c })),
    );

    it.each(allCases.filter((x) => x.c.kind === 'by-id'))(
      "$op $field: another account's id is NOT_FOUND, like an id that never existed, and nothing changes",
      async ({ op, c }) => {
        const cse = c as ByIdCase;
        const before = await snapshotOfA();
        const run = async (vars: Record<string, unknown>) =>
          op === 'subscription' ? (await sseResults(t, cse.document, vars, b.key))[0]! : await t.gql(cse.document, vars, { key: b.key });

        const foreign = await run(cse.vars(ids, (type) => ids[type]));
        // The same type, a uuid no account has.
        const ghostIds = Object.fromEntries(
          Object.keys(ids).map((type) => {
            const typename = { stream: 'Stream', connection: 'Connection', pipeline: 'Pipeline', apiKey: 'ApiKey', account: 'Account', snapshot: 'Snapshot' }[type]!;
            return [type, encodeId(typename, newId())];
          }),
        ) as Ids;
        const ghost = await run(cse.vars(ghostIds, (type) => ghostIds[type]));

        expect(codes(foreign)).toEqual(['NOT_FOUND']);
        expect(codes(ghost)).toEqual(['NOT_FOUND']);
        const shape = (r: typeof foreign, id: string) =>
          JSON.stringify({ ...r, status: undefined }).replaceAll(id, '<id>');
        const foreignId = Object.values(cse.vars(ids, (type) => ids[type]))[0] as string;
        const ghostId = Object.values(cse.vars(ghostIds, (type) => ghostIds[type]))[0] as string;
        expect(shape(foreign, foreignId)).toEqual(shape(ghost, ghostId));
        expect(await snapshotOfA()).toEqual(before);
      },
    );

    it.each(allCases.filter((x) => x.c.kind === 'list'))(
      "$op $field: shows and touches nothing of the other account's",
      async ({ c }) => {
        const before = await snapshotOfA();
        const result = await t.gql((c as ListCase).document, {}, { key: b.key });
        const text = JSON.stringify(result);
        for (const id of Object.values(ids)) expect(text).not.toContain(id);
        expect(text).not.toContain('Account A');
        expect(text).not.toContain('INSERT INTO orders_out');
        expect(await snapshotOfA()).toEqual(before);
      },
    );

    it('statusChanged without an id streams only the subscriber’s own account', async () => {
      const results = await sseResults(
        t,
        'subscription { statusChanged { jobId state } }',
        {},
        b.key,
        1,
        async () => {
          // A's activation produces transitions for A only; B's own activation is what B sees.
          await must('mutation ($id: ID!) { activatePipeline(id: $id) { id } }', { id: ids.pipeline }, a.key);
          await t.app.reconciler.pass();
          await must(
            `mutation { createStream(input: { name: "mine", kind: APPEND, fields: [{ name: "id", type: "BIGINT" }] }) { id } }`,
            {},
            b.key,
          );
          await must(
            `mutation { createStream(input: { name: "mine_out", kind: APPEND, fields: [{ name: "id", type: "BIGINT" }] }) { id } }`,
            {},
            b.key,
          );
          const p = await must(
            `mutation { createPipeline(input: { name: "own", sql: "INSERT INTO mine_out SELECT id FROM mine" }) { id } }`,
            {},
            b.key,
          );
          await must('mutation ($id: ID!) { activatePipeline(id: $id) { id } }', { id: p.createPipeline.id }, b.key);
          await t.app.reconciler.pass();
        },
      );
      expect(results).toHaveLength(1);
      expect(results[0]!.data!.statusChanged.jobId).not.toBe(ids.pipeline);
      expect(results[0]!.data!.statusChanged.state).toBe('STARTING');
    });
  });
});
