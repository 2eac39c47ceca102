import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Db } from '../../src/platform/database.js';
import { codes, startTestApp, type TestApp } from '../helpers/app.js';
import { describeDatabases, type TestDatabase } from '../helpers/postgres.js';
import { raceAtOnce } from '../helpers/race.js';

const LIMIT = 3;

async function gatewayOn(database: TestDatabase): Promise<TestApp> {
  await database.db.updateTable('tiers').set({ max_streams: LIMIT, max_pipelines: LIMIT, max_connections: LIMIT }).where('name', '=', 'FREE').execute();
  // Not closed by the app: the helper closes the database after the block.
  return startTestApp({ database });
}

const createStream = (name: string) =>
  `mutation { createStream(input: { name: "${name}", kind: APPEND, fields: [{ name: "id", type: "INT" }] }) { id } }`;

/** What one account holds (each test signs up its own). */
async function count(db: Db, table: 'streams' | 'pipelines' | 'connections' | 'pipeline_streams', accountId: string) {
  const rows =
    table === 'pipeline_streams'
      ? await db
          .selectFrom('pipeline_streams')
          .innerJoin('pipelines', 'pipelines.id', 'pipeline_streams.pipeline_id')
          .select('pipeline_streams.stream_id')
          .where('pipelines.account_id', '=', accountId)
          .execute()
      : await db.selectFrom(table).select('id').where('account_id', '=', accountId).execute();
  return rows.length;
}

describeDatabases((_label, open) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await gatewayOn(await open());
  });
  afterAll(() => t.close());

  test("creations beyond the tier's object counts are QUOTA_EXCEEDED and change nothing", async () => {
    const { key, accountUuid } = await t.signUp('Limits');

    const limits = await t.gql('{ viewer { limits { maxStreams maxPipelines maxConnections } } }', {}, { key });
    expect(limits.data!.viewer.limits).toEqual({ maxStreams: LIMIT, maxPipelines: LIMIT, maxConnections: LIMIT });

    const ids: string[] = [];
    for (let i = 0; i < LIMIT; i++) {
      const created = await t.gql(createStream(`s${i}`), {}, { key });
      expect(created.errors).toBeUndefined();
      ids.push(created.data!.createStream.id);
    }
    const refused = await t.gql(createStream('one_more'), {}, { key });
    expect(codes(refused)).toEqual(['QUOTA_EXCEEDED']);
    expect(refused.errors![0]!.extensions).toMatchObject({ quota: 'streams', limit: LIMIT, requested: LIMIT + 1 });
    expect(await count(t.database.db, 'streams', accountUuid)).toBe(LIMIT);

    for (let i = 0; i < LIMIT; i++) {
      const created = await t.gql(`mutation { createPipeline(input: { name: "p${i}", sql: "INSERT INTO s1 SELECT id FROM s0" }) { id } }`, {}, { key });
      expect(created.errors).toBeUndefined();
      const connection = await t.gql(
        `mutation ($s: ID!) { createConnection(input: { name: "c${i}", connector: "datagen", type: SOURCE, streamId: $s }) { id } }`,
        { s: ids[0] },
        { key },
      );
      expect(connection.errors).toBeUndefined();
    }
    const pipeline = await t.gql('mutation { createPipeline(input: { name: "px", sql: "INSERT INTO s1 SELECT id FROM s0" }) { id } }', {}, { key });
    expect(codes(pipeline)).toEqual(['QUOTA_EXCEEDED']);
    expect(pipeline.errors![0]!.extensions).toMatchObject({ quota: 'pipelines', limit: LIMIT });
    const connection = await t.gql(
      'mutation ($s: ID!) { createConnection(input: { name: "cx", connector: "datagen", type: SOURCE, streamId: $s }) { id } }',
      { s: ids[0] },
      { key },
    );
    expect(codes(connection)).toEqual(['QUOTA_EXCEEDED']);
    expect(connection.errors![0]!.extensions).toMatchObject({ quota: 'connections', limit: LIMIT });
    expect(await count(t.database.db, 'pipelines', accountUuid)).toBe(LIMIT);
    expect(await count(t.database.db, 'connections', accountUuid)).toBe(LIMIT);
    expect(await count(t.database.db, 'pipeline_streams', accountUuid)).toBe(2 * LIMIT);

    // Another account has its own count.
    const other = await t.signUp('Other');
    expect((await t.gql(createStream('s0'), {}, { key: other.key })).errors).toBeUndefined();
  });

  // Each creation counts and inserts in one transaction under the account's lock. Without
  // it, on real Postgres, the racers all count the same number and all insert.
  const RACERS = 8;
  const createPipeline = (name: string) =>
    `mutation { createPipeline(input: { name: "${name}", sql: "INSERT INTO s1 SELECT id FROM s0" }) { id } }`;
  const createConnection = (name: string) =>
    `mutation ($s: ID!) { createConnection(input: { name: "${name}", connector: "datagen", type: SOURCE, streamId: $s }) { id } }`;
  test.each([
    { object: 'streams', create: createStream },
    { object: 'pipelines', create: createPipeline },
    { object: 'connections', create: createConnection },
  ] as const)(`$object: ${RACERS} concurrent creations against a limit of ${LIMIT} leave exactly ${LIMIT}`, async ({ object, create }) => {
    const { key, accountUuid } = await t.signUp('Racers');
    let s = '';
    if (object !== 'streams') {
      for (const name of ['s0', 's1']) s = (await t.gql(createStream(name), {}, { key })).data!.createStream.id;
    }

    const results = await raceAtOnce(
      t.database,
      object,
      Array.from({ length: RACERS }, (_, i) => () => t.gql(create(`race${i}`), { s }, { key })),
    );
    expect(results.flatMap(codes).sort()).toEqual(Array(RACERS - LIMIT).fill('QUOTA_EXCEEDED'));
    expect(results.filter((result) => !result.errors)).toHaveLength(LIMIT);
    expect(await count(t.database.db, object, accountUuid)).toBe(LIMIT);
  });
});
