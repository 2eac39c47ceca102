import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf, endOf, runPreview, startPreviewGateway, type PreviewGateway } from '../../helpers/preview.js';
import { startTestPostgres, type TestPostgres } from '../../helpers/postgres.js';
import { waitFor } from '../../helpers/wait-for.js';

/**
 * A preview over a stream fed by `postgres-cdc` shows what happens to the table as it
 * happens: the snapshot's rows as INSERT, an update as UPDATE_BEFORE and UPDATE_AFTER, a
 * deletion as DELETE. Real Postgres, real Flink (the CDC job and the preview cluster).
 */

const PASSWORD = 'preview-source-pw';

let gateway: PreviewGateway;
let source: TestPostgres;
let key: string;
const loop = new AbortController();

async function ok(query: string, variables: Record<string, unknown> = {}) {
  const result = await gateway.t.gql(query, variables, { key });
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  return result.data!;
}

async function onSource(query: string) {
  const client = new pg.Client({ connectionString: source.url });
  await client.connect();
  try {
    return await client.query(query);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  source = await startTestPostgres({ settings: { wal_level: 'logical' }, password: PASSWORD });
  await onSource(`CREATE TABLE items (id bigint PRIMARY KEY, amount integer NOT NULL);
    INSERT INTO items SELECT i, 10 * i FROM generate_series(1, 5) AS i;`);
  gateway = await startPreviewGateway('cdc-preview', { poolSize: 1, queueTimeoutMs: 180_000 });
  // The preview gateway's reconciler is not started by its helper: the CDC job needs it.
  gateway.t.app.loop.start(loop.signal);
  ({ key } = await gateway.t.signUp('CDC preview'));
}, 600_000);

afterAll(async () => {
  loop.abort();
  await gateway?.t.app.loop.done();
  await gateway?.close();
  await source?.stop();
}, 180_000);

describe('a preview over a CDC stream', () => {
  it('shows the changes’ kinds: INSERT for the snapshot, UPDATE_BEFORE and UPDATE_AFTER, DELETE', async () => {
    const url = new URL(source.url);
    const stream = (
      await ok('mutation { createStream(input: { name: "items", kind: CHANGE, primaryKey: ["id"], fields: [{ name: "id", type: "BIGINT", nullable: false }, { name: "amount", type: "INT" }] }) { id } }')
    ).createStream.id as string;
    const cdc = (
      await ok('mutation ($input: CreateConnectionInput!) { createConnection(input: $input) { id } }', {
        input: {
          name: 'items_cdc',
          connector: 'postgres-cdc',
          type: 'SOURCE',
          streamId: stream,
          properties: { hostname: url.hostname, port: Number(url.port), 'database-name': url.pathname.slice(1), 'table-name': 'items', username: 'weir', password: PASSWORD },
        },
      })
    ).createConnection.id as string;
    await ok('mutation ($id: ID!) { activateConnection(id: $id) { id } }', { id: cdc });
    await waitFor('the snapshot in the stream', async () => {
      const data = await ok('query ($id: ID!) { streamRecords(streamId: $id, from: EARLIEST, limit: 10) { value } }', { id: stream });
      return data.streamRecords.length >= 5 ? true : undefined;
    }, 240_000);

    let changed: Promise<unknown> | undefined;
    const events = await runPreview(gateway.t, key, { sql: 'SELECT id, amount FROM items', rowLimit: 100, timeLimitSeconds: 90 }, (so_far) => {
      const rows = rowsOf(so_far);
      // Once the snapshot is on screen, change the table.
      if (!changed && rows.length >= 5) changed = onSource('UPDATE items SET amount = 999 WHERE id = 2; DELETE FROM items WHERE id = 4;');
      return rows.some((row: { kind: string }) => row.kind === 'DELETE');
    });
    await changed;
    expect(endOf(events), JSON.stringify(events.at(-1))).toBeUndefined();
    const rows = rowsOf(events).map((row: { kind: string; values: unknown[] }) => [row.kind, ...row.values.map(Number)]);
    expect(rows.slice(0, 5).sort()).toEqual([1, 2, 3, 4, 5].map((id) => ['INSERT', id, 10 * id]).sort());
    expect(rows.slice(5)).toEqual([
      ['UPDATE_BEFORE', 2, 20],
      ['UPDATE_AFTER', 2, 999],
      ['DELETE', 4, 40],
    ]);

    await ok('mutation ($id: ID!) { deactivateConnection(id: $id) { id } }', { id: cdc });
    await waitFor('the CDC job stopped', async () => {
      const data = await ok('query ($id: ID!) { connection(id: $id) { actualState } }', { id: cdc });
      return data.connection.actualState === 'STOPPED' ? true : undefined;
    }, 120_000);
  }, 600_000);
});
