import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/platform/net.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';

/**
 * `sourceSchema` and `testConnection` against real Postgres servers: one ready for change
 * data capture (wal_level=logical), one that is not (wal_level=replica), both asking for
 * passwords. Nothing here starts Flink: these are the gateway's own checks.
 */

const PASSWORD = 'superuser pw';
const PLAIN_PASSWORD = 'plain-pw';

let t: TestApp;
/** A gateway whose own database is on the logical server: connections to it are refused. */
let platformOnSource: TestApp;
let key: string;
let logical: TestPostgres;
let replica: TestPostgres;
let logicalDb: pg.Client;

function serverOf(url: string, overrides: Record<string, unknown> = {}) {
  const parsed = new URL(url);
  return {
    hostname: parsed.hostname,
    port: Number(parsed.port),
    'database-name': parsed.pathname.slice(1),
    username: 'weir',
    password: PASSWORD,
    ...overrides,
  };
}

const SOURCE_SCHEMA = 'query ($connector: String!, $properties: JSON!) { sourceSchema(connector: $connector, properties: $properties) { fields { name type nullable } primaryKey } }';
const TEST = `query ($id: ID, $input: TestConnectionInput) { testConnection(id: $id, input: $input) { passed checks { name passed message } } }`;

async function checks(input: Record<string, unknown>, app = t) {
  const result = await app.gql(TEST, { input }, { key });
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  return result.data!.testConnection as { passed: boolean; checks: { name: string; passed: boolean; message: string }[] };
}

const failed = (test: Awaited<ReturnType<typeof checks>>) => test.checks.filter((c) => !c.passed).map((c) => c.name);

beforeAll(async () => {
  [logical, replica] = await Promise.all([
    startTestPostgres({ settings: { wal_level: 'logical' }, password: PASSWORD }),
    startTestPostgres({ settings: { wal_level: 'replica' }, password: PASSWORD }),
  ]);
  logicalDb = new pg.Client({ connectionString: logical.url });
  await logicalDb.connect();
  await logicalDb.query(`
    CREATE TYPE mood AS ENUM ('calm', 'busy');
    CREATE TABLE orders (
      id bigint PRIMARY KEY, customer text NOT NULL, amount numeric(12, 2), quantity integer, small smallint,
      ratio real, score double precision, paid boolean, code varchar(8), ref uuid, doc jsonb, day date,
      placed_at timestamp(3), seen_at timestamptz, payload bytea);
    CREATE TABLE odd (id integer PRIMARY KEY, tags text[], feeling mood, total numeric);
    CREATE TABLE no_key (id integer, label text);
    CREATE ROLE plain LOGIN PASSWORD '${PLAIN_PASSWORD}';
    GRANT SELECT ON orders TO plain;`);
  t = await startTestApp();
  ({ key } = await t.signUp('Postgres checks'));
}, 120_000);

afterAll(async () => {
  await t?.close();
  await platformOnSource?.close();
  await logicalDb?.end();
  await Promise.all([logical?.stop(), replica?.stop()]);
});

