import { setTimeout as sleep } from 'node:timers/promises';

export interface PollOptions {
  /** How long to keep probing. */
  readonly timeoutMs: number;
  /**
   * The pause between probes: a fixed number of milliseconds (default 100), or a first
   * pause that doubles up to `max`.
   */
  readonly intervalMs?: number | { readonly first: number; readonly max: number };
  /** Ends the wait early; the poll then rejects with the signal's reason. */
  readonly signal?: AbortSignal | undefined;
  /** What the poll rejects with when `timeoutMs` runs out (it may look something up first, say a log). */
  readonly timeoutError: () => Error | Promise<Error>;
}

/**
 * Calls `probe` until it returns something other than `undefined`, and returns that.
 * A probe that throws ends the poll with its error: a probe that may fail on its way to
 * success (a server still starting) catches that itself and returns `undefined`.
 * The last probe runs no later than `timeoutMs` after the first.
 */
export async function pollUntil<T>(probe: () => T | undefined | Promise<T | undefined>, options: PollOptions): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  const interval = options.intervalMs ?? 100;
  let pause = typeof interval === 'number' ? interval : interval.first;
  for (;;) {
    options.signal?.throwIfAborted();
    const value = await probe();
    if (value !== undefined) return value;
    const left = deadline - Date.now();
    if (left <= 0) throw await options.timeoutError();
    await sleep(Math.min(pause, left), undefined, options.signal ? { signal: options.signal } : {}).catch(() => undefined);
    if (typeof interval !== 'number') pause = Math.min(pause * 2, interval.max);
  }
}
