import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codes, startTestApp, type TestApp } from '../helpers/app.js';

/**
 * Bad input gets a clear, typed error and changes nothing: every case below runs
 * against a database snapshot taken before it.
 */
let t: TestApp;
let key: string;
let otherKey: string;
let streamId: string;

async function snapshot(): Promise<string> {
  const db = t.database.db;
  return JSON.stringify(
    await Promise.all(
      (['accounts', 'api_keys', 'streams', 'connections', 'pipelines', 'pipeline_streams', 'job_transitions'] as const).map(
        (table) => db.selectFrom(table).selectAll().execute(),
      ),
    ),
  );
}

beforeAll(async () => {
  t = await startTestApp();
  ({ key } = await t.signUp('Bad input'));
  ({ key: otherKey } = await t.signUp('Other'));
  const created = await t.gql(
    `mutation { createStream(input: { name: "orders", kind: APPEND, fields: [
      { name: "id", type: "BIGINT" }, { name: "amount", type: "DECIMAL(10, 2)" }, { name: "note", type: "STRING" }] }) { id } }`,
    {},
    { key },
  );
  streamId = created.data!.createStream.id;
  await t.gql(
    `mutation { createStream(input: { name: "big_orders", kind: APPEND, fields: [{ name: "id", type: "BIGINT" }] }) { id } }`,
    {},
    { key },
  );
  // The other account's stream: invisible to the first account by any name.
  await t.gql(
    `mutation { createStream(input: { name: "secrets", kind: APPEND, fields: [{ name: "id", type: "BIGINT" }] }) { id } }`,
    {},
    { key: otherKey },
  );
});
afterAll(() => t.close());

const CREATE_CONNECTION = `mutation ($input: CreateConnectionInput!) { createConnection(input: $input) { id } }`;
const CREATE_PIPELINE = `mutation ($sql: String!) { createPipeline(input: { name: "p", sql: $sql }) { id } }`;
const CREATE_STREAM = `mutation ($input: CreateStreamInput!) { createStream(input: $input) { id } }`;

interface Case {
  readonly name: string;
  readonly query: string;
  readonly variables?: () => Record<string, unknown>;
  readonly code: string;
  /** What the error must say or point at. */
  readonly check?: (error: { message: string; extensions?: Record<string, any> }) => void;
}

const connection = (properties: unknown, extra: Record<string, unknown> = {}) => () => ({
  input: { name: 'c', connector: 'datagen', type: 'SOURCE', streamId, properties, ...extra },
});