describe('sourceSchema', () => {
  it('reads a table’s columns as Flink types and its primary key', async () => {
    const result = await t.gql(SOURCE_SCHEMA, { connector: 'postgres-cdc', properties: { ...serverOf(logical.url), 'table-name': 'orders' } }, { key });
    expect(result.errors).toBeUndefined();
    expect(result.data!.sourceSchema).toEqual({
      fields: [
        { name: 'id', type: 'BIGINT', nullable: false },
        { name: 'customer', type: 'STRING', nullable: false },
        { name: 'amount', type: 'DECIMAL(12, 2)', nullable: true },
        { name: 'quantity', type: 'INT', nullable: true },
        { name: 'small', type: 'SMALLINT', nullable: true },
        { name: 'ratio', type: 'FLOAT', nullable: true },
        { name: 'score', type: 'DOUBLE', nullable: true },
        { name: 'paid', type: 'BOOLEAN', nullable: true },
        { name: 'code', type: 'STRING', nullable: true },
        { name: 'ref', type: 'STRING', nullable: true },
        { name: 'doc', type: 'STRING', nullable: true },
        { name: 'day', type: 'DATE', nullable: true },
        { name: 'placed_at', type: 'TIMESTAMP(3)', nullable: true },
        { name: 'seen_at', type: 'TIMESTAMP_LTZ(6)', nullable: true },
        { name: 'payload', type: 'BYTES', nullable: true },
      ],
      primaryKey: ['id'],
    });
  });

  it('names every column whose type Weir cannot map, instead of guessing', async () => {
    const result = await t.gql(SOURCE_SCHEMA, { connector: 'postgres-cdc', properties: { ...serverOf(logical.url), 'table-name': 'odd' } }, { key });
    expect(result.errors?.[0]?.extensions?.['code']).toBe('VALIDATION');
    const messages = (result.errors![0]!.extensions!['problems'] as { message: string }[]).map((p) => p.message);
    expect(messages).toEqual([
      expect.stringContaining('column tags: Weir has no Flink type for array text[]'),
      expect.stringContaining('column feeling: Weir has no Flink type for user-defined type mood'),
      expect.stringContaining('column total: Weir has no Flink type for numeric without a precision'),
    ]);
  });

  it('refuses a missing table and bad options with VALIDATION', async () => {
    const missing = await t.gql(SOURCE_SCHEMA, { connector: 'postgres-cdc', properties: { ...serverOf(logical.url), 'table-name': 'nope' } }, { key });
    expect(missing.errors?.[0]?.extensions?.['code']).toBe('VALIDATION');
    expect(missing.errors?.[0]?.extensions?.['field']).toEqual(['properties', 'table-name']);
    const pattern = await t.gql(SOURCE_SCHEMA, { connector: 'postgres-cdc', properties: { ...serverOf(logical.url), 'table-name': 'orders|odd' } }, { key });
    expect(pattern.errors?.[0]?.extensions?.['code']).toBe('VALIDATION');
    const kafka = await t.gql(SOURCE_SCHEMA, { connector: 'kafka', properties: {} }, { key });
    expect(kafka.errors?.[0]?.message).toContain('only Postgres connections');
    const anonymous = await t.gql(SOURCE_SCHEMA, { connector: 'postgres-cdc', properties: { ...serverOf(logical.url), 'table-name': 'orders' } });
    expect(anonymous.errors?.[0]?.extensions?.['code']).toBe('UNAUTHENTICATED');
  });
});

