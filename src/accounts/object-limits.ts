import type { Db } from '../platform/database.js';
import { QuotaExceededError } from '../platform/errors.js';
import * as repo from './account.repository.js';
import type { TierRow } from './account.table.js';

/** What an account holds a tier-limited number of. */
export type LimitedObject = 'streams' | 'pipelines' | 'connections';

const LIMIT: Record<LimitedObject, keyof TierRow & `max_${string}`> = {
  streams: 'max_streams',
  pipelines: 'max_pipelines',
  connections: 'max_connections',
};

/**
 * Refuses (QUOTA_EXCEEDED) to create one more `object` when the account holds its
 * tier's limit. Call inside the creating transaction, just before the insert: the
 * account's row stays locked until it commits, so concurrent creations are counted one
 * after another and cannot both take the last place.
 */
export async function assertRoomForOne(trx: Db, accountId: string, object: LimitedObject): Promise<void> {
  await repo.lockAccount(trx, accountId);
  const account = await repo.findAccount(trx, accountId);
  const limit = (await repo.findTier(trx, account!.tier))[LIMIT[object]];
  const { n } = await trx
    .selectFrom(object)
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('account_id', '=', accountId)
    .executeTakeFirstOrThrow();
  const held = Number(n);
  if (held + 1 > limit) throw new QuotaExceededError(object, limit, held + 1);
}

/** Creates one `object` within the tier's limit: the count and the insert in one transaction (see assertRoomForOne). */
export function insertWithinLimit<T>(db: Db, accountId: string, object: LimitedObject, insert: (trx: Db) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await assertRoomForOne(trx, accountId, object);
    return insert(trx);
  });
}