const CASES: Case[] = [
  { name: 'malformed GraphQL', query: '{ viewer { id ', code: 'GRAPHQL_PARSE_FAILED' },
  { name: 'unknown field', query: '{ viewr { id } }', code: 'GRAPHQL_VALIDATION_FAILED' },
  {
    name: 'too deep',
    // Streams and pipelines refer to each other, so a query can nest without end.
    query: `{ streams { edges { node ${'{ pipelines { inputStreams '.repeat(6)}{ name }${' } }'.repeat(6)} } } }`,
    code: 'DEPTH_LIMIT_EXCEEDED',
  },
  {
    name: 'too costly',
    query: `{ ${Array.from({ length: 10 }, (_, i) => `a${i}: pipelines(first: 100) { edges { node { id history(first: 100) { edges { node { state at } } } inputStreams { fields { name type } } } } }`).join(' ')} }`,
    code: 'COST_LIMIT_EXCEEDED',
  },
  {
    name: 'too many aliases',
    query: `{ ${Array.from({ length: 20 }, (_, i) => `a${i}: viewer { id }`).join(' ')} }`,
    code: 'ALIAS_LIMIT_EXCEEDED',
  },
  { name: 'too many tokens', query: `{ viewer { ${'id '.repeat(2100)} } }`, code: 'TOKEN_LIMIT_EXCEEDED' },
  {
    name: 'unknown connector option (with a suggestion)',
    query: CREATE_CONNECTION,
    variables: connection({ 'rows-per-secnd': 5 }),
    code: 'VALIDATION',
    check: (e) => {
      expect(e.extensions!.field).toEqual(['input', 'properties', 'rows-per-secnd']);
      expect(e.message).toMatch(/rows-per-second/);
    },
  },
  {
    name: 'wrong option type',
    query: CREATE_CONNECTION,
    variables: connection({ 'rows-per-second': 'fast' }),
    code: 'VALIDATION',
    check: (e) => expect(e.extensions!.field).toEqual(['input', 'properties', 'rows-per-second']),
  },
  {
    name: 'option out of range',
    query: CREATE_CONNECTION,
    variables: connection({ 'rows-per-second': 10_000_000 }),
    code: 'VALIDATION',
  },
  {
    name: 'unknown connector',
    query: CREATE_CONNECTION,
    variables: connection({}, { connector: 'ftp' }),
    code: 'VALIDATION',
    check: (e) => expect(e.extensions!.field).toEqual(['input', 'connector']),
  },
  {
    name: 'properties not an object',
    query: CREATE_CONNECTION,
    variables: connection([1, 2]),
    code: 'VALIDATION',
  },
  {
    name: 'kafka without its required options',
    query: CREATE_CONNECTION,
    variables: connection({}, { connector: 'kafka' }),
    code: 'VALIDATION',
  },
  {
    name: 'SQL with two statements',
    query: CREATE_PIPELINE,
    variables: () => ({ sql: 'INSERT INTO big_orders SELECT id FROM orders;\nINSERT INTO big_orders SELECT id FROM orders' }),
    code: 'VALIDATION',
    check: (e) => expect(e.extensions!.problems[0].line).toBe(2),
  },
  {
    name: 'DDL',
    query: CREATE_PIPELINE,
    variables: () => ({ sql: "CREATE TABLE x (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '/etc')" }),
    code: 'VALIDATION',
  },
  {
    name: "reading another account's stream",
    query: CREATE_PIPELINE,
    variables: () => ({ sql: 'INSERT INTO big_orders\nSELECT id FROM secrets' }),
    code: 'VALIDATION',
    check: (e) => {
      expect(e.message).toMatch(/secrets/);
      expect(e.extensions!.problems[0]).toMatchObject({ line: 2, column: 16 });
    },
  },
  {
    name: 'a syntax error in SQL, with its position',
    query: CREATE_PIPELINE,
    variables: () => ({ sql: 'INSERT INTO big_orders\nSELEC id FROM orders' }),
    code: 'VALIDATION',
    check: (e) => expect(e.extensions!.problems[0].line).toBe(2),
  },
  {
    name: 'dynamic table options hint',
    query: CREATE_PIPELINE,
    variables: () => ({ sql: "INSERT INTO big_orders SELECT id FROM orders /*+ OPTIONS('topic'='other') */" }),
    code: 'VALIDATION',
  },
  ...[`or"ders`, "o'rders", 'örders', 'x'.repeat(4096), '', 'drop table streams;--'].map(
    (name): Case => ({
      name: `stream name ${JSON.stringify(name.slice(0, 24))}${name.length > 24 ? `… (${name.length} chars)` : ''}`,
      query: CREATE_STREAM,
      variables: () => ({ input: { name, kind: 'APPEND', fields: [{ name: 'id', type: 'BIGINT' }] } }),
      code: 'VALIDATION',
      check: (e) => expect(e.extensions!.field).toEqual(['input', 'name']),
    }),
  ),
  {
    name: 'pipeline name with unicode',
    query: `mutation { createPipeline(input: { name: "管道", sql: "INSERT INTO big_orders SELECT id FROM orders" }) { id } }`,
    code: 'VALIDATION',
  },
  {
    name: 'field type that is not a Flink type',
    query: CREATE_STREAM,
    variables: () => ({ input: { name: 's2', kind: 'APPEND', fields: [{ name: 'id', type: 'BIGINTEGER' }] } }),
    code: 'VALIDATION',
    check: (e) => expect(e.extensions!.field).toEqual(['input', 'fields', 0, 'type']),
  },
  {
    name: 'CHANGE stream without a primary key',
    query: CREATE_STREAM,
    variables: () => ({ input: { name: 's3', kind: 'CHANGE', fields: [{ name: 'id', type: 'BIGINT' }] } }),
    code: 'VALIDATION',
  },
  {
    name: 'duplicate stream name',
    query: CREATE_STREAM,
    variables: () => ({ input: { name: 'orders', kind: 'APPEND', fields: [{ name: 'id', type: 'BIGINT' }] } }),
    code: 'CONFLICT',
  },
  {
    name: 'task count out of range',
    query: `mutation { createPipeline(input: { name: "p", sql: "INSERT INTO big_orders SELECT id FROM orders", taskCount: 0 }) { id } }`,
    code: 'VALIDATION',
    check: (e) => expect(e.extensions!.field).toEqual(['input', 'taskCount']),
  },
  {
    name: 'page size out of range',
    query: '{ streams(first: 101) { edges { node { id } } } }',
    code: 'VALIDATION',
  },
];

describe('bad input', () => {
  it.each(CASES)('$name → $code, nothing written', async (c) => {
    const before = await snapshot();
    const result = await t.gql(c.query, c.variables?.() ?? {}, { key });
    expect(codes(result)).toEqual([c.code]);
    const error = result.errors![0]!;
    expect(error.message.length).toBeGreaterThan(10);
    c.check?.(error as never);
    expect(await snapshot()).toEqual(before);
  });

  it('accepts a realistic query that is neither too deep nor too costly', async () => {
    const result = await t.gql(
      `{ pipelines(first: 50) { edges { node { id name sql actualState history(first: 10) { edges { node { state at } } }
        inputStreams { name fields { name type } } outputStream { name } } } } }`,
      {},
      { key },
    );
    expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  });

  it('never returns secret connection properties', async () => {
    await t.gql(
      `mutation ($s: ID!) { createStream(input: { name: "k_in", kind: APPEND, fields: [{ name: "id", type: "BIGINT" }] }) { id } }`,
      { s: streamId },
      { key },
    );
    const created = await t.gql(
      CREATE_CONNECTION.replace('{ id }', '{ id properties secretPropertyKeys }'),
      {
        input: {
          name: 'kafka_in',
          connector: 'kafka',
          type: 'SOURCE',
          streamId,
          properties: {
            topic: 'orders',
            'properties.bootstrap.servers': 'localhost:9092',
            'properties.security.protocol': 'SASL_SSL',
            'properties.sasl.mechanism': 'PLAIN',
            'sasl.username': 'orders-reader',
            'sasl.password': 'hunter2',
          },
        },
      },
      { key },
    );
    expect(created.errors).toBeUndefined();
    expect(JSON.stringify(created)).not.toContain('hunter2');
    expect(created.data!.createConnection.secretPropertyKeys).toEqual(['sasl.password']);
    const listed = await t.gql('{ connections { edges { node { properties secretPropertyKeys } } } }', {}, { key });
    expect(JSON.stringify(listed)).not.toContain('hunter2');
  });
});