describe('testConnection', () => {
  it('passes every check of a server ready for change data capture', async () => {
    const test = await checks({ connector: 'postgres-cdc', properties: { ...serverOf(logical.url), 'table-name': 'orders' } });
    expect(test.checks.map((c) => c.name)).toEqual(['REACHABLE', 'LOGIN', 'TABLE', 'TYPES', 'WAL_LEVEL', 'REPLICATION', 'PRIMARY_KEY', 'PUBLICATION']);
    expect(test.passed, JSON.stringify(test.checks)).toBe(true);
  });

  it('names the failing check for a wrong password, without the password', async () => {
    const test = await checks({ connector: 'postgres-cdc', properties: { ...serverOf(logical.url), 'table-name': 'orders', password: 'wrong secret' } });
    expect(test).toEqual({ passed: false, checks: [{ name: 'LOGIN', passed: false, message: expect.stringContaining('password authentication failed') }] });
    expect(JSON.stringify(test)).not.toContain('wrong secret');
  });

  it('answers within a few seconds for a closed port', async () => {
    const closed = await freePort();
    const started = Date.now();
    const test = await checks({ connector: 'jdbc', properties: { ...serverOf(logical.url), port: closed, 'table-name': 'orders' } });
    expect(Date.now() - started).toBeLessThan(6000);
    expect(test.checks).toEqual([{ name: 'REACHABLE', passed: false, message: expect.stringContaining('ECONNREFUSED') }]);
  });

  it('names a missing table, wal_level=replica, a role without REPLICATION, and a table without a key', async () => {
    expect(failed(await checks({ connector: 'postgres-cdc', properties: { ...serverOf(logical.url), 'table-name': 'absent' } }))).toEqual(['TABLE']);

    const replicaDb = new pg.Client({ connectionString: replica.url });
    await replicaDb.connect();
    await replicaDb.query('CREATE TABLE orders (id bigint PRIMARY KEY)');
    await replicaDb.end();
    const walTest = await checks({ connector: 'postgres-cdc', properties: { ...serverOf(replica.url), 'table-name': 'orders' } });
    expect(failed(walTest)).toEqual(['WAL_LEVEL']);
    expect(walTest.checks.find((c) => c.name === 'WAL_LEVEL')!.message).toBe(
      'wal_level is replica; change data capture needs wal_level = logical (set it and restart the server)',
    );

    const plain = await checks({
      connector: 'postgres-cdc',
      properties: { ...serverOf(logical.url), username: 'plain', password: PLAIN_PASSWORD, 'table-name': 'orders' },
    });
    // Neither a replication role nor the table's owner (so no publication of Weir's own).
    expect(failed(plain)).toEqual(['REPLICATION', 'PUBLICATION']);

    expect(failed(await checks({ connector: 'postgres-cdc', properties: { ...serverOf(logical.url), 'table-name': 'no_key' } }))).toEqual(['PRIMARY_KEY']);
  });

  it('compares a JDBC sink’s stream with the table: columns, types and key', async () => {
    const stream = async (name: string, fields: string, kind = 'CHANGE') =>
      (
        await t.gql(
          `mutation { createStream(input: { name: "${name}", kind: ${kind}, ${kind === 'CHANGE' ? 'primaryKey: ["customer"],' : ''} fields: [${fields}] }) { id } }`,
          {},
          { key },
        )
      ).data!.createStream.id as string;
    const matching = await stream('sink_ok', '{ name: "id", type: "BIGINT" }, { name: "customer", type: "STRING" }', 'APPEND');
    const ok = await checks({ connector: 'jdbc', streamId: matching, properties: { ...serverOf(logical.url), 'table-name': 'orders' } });
    expect(ok.passed, JSON.stringify(ok.checks)).toBe(true);
    expect(ok.checks.map((c) => c.name)).toEqual(['REACHABLE', 'LOGIN', 'TABLE', 'TYPES', 'PRIVILEGES', 'COLUMNS']);

    const wrong = await stream('sink_wrong', '{ name: "customer", type: "STRING", nullable: false }, { name: "amount", type: "INT" }, { name: "extra", type: "STRING" }');
    const bad = await checks({ connector: 'jdbc', streamId: wrong, properties: { ...serverOf(logical.url), 'table-name': 'orders' } });
    expect(failed(bad)).toEqual(['PRIMARY_KEY', 'COLUMNS']);
    expect(bad.checks.find((c) => c.name === 'COLUMNS')!.message).toBe(
      'amount is INT in the stream but DECIMAL(12, 2) in the table; extra is not a column of the table',
    );

    // A role that may only read: a sink needs to write.
    const readOnly = await checks({
      connector: 'jdbc',
      streamId: matching,
      properties: { ...serverOf(logical.url), username: 'plain', password: PLAIN_PASSWORD, 'table-name': 'orders' },
    });
    expect(failed(readOnly)).toEqual(['PRIVILEGES']);
  });

  it('checks a stored connection by id, and refuses the platform’s own database', async () => {
    const streamId = (
      await t.gql(
        'mutation { createStream(input: { name: "orders_in", kind: CHANGE, primaryKey: ["id"], fields: [{ name: "id", type: "BIGINT" }, { name: "customer", type: "STRING" }] }) { id } }',
        {},
        { key },
      )
    ).data!.createStream.id as string;
    const created = await t.gql(
      'mutation ($input: CreateConnectionInput!) { createConnection(input: $input) { id } }',
      { input: { name: 'orders_cdc', connector: 'postgres-cdc', type: 'SOURCE', streamId, properties: { ...serverOf(logical.url), 'table-name': 'orders' } } },
      { key },
    );
    expect(created.errors).toBeUndefined();
    const byId = await t.gql(TEST, { id: created.data!.createConnection.id }, { key });
    expect(byId.data!.testConnection.passed, JSON.stringify(byId.data)).toBe(true);

    platformOnSource = await startTestApp({ config: { databaseUrl: logical.url } });
    const other = await platformOnSource.signUp('Platform');
    const refused = await platformOnSource.gql(TEST, { input: { connector: 'jdbc', properties: { ...serverOf(logical.url), 'table-name': 'orders' } } }, { key: other.key });
    expect(refused.errors?.[0]?.extensions?.['code']).toBe('VALIDATION');
    expect(refused.errors?.[0]?.message).toContain("the platform's own database");
  });

  it('drops a deleted CDC connection’s slot, and keeps a connection whose slot cannot be dropped', async () => {
    const streamId = (
      await t.gql(
        'mutation { createStream(input: { name: "slotted", kind: CHANGE, primaryKey: ["id"], fields: [{ name: "id", type: "BIGINT" }] }) { id } }',
        {},
        { key },
      )
    ).data!.createStream.id as string;
    const create = async (name: string, port: number) => {
      const result = await t.gql(
        'mutation ($input: CreateConnectionInput!) { createConnection(input: $input) { id } }',
        { input: { name, connector: 'postgres-cdc', type: 'SOURCE', streamId, properties: { ...serverOf(logical.url, { port }), 'table-name': 'orders', 'slot.name': `${name}_slot` } } },
        { key },
      );
      expect(result.errors).toBeUndefined();
      return result.data!.createConnection.id as string;
    };
    const DELETE = 'mutation ($id: ID!, $keep: Boolean) { deleteConnection(id: $id, keepReplicationSlot: $keep) { deletedId } }';

    // A slot the job would have made: deleting the connection drops it.
    const reachable = await create('reachable', Number(new URL(logical.url).port));
    await logicalDb.query("SELECT pg_create_logical_replication_slot('reachable_slot', 'pgoutput')");
    expect((await t.gql(DELETE, { id: reachable }, { key })).errors).toBeUndefined();
    expect((await logicalDb.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = 'reachable_slot'")).rows).toEqual([]);

    // A server that does not answer: the connection stays, and the error says what to do.
    const gone = await create('gone', await freePort());
    const refused = await t.gql(DELETE, { id: gone }, { key });
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', replicationSlot: 'gone_slot' });
    expect(refused.errors?.[0]?.message).toContain('keepReplicationSlot: true');
    expect((await t.gql('query ($id: ID!) { connection(id: $id) { id } }', { id: gone }, { key })).data!.connection).toEqual({ id: gone });
    expect((await t.gql(DELETE, { id: gone, keep: true }, { key })).data!.deleteConnection).toEqual({ deletedId: gone });
  });

  it('refuses to activate a connection whose server is not ready, naming the failed checks, and changes nothing', async () => {
    const replicaDb = new pg.Client({ connectionString: replica.url });
    await replicaDb.connect();
    await replicaDb.query('CREATE TABLE IF NOT EXISTS orders (id bigint PRIMARY KEY)');
    await replicaDb.end();
    const streamId = (
      await t.gql(
        'mutation { createStream(input: { name: "not_ready", kind: CHANGE, primaryKey: ["id"], fields: [{ name: "id", type: "BIGINT" }] }) { id } }',
        {},
        { key },
      )
    ).data!.createStream.id as string;
    const connect = async (name: string, url: string) =>
      (
        await t.gql(
          'mutation ($input: CreateConnectionInput!) { createConnection(input: $input) { id } }',
          { input: { name, connector: 'postgres-cdc', type: 'SOURCE', streamId, properties: { ...serverOf(url), 'table-name': 'orders' } } },
          { key },
        )
      ).data!.createConnection.id as string;
    const ACTIVATE = 'mutation ($id: ID!) { activateConnection(id: $id) { desiredState } }';
    const STATE = 'query ($id: ID!) { connection(id: $id) { desiredState actualState } }';

    const notReady = await connect('on_replica', replica.url);
    const refused = await t.gql(ACTIVATE, { id: notReady }, { key });
    expect(refused.errors?.[0]?.extensions).toMatchObject({
      code: 'CONNECTION_CHECK_FAILED',
      checks: [{ name: 'WAL_LEVEL', message: expect.stringContaining('wal_level is replica') }],
    });
    expect(refused.errors?.[0]?.message).toContain('cannot start: WAL_LEVEL: wal_level is replica');
    expect((await t.gql(STATE, { id: notReady }, { key })).data!.connection).toEqual({ desiredState: 'INACTIVE', actualState: 'STOPPED' });

    // Each bad input of the issue: refused at activation, naming its check, nothing changed.
    const logicalPort = Number(new URL(logical.url).port);
    const oddStream = (
      await t.gql(
        'mutation { createStream(input: { name: "odd_in", kind: CHANGE, primaryKey: ["id"], fields: [{ name: "id", type: "INT" }] }) { id } }',
        {},
        { key },
      )
    ).data!.createStream.id as string;
    const sinkStream = (
      await t.gql('mutation { createStream(input: { name: "sink_in", kind: APPEND, fields: [{ name: "id", type: "BIGINT" }, { name: "nope", type: "STRING" }] }) { id } }', {}, { key })
    ).data!.createStream.id as string;
    const cases: { name: string; connector: string; stream: string; properties: Record<string, unknown>; check: string }[] = [
      { name: 'bad_password', connector: 'postgres-cdc', stream: streamId, properties: { password: 'wrong' }, check: 'LOGIN' },
      { name: 'closed_port', connector: 'postgres-cdc', stream: streamId, properties: { port: await freePort() }, check: 'REACHABLE' },
      { name: 'missing_table', connector: 'postgres-cdc', stream: streamId, properties: { 'table-name': 'absent' }, check: 'TABLE' },
      { name: 'no_replication', connector: 'postgres-cdc', stream: streamId, properties: { username: 'plain', password: PLAIN_PASSWORD }, check: 'REPLICATION' },
      { name: 'unmappable', connector: 'postgres-cdc', stream: oddStream, properties: { 'table-name': 'odd' }, check: 'TYPES' },
      { name: 'mismatched_sink', connector: 'jdbc', stream: sinkStream, properties: {}, check: 'COLUMNS' },
    ];
    for (const bad of cases) {
      const created = await t.gql(
        'mutation ($input: CreateConnectionInput!) { createConnection(input: $input) { id } }',
        {
          input: {
            name: bad.name,
            connector: bad.connector,
            type: bad.connector === 'jdbc' ? 'SINK' : 'SOURCE',
            streamId: bad.stream,
            properties: { ...serverOf(logical.url, { port: logicalPort }), 'table-name': 'orders', ...bad.properties },
          },
        },
        { key },
      );
      expect(created.errors, bad.name).toBeUndefined();
      const id = created.data!.createConnection.id as string;
      const result = await t.gql(ACTIVATE, { id }, { key });
      expect(result.errors?.[0]?.extensions?.['code'], bad.name).toBe('CONNECTION_CHECK_FAILED');
      const checks = (result.errors![0]!.extensions!['checks'] as { name: string }[]).map((c) => c.name);
      expect(checks, bad.name).toContain(bad.check);
      expect(JSON.stringify(result.errors), bad.name).not.toContain('wrong');
      expect((await t.gql(STATE, { id }, { key })).data!.connection, bad.name).toEqual({ desiredState: 'INACTIVE', actualState: 'STOPPED' });
    }

    const ready = await connect('on_logical', logical.url);
    expect((await t.gql(ACTIVATE, { id: ready }, { key })).data!.activateConnection).toEqual({ desiredState: 'ACTIVE' });
  });
});
