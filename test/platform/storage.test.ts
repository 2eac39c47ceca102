import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { describe, expect, test } from 'vitest';
import { openDatabase, type Db } from '../../src/platform/database.js';
import { newId } from '../../src/platform/ids.js';
import { MIGRATIONS_DIR, migrateDown, migrateToLatest } from '../../src/platform/migrator.js';
import { describeDatabases } from '../helpers/postgres.js';

const migrationNames = async () =>
  (await readdir(MIGRATIONS_DIR))
    .filter((file) => file.endsWith('.up.sql'))
    .map((file) => file.slice(0, -'.up.sql'.length))
    .sort();

/** Tables in `public` other than kysely's own bookkeeping. */
async function weirTables(db: Db): Promise<string[]> {
  const { rows } = await sql<{ table_name: string }>`
    SELECT table_name FROM information_schema.tables
    WHERE table_schema = 'public' AND table_name NOT LIKE 'kysely_%'
    ORDER BY table_name`.execute(db);
  return rows.map((row) => row.table_name);
}

const insertAccount = (db: Db, id = newId()) =>
  db.insertInto('accounts').values({ id, name: `account-${id}`, tier: 'FREE' }).execute();

const countAccounts = async (db: Db, ids: string[]) =>
  Number(
    (
      await db
        .selectFrom('accounts')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('id', 'in', ids)
        .executeTakeFirstOrThrow()
    ).n,
  );

class SimulatedCrash extends Error {}

describeDatabases((label, open) => {
  test('migrations apply cleanly, and a second run applies nothing', async () => {
    const { db } = await open({ migrate: false });
    const names = await migrationNames();

    expect(await migrateToLatest(db)).toEqual(names.map((name) => `applied ${name}`));
    expect(await migrateToLatest(db)).toEqual([]);
    expect(await weirTables(db)).toEqual(expect.arrayContaining(['accounts', 'api_keys', 'tiers']));
  });

  test('migrateDown reverts every migration, and they apply again', async () => {
    const { db } = await open();
    const names = await migrationNames();

    for (const name of [...names].reverse()) expect(await migrateDown(db)).toEqual([`reverted ${name}`]);
    expect(await migrateDown(db)).toEqual([]);
    expect(await weirTables(db)).toEqual([]);

    expect(await migrateToLatest(db)).toEqual(names.map((name) => `applied ${name}`));
    await insertAccount(db);
  });

  test('the tiers are seeded', async () => {
    const { db } = await open();
    const tiers = await db.selectFrom('tiers').selectAll().orderBy('name').execute();

    expect(tiers.map((tier) => tier.name)).toEqual(['FREE', 'PAID']);
    for (const tier of tiers) expect(tier.max_active_jobs).toBeGreaterThan(0);
  });

  test('a transaction that fails between two inserts leaves nothing behind', async () => {
    const { db } = await open();
    const accountId = newId();

    const change = db.transaction().execute(async (trx) => {
      await insertAccount(trx, accountId);
      expect(await countAccounts(trx, [accountId])).toBe(1);
      throw new SimulatedCrash('crash between the account and its key');
    });

    await expect(change).rejects.toBeInstanceOf(SimulatedCrash);
    expect(await countAccounts(db, [accountId])).toBe(0);
    // The connection went back in a usable state.
    await insertAccount(db, accountId);
    expect(await countAccounts(db, [accountId])).toBe(1);
  });

  test(`a unique violation surfaces as SQLSTATE 23505 on ${label}`, async () => {
    const { db } = await open();
    const accountId = newId();
    await insertAccount(db);
    await insertAccount(db, accountId);

    const duplicate = insertAccount(db, accountId);

    await expect(duplicate).rejects.toMatchObject({ code: '23505' });
  });
});

describe('pglite only', () => {
  test('concurrent transactions are serialized and both commit', async () => {
    const handle = await openDatabase({ databaseUrl: undefined, pgliteDir: 'memory://' });
    try {
      await migrateToLatest(handle.db);
      const events: string[] = [];
      const ids: string[] = [];
      const change = (who: string) =>
        handle.db.transaction().execute(async (trx) => {
          events.push(`${who} begins`);
          const first = newId();
          ids.push(first);
          await insertAccount(trx, first);
          // Give the other transaction every chance to run in between, were it allowed to.
          await sleep(20);
          const second = newId();
          ids.push(second);
          await insertAccount(trx, second);
          events.push(`${who} commits`);
        });

      await Promise.all([change('a'), change('b')]);

      expect([
        ['a begins', 'a commits', 'b begins', 'b commits'],
        ['b begins', 'b commits', 'a begins', 'a commits'],
      ]).toContainEqual(events);
      expect(await countAccounts(handle.db, ids)).toBe(4);
    } finally {
      await handle.close();
    }
  });

  test('a database in a folder keeps its data across close and reopen', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'weir-pglite-'));
    try {
      const accountId = newId();
      const first = await openDatabase({ databaseUrl: undefined, pgliteDir: dir });
      await migrateToLatest(first.db);
      await insertAccount(first.db, accountId);
      await first.close();

      const reopened = await openDatabase({ databaseUrl: undefined, pgliteDir: dir });
      try {
        expect(await migrateToLatest(reopened.db)).toEqual([]);
        expect(await countAccounts(reopened.db, [accountId])).toBe(1);
      } finally {
        await reopened.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
