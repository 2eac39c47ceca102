import * as accountRepo from '../../accounts/account.repository.js';
import type { Db } from '../../platform/database.js';
import type { TierLimits } from './kubernetes-options.js';

/** The limits of an account's tier, read from the database on every call (tiers can change). */
export function tierLimitsFromDb(db: Db): (accountId: string) => Promise<TierLimits> {
  return async (accountId) => {
    const account = await accountRepo.findAccount(db, accountId);
    if (!account) throw new Error(`account ${accountId} not found`);
    const tier = await accountRepo.findTier(db, account.tier);
    return { maxActiveJobs: tier.max_active_jobs, maxTaskCount: tier.max_task_count };
  };
}
