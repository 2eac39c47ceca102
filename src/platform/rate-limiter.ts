import { RateLimitedError } from './errors.js';
import { MINUTE } from './time.js';

/**
 * A token bucket per key (a client address), refilled continuously. In memory: each
 * gateway replica limits on its own, which is enough to stop one client flooding signUp.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one token for `key` or throws RateLimitedError with the wait. */
  take(key: string): void {
    const now = this.now();
    const ratePerMs = this.perMinute / MINUTE;
    const bucket = this.buckets.get(key) ?? { tokens: this.perMinute, at: now };
    bucket.tokens = Math.min(this.perMinute, bucket.tokens + (now - bucket.at) * ratePerMs);
    bucket.at = now;
    if (bucket.tokens < 1) {
      this.buckets.set(key, bucket);
      throw new RateLimitedError(Math.ceil((1 - bucket.tokens) / ratePerMs));
    }
    bucket.tokens -= 1;
    this.buckets.set(key, bucket);
    if (this.buckets.size > 10_000) this.sweep(now);
  }

  /** Forgets full buckets so the map does not grow with every address ever seen. */
  private sweep(now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + (now - bucket.at) * (this.perMinute / MINUTE) >= this.perMinute) this.buckets.delete(key);
    }
  }
}
