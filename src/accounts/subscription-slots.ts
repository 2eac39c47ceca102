import { SubscriptionLimitExceededError } from '../platform/errors.js';
import { Tally } from '../platform/tally.js';
import type { Tier, TierRow } from './account.table.js';
import type { Actor } from './actor.js';

export type SubscriptionLimits = Pick<TierRow, 'max_subscriptions_per_key' | 'max_subscriptions_per_account'>;

/**
 * The open subscriptions of each API key and account, of every kind and over every
 * transport (WebSocket and SSE), bounded by the tier. Counted in this gateway process:
 * with several gateways a key may hold the limit on each.
 */
export class SubscriptionSlots {
  private readonly perKey = new Tally();
  private readonly perAccount = new Tally();

  constructor(private readonly limitsOf: (tier: Tier) => Promise<SubscriptionLimits>) {}

  /**
   * Takes a slot for the actor's key and account, or throws SubscriptionLimitExceededError.
   * Returns the release, which may be called more than once.
   */
  async take(actor: Actor): Promise<() => void> {
    const limits = await this.limitsOf(actor.tier);
    // Checked and counted with no await in between: concurrent subscribes cannot overshoot.
    if (this.perKey.get(actor.keyId) >= limits.max_subscriptions_per_key) {
      throw new SubscriptionLimitExceededError('key', limits.max_subscriptions_per_key);
    }
    if (this.perAccount.get(actor.accountId) >= limits.max_subscriptions_per_account) {
      throw new SubscriptionLimitExceededError('account', limits.max_subscriptions_per_account);
    }
    this.perKey.add(actor.keyId);
    this.perAccount.add(actor.accountId);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.perKey.remove(actor.keyId);
      this.perAccount.remove(actor.accountId);
    };
  }

  /** Open subscriptions of a key (for tests and metrics). */
  openForKey(keyId: string): number {
    return this.perKey.get(keyId);
  }

  /** Open subscriptions of an account, all its keys together (for tests and metrics). */
  openForAccount(accountId: string): number {
    return this.perAccount.get(accountId);
  }
}
