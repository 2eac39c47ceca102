import type { KyselyPlugin } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type DatabaseHandle } from '../../src/platform/database.js';
import { migrateToLatest } from '../../src/platform/migrator.js';
import { startTestApp, type TestApp } from '../helpers/app.js';

/** Counts the SQL statements the gateway sends. */
class QueryCounter implements KyselyPlugin {
  count = 0;
  transformQuery: KyselyPlugin['transformQuery'] = (args) => {
    this.count++;
    return args.node;
  };
  transformResult: KyselyPlugin['transformResult'] = async (args) => args.result;
}

let database: DatabaseHandle;
let t: TestApp;
let key: string;
const counter = new QueryCounter();

const STREAM = (name: string) =>
  `mutation { createStream(input: { name: "${name}", kind: APPEND, fields: [{ name: "id", type: "INT" }] }) { id } }`;

beforeAll(async () => {
  database = await openDatabase({ databaseUrl: undefined, pgliteDir: 'memory://' });
  await migrateToLatest(database.db);
  t = await startTestApp({ database: { ...database, db: database.db.withPlugin(counter) } });
  ({ key } = await t.signUp('Loaders'));
  for (const name of ['a', 'b', 'sink']) await t.gql(STREAM(name), {}, { key });
  const streams = await t.gql<{ streams: { edges: { node: { id: string; name: string } }[] } }>(
    '{ streams { edges { node { id name } } } }',
    {},
    { key },
  );
  const out = streams.data!.streams.edges.find((edge) => edge.node.name === 'sink')!.node.id;
  for (let i = 0; i < 12; i++) {
    const sql = i % 2 ? 'INSERT INTO sink SELECT id FROM a' : 'INSERT INTO sink SELECT a.id FROM a JOIN b ON a.id = b.id';
    const created = await t.gql(`mutation ($sql: String!) { createPipeline(input: { name: "p${i}", sql: $sql }) { id } }`, { sql }, { key });
    expect(created.errors).toBeUndefined();
  }
  for (let i = 0; i < 4; i++) {
    const created = await t.gql(
      'mutation ($s: ID!) { createConnection(input: { name: "c' + i + '", connector: "datagen", type: SOURCE, streamId: $s }) { id } }',
      { s: out },
      { key },
    );
    expect(created.errors).toBeUndefined();
  }
});
afterAll(async () => {
  await t.close();
  await database.close();
});

/** Runs the query and answers how many SQL statements it took. */
async function queriesFor(query: string): Promise<number> {
  const before = counter.count;
  const result = await t.gql(query, {}, { key });
  expect(result.errors).toBeUndefined();
  return counter.count - before;
}

const PAGE = (first: number) => `{
  pipelines(first: ${first}) { edges { node {
    name
    inputStreams { name }
    outputStream { name pipelines { name } connections { name stream { name } } }
  } } }
  connections(first: ${first}) { edges { node { name stream { name } } } }
}`;

describe('relation fields', () => {
  it('cost a fixed number of queries, whatever the size of the page', async () => {
    const one = await queriesFor(PAGE(1));
    const twelve = await queriesFor(PAGE(12));
    expect(twelve).toBe(one);
    // Authentication, two pages, links, streams, pipelines and connections of streams.
    expect(twelve).toBeLessThanOrEqual(8);
  });

  it('answer what the rows say', async () => {
    const result = await t.gql<any>(PAGE(12), {}, { key });
    const pipelines = result.data.pipelines.edges.map((edge: any) => edge.node);
    expect(pipelines).toHaveLength(12);
    expect(pipelines[0].inputStreams.map((s: any) => s.name).sort()).toEqual(['a', 'b']);
    expect(pipelines[1].inputStreams.map((s: any) => s.name)).toEqual(['a']);
    expect(pipelines[0].outputStream.name).toBe('sink');
    expect(pipelines[0].outputStream.pipelines).toHaveLength(12);
    expect(pipelines[0].outputStream.connections.map((c: any) => c.stream.name)).toEqual(['sink', 'sink', 'sink', 'sink']);
    expect(result.data.connections.edges.map((edge: any) => edge.node.name)).toEqual(['c0', 'c1', 'c2', 'c3']);
  });
});
