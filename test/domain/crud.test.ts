import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codes, startTestApp, type TestApp } from '../helpers/app.js';
import { describeDatabases } from '../helpers/postgres.js';
import { raceAtOnce } from '../helpers/race.js';

let t: TestApp;
let key: string;

async function ok(query: string, variables: Record<string, unknown> = {}) {
  const result = await t.gql(query, variables, { key });
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  return result.data!;
}

async function createStream(name: string, fields: { name: string; type: string; nullable?: boolean }[], extra = '') {
  const data = await ok(
    `mutation ($name: String!, $fields: [StreamFieldInput!]!) {
      createStream(input: { name: $name, kind: APPEND, fields: $fields ${extra} }) { id name fields { name type nullable } }
    }`,
    { name, fields },
  );
  return data.createStream;
}

describeDatabases((_label, open) => {
  beforeAll(async () => {
    t = await startTestApp({ database: await open() });
    ({ key } = await t.signUp('CRUD'));
  });
  afterAll(() => t.close());

  describe('streams', () => {
    it('normalises Flink types and marks primary-key fields NOT NULL', async () => {
      const data = await ok(`mutation { createStream(input: { name: "users", kind: CHANGE, primaryKey: ["id"], fields: [
        { name: "id", type: "bigint" }, { name: "email", type: "varchar(200)" }, { name: "score", type: "decimal(10,2) not null" },
        { name: "tags", type: "array<string>" }, { name: "seen", type: "timestamp(3) with local time zone" }] })
        { kind primaryKey fields { name type nullable } } }`);
      expect(data.createStream).toEqual({
        kind: 'CHANGE',
        primaryKey: ['id'],
        fields: [
          { name: 'id', type: 'BIGINT', nullable: false },
          { name: 'email', type: 'VARCHAR(200)', nullable: true },
          { name: 'score', type: 'DECIMAL(10, 2)', nullable: false },
          { name: 'tags', type: 'ARRAY<STRING>', nullable: true },
          { name: 'seen', type: 'TIMESTAMP_LTZ(3)', nullable: true },
        ],
      });
    });

    it('accepts compatible changes only', async () => {
      const stream = await createStream('evolving', [
        { name: 'id', type: 'INT' },
        { name: 'label', type: 'VARCHAR(10)' },
      ]);
      const update = (fields: unknown) =>
        t.gql(
          'mutation ($id: ID!, $fields: [StreamFieldInput!]) { updateStream(id: $id, input: { fields: $fields }) { fields { name type nullable } } }',
          { id: stream.id, fields },
          { key },
        );
      const widened = await update([
        { name: 'id', type: 'BIGINT' },
        { name: 'label', type: 'STRING' },
        { name: 'extra', type: 'DOUBLE' },
      ]);
      expect(widened.errors).toBeUndefined();
      expect(widened.data!.updateStream.fields.map((f: any) => f.type)).toEqual(['BIGINT', 'STRING', 'DOUBLE']);

      const narrowed = await update([{ name: 'id', type: 'INT' }, { name: 'label', type: 'STRING' }, { name: 'extra', type: 'DOUBLE' }]);
      expect(codes(narrowed)).toEqual(['VALIDATION']);
      expect(narrowed.errors![0]!.extensions!.field).toEqual(['input', 'fields', 0, 'type']);
      const removed = await update([{ name: 'id', type: 'BIGINT' }]);
      expect(codes(removed)).toEqual(['VALIDATION']);
      const requiredNew = await update([
        { name: 'id', type: 'BIGINT' },
        { name: 'label', type: 'STRING' },
        { name: 'extra', type: 'DOUBLE' },
        { name: 'must', type: 'INT', nullable: false },
      ]);
      expect(codes(requiredNew)).toEqual(['VALIDATION']);
    });

    it('refuses to delete or rename a stream in use, naming its users', async () => {
      await createStream('raw_events', [{ name: 'id', type: 'BIGINT' }]);
      const clean = await createStream('clean', [{ name: 'id', type: 'BIGINT' }]);
      const pipeline = await ok(
        'mutation { createPipeline(input: { name: "cleaner", sql: "INSERT INTO clean SELECT id FROM raw_events WHERE id > 0" }) { id inputStreams { name } outputStream { name } } }',
      );
      expect(pipeline.createPipeline.inputStreams).toEqual([{ name: 'raw_events' }]);
      expect(pipeline.createPipeline.outputStream).toEqual({ name: 'clean' });

      const users = await ok('query ($id: ID!) { stream(id: $id) { pipelines { name } connections { name } } }', { id: clean.id });
      expect(users.stream).toEqual({ pipelines: [{ name: 'cleaner' }], connections: [] });

      const refused = await t.gql('mutation ($id: ID!) { deleteStream(id: $id) { deletedId } }', { id: clean.id }, { key });
      expect(codes(refused)).toEqual(['CONFLICT']);
      expect(refused.errors![0]!.message).toContain('pipeline "cleaner"');
      expect(refused.errors![0]!.extensions!.pipelines).toEqual(['cleaner']);
      const rename = await t.gql('mutation ($id: ID!) { updateStream(id: $id, input: { name: "tidy" }) { id } }', { id: clean.id }, { key });
      expect(codes(rename)).toEqual(['CONFLICT']);

      await ok('mutation ($id: ID!) { deletePipeline(id: $id) { deletedId } }', { id: pipeline.createPipeline.id });
      await ok('mutation ($id: ID!) { deleteStream(id: $id) { deletedId } }', { id: clean.id });
      expect(codes(await t.gql('query ($id: ID!) { stream(id: $id) { id } }', { id: clean.id }, { key }))).toEqual(['NOT_FOUND']);
    });

    it('pages with stable cursors in creation order', async () => {
      const { key: fresh } = await t.signUp('Pages');
      const names = Array.from({ length: 7 }, (_, i) => `s${i}`);
      for (const name of names) {
        await t.gql(
          `mutation ($name: String!) { createStream(input: { name: $name, kind: APPEND, fields: [{ name: "id", type: "INT" }] }) { id } }`,
          { name },
          { key: fresh },
        );
      }
      const seen: string[] = [];
      let after: string | null = null;
      for (;;) {
        const page: any = await t.gql(
          'query ($after: String) { streams(first: 3, after: $after) { pageInfo { hasNextPage endCursor } edges { node { name } } } }',
          { after },
          { key: fresh },
        );
        seen.push(...page.data.streams.edges.map((e: any) => e.node.name));
        if (!page.data.streams.pageInfo.hasNextPage) break;
        after = page.data.streams.pageInfo.endCursor;
      }
      expect(seen).toEqual(names);
      const last = await t.gql('{ streams(last: 2) { edges { node { name } } } }', {}, { key: fresh });
      expect(last.data!.streams.edges.map((e: any) => e.node.name)).toEqual(['s5', 's6']);
      const bad = await t.gql('{ streams(after: "garbage") { edges { node { name } } } }', {}, { key: fresh });
      expect(codes(bad)).toEqual(['VALIDATION']);
    });
  });

  describe('connections', () => {
    it('keeps secrets write-only across updates and validates against the connector', async () => {
      const stream = await createStream('events', [{ name: 'id', type: 'BIGINT' }, { name: 'name', type: 'STRING' }]);
      const created = await ok(
        `mutation ($input: CreateConnectionInput!) { createConnection(input: $input) {
          id connector type properties secretPropertyKeys taskSize taskCount desiredState actualState stream { name } } }`,
        {
          input: {
            name: 'events_in',
            connector: 'kafka',
            type: 'SOURCE',
            streamId: stream.id,
            taskCount: 2,
            properties: {
              topic: 'events',
              'properties.bootstrap.servers': 'broker:9092',
              'properties.security.protocol': 'SASL_SSL',
              'properties.sasl.mechanism': 'PLAIN',
              'sasl.username': 'events-reader',
              'sasl.password': 'secret-pw',
            },
          },
        },
      );
      expect(created.createConnection).toMatchObject({
        connector: 'kafka',
        type: 'SOURCE',
        taskSize: 'S',
        taskCount: 2,
        desiredState: 'INACTIVE',
        actualState: 'STOPPED',
        stream: { name: 'events' },
        secretPropertyKeys: ['sasl.password'],
      });
      expect(created.createConnection.properties).not.toHaveProperty('sasl.password');
      expect(created.createConnection.properties['sasl.username']).toBe('events-reader');

      // A free-form JAAS line an older version stored is dropped at the next update, not an error.
      await t.database.db
        .updateTable('connections')
        .set({ secret_properties: JSON.stringify({ 'sasl.password': 'secret-pw', 'properties.sasl.jaas.config': 'old' }) as never })
        .where('name', '=', 'events_in')
        .execute();

      // Update without the secret: it is kept. The stored row still has it, apart.
      const updated = await ok(
        'mutation ($id: ID!, $p: JSON) { updateConnection(id: $id, input: { properties: $p }) { properties secretPropertyKeys } }',
        {
          id: created.createConnection.id,
          p: {
            topic: 'events_v2',
            'properties.bootstrap.servers': 'broker:9092',
            'properties.security.protocol': 'SASL_SSL',
            'properties.sasl.mechanism': 'PLAIN',
            'sasl.username': 'events-reader',
          },
        },
      );
      expect(updated.updateConnection.properties.topic).toBe('events_v2');
      expect(updated.updateConnection.secretPropertyKeys).toEqual(['sasl.password']);
      const row = await t.database.db.selectFrom('connections').select(['secret_properties', 'spec_version']).where('name', '=', 'events_in').executeTakeFirstOrThrow();
      expect(row.secret_properties).toEqual({ 'sasl.password': 'secret-pw' });
      expect(row.spec_version).toBe(2);

      const sink = await t.gql(
        'mutation ($input: CreateConnectionInput!) { createConnection(input: $input) { id } }',
        { input: { name: 'gen_sink', connector: 'datagen', type: 'SINK', streamId: stream.id } },
        { key },
      );
      expect(codes(sink)).toEqual(['VALIDATION']);
      expect(sink.errors![0]!.extensions!.field).toEqual(['input', 'type']);
    });

    it('lists the connector catalog without a key', async () => {
      const result = await t.gql('{ connectors { name types options { key type required secret } } }');
      expect(result.errors).toBeUndefined();
      const names = result.data!.connectors.map((c: any) => c.name);
      expect(names).toEqual(expect.arrayContaining(['datagen', 'kafka']));
      const kafka = result.data!.connectors.find((c: any) => c.name === 'kafka');
      expect(kafka.options.find((o: any) => o.key === 'topic')).toMatchObject({ required: true, secret: false });
      expect(kafka.options.find((o: any) => o.key === 'sasl.password')).toMatchObject({ secret: true });
      expect(kafka.options.find((o: any) => o.key === 'properties.sasl.jaas.config')).toBeUndefined();
    });
  });

  describe('pipelines', () => {
    it('refuses to delete an active pipeline and exposes node(id)', async () => {
      await createStream('p_in', [{ name: 'id', type: 'BIGINT' }]);
      await createStream('p_out', [{ name: 'id', type: 'BIGINT' }]);
      const created = await ok('mutation { createPipeline(input: { name: "live", sql: "INSERT INTO p_out SELECT id FROM p_in" }) { id } }');
      const id = created.createPipeline.id;
      await ok('mutation ($id: ID!) { activatePipeline(id: $id) { desiredState } }', { id });
      const refused = await t.gql('mutation ($id: ID!) { deletePipeline(id: $id) { deletedId } }', { id }, { key });
      expect(codes(refused)).toEqual(['CONFLICT']);
      const node = await ok('query ($id: ID!) { node(id: $id) { __typename id ... on Pipeline { name desiredState } } }', { id });
      expect(node.node).toEqual({ __typename: 'Pipeline', id, name: 'live', desiredState: 'ACTIVE' });
      await ok('mutation ($id: ID!) { deactivatePipeline(id: $id) { desiredState } }', { id });
      await ok('mutation ($id: ID!) { deletePipeline(id: $id) { deletedId } }', { id });
    });

    it('rewires its streams when the SQL changes', async () => {
      await createStream('a1', [{ name: 'id', type: 'BIGINT' }]);
      await createStream('a2', [{ name: 'id', type: 'BIGINT' }]);
      await createStream('a_out', [{ name: 'id', type: 'BIGINT' }]);
      const created = await ok('mutation { createPipeline(input: { name: "rewire", sql: "INSERT INTO a_out SELECT id FROM a1" }) { id } }');
      const updated = await ok(
        `mutation ($id: ID!) { updatePipeline(id: $id, input: { sql: "INSERT INTO a_out SELECT id FROM a1 UNION ALL SELECT id FROM a2" }) {
          inputStreams { name } outputStream { name } } }`,
        { id: created.createPipeline.id },
      );
      expect(updated.updatePipeline.inputStreams.map((s: any) => s.name).sort()).toEqual(['a1', 'a2']);
    });
  });

  describe('concurrent requests', () => {
    const streamInput = (name: string) =>
      `mutation { createStream(input: { name: "${name}", kind: APPEND, fields: [{ name: "id", type: "BIGINT" }] }) { id } }`;

    it('of creations with one name, one wins and the others are CONFLICT', async () => {
      const { key: own } = await t.signUp('Same name');
      const results = await raceAtOnce(t.database, 'streams', Array.from({ length: 4 }, () => () => t.gql(streamInput('twin'), {}, { key: own })));
      expect(results.filter((r) => !r.errors)).toHaveLength(1);
      expect(results.flatMap(codes)).toEqual(['CONFLICT', 'CONFLICT', 'CONFLICT']);
    });

    // The delete finds no user of the stream while the creation finds the stream: one of
    // them must see the other, not the foreign key refuse whichever commits second.
    it.each([
      {
        user: 'pipeline',
        create: 'mutation { createPipeline(input: { name: "reader", sql: "INSERT INTO sink SELECT id FROM src" }) { id } }',
      },
      {
        user: 'connection',
        create: 'mutation ($s: ID!) { createConnection(input: { name: "reader", connector: "datagen", type: SOURCE, streamId: $s }) { id } }',
      },
    ])('a stream deleted while a $user that uses it is created: one of them is refused, as it would be one after the other', async ({ user, create }) => {
      const { key: own } = await t.signUp(`Delete racing a ${user}`);
      const src = (await t.gql(streamInput('src'), {}, { key: own })).data!.createStream.id;
      await t.gql(streamInput('sink'), {}, { key: own });
      const [deleted, created] = await raceAtOnce(t.database, ['streams', 'pipelines', 'connections'], [
        () => t.gql('mutation ($s: ID!) { deleteStream(id: $s) { deletedId } }', { s: src }, { key: own }),
        () => t.gql(create, { s: src }, { key: own }),
      ]);
      if (deleted!.errors) {
        expect(codes(deleted!)).toEqual(['CONFLICT']);
        expect(created!.errors).toBeUndefined();
      } else {
        expect(codes(created!)).toEqual([user === 'pipeline' ? 'VALIDATION' : 'NOT_FOUND']);
      }
    });

    it('a stream renamed while a pipeline that reads it is created: the pipeline never names a stream that is not there', async () => {
      const { key: own } = await t.signUp('Rename racing a pipeline');
      const src = (await t.gql(streamInput('src'), {}, { key: own })).data!.createStream.id;
      await t.gql(streamInput('sink'), {}, { key: own });
      const [renamed, created] = await raceAtOnce(t.database, ['streams', 'pipelines'], [
        () => t.gql('mutation ($s: ID!) { updateStream(id: $s, input: { name: "renamed" }) { name } }', { s: src }, { key: own }),
        () => t.gql('mutation { createPipeline(input: { name: "reader", sql: "INSERT INTO sink SELECT id FROM src" }) { id inputStreams { name } } }', {}, { key: own }),
      ]);
      if (created!.errors) {
        expect(renamed!.errors).toBeUndefined();
        expect(codes(created!)).toEqual(['VALIDATION']);
      } else {
        expect(created!.data!.createPipeline.inputStreams).toEqual([{ name: 'src' }]);
        expect(codes(renamed!)).toEqual(['CONFLICT']);
      }
    });
  });
});
