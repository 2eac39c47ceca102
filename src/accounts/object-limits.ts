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
export async function assertRoomForOne(
  trx: Db,
  accountId: string,
  object: LimitedObject,
  count: (db: Db, accountId: string) => Promise<number>,
): Promise<void> {
  await repo.lockAccount(trx, accountId);
  const account = await repo.findAccount(trx, accountId);
  const limit = (await repo.findTier(trx, account!.tier))[LIMIT[object]];
  const held = await count(trx, accountId);
  if (held + 1 > limit) throw new QuotaExceededError(object, limit, held + 1);
}
