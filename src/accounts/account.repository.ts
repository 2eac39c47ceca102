import type { Db } from '../platform/database.js';
import { paginate, type PageQuery } from '../platform/pagination.js';
import type { AccountRow, ApiKeyRow, Role, Tier, TierRow } from './account.table.js';

export async function insertAccount(db: Db, account: { id: string; name: string; tier: Tier }): Promise<AccountRow> {
  return db.insertInto('accounts').values(account).returningAll().executeTakeFirstOrThrow();
}

export async function findAccount(db: Db, id: string): Promise<AccountRow | undefined> {
  return db.selectFrom('accounts').selectAll().where('id', '=', id).executeTakeFirst();
}

/**
 * Serialises an account's quota checks: a transaction that counts what the account holds
 * or runs takes this first, and a concurrent one waits here until it commits.
 */
export async function lockAccount(db: Db, accountId: string): Promise<void> {
  await db.selectFrom('accounts').select('id').where('id', '=', accountId).forUpdate().execute();
}

export async function findTier(db: Db, tier: Tier): Promise<TierRow> {
  return db.selectFrom('tiers').selectAll().where('name', '=', tier).executeTakeFirstOrThrow();
}

export async function insertApiKey(
  db: Db,
  key: { id: string; account_id: string; name: string; role: Role; prefix: string; key_hash: Buffer },
): Promise<ApiKeyRow> {
  return db.insertInto('api_keys').values(key).returningAll().executeTakeFirstOrThrow();
}

/** Live (unrevoked) keys with this prefix, with their account's tier. */
export async function findLiveKeysByPrefix(db: Db, prefix: string) {
  return db
    .selectFrom('api_keys')
    .innerJoin('accounts', 'accounts.id', 'api_keys.account_id')
    .select([
      'api_keys.id',
      'api_keys.account_id',
      'api_keys.role',
      'api_keys.key_hash',
      'api_keys.last_used_at',
      'accounts.tier',
    ])
    .where('api_keys.prefix', '=', prefix)
    .where('api_keys.revoked_at', 'is', null)
    .execute();
}

export async function touchApiKey(db: Db, id: string, at: Date): Promise<void> {
  await db.updateTable('api_keys').set({ last_used_at: at }).where('id', '=', id).execute();
}

export async function findApiKey(db: Db, accountId: string, id: string): Promise<ApiKeyRow | undefined> {
  return db
    .selectFrom('api_keys')
    .selectAll()
    .where('account_id', '=', accountId)
    .where('id', '=', id)
    .executeTakeFirst();
}

export async function revokeApiKey(db: Db, accountId: string, id: string, at: Date): Promise<ApiKeyRow | undefined> {
  return db
    .updateTable('api_keys')
    .set({ revoked_at: at })
    .where('account_id', '=', accountId)
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .returningAll()
    .executeTakeFirst();
}

export async function countLiveAdminKeys(db: Db, accountId: string): Promise<number> {
  const row = await db
    .selectFrom('api_keys')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('account_id', '=', accountId)
    .where('role', '=', 'ADMIN')
    .where('revoked_at', 'is', null)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function listApiKeys(db: Db, accountId: string, page: PageQuery): Promise<ApiKeyRow[]> {
  return paginate(db.selectFrom('api_keys').selectAll().where('account_id', '=', accountId), 'id', page).execute();
}
