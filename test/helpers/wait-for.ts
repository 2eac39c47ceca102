const FIRST_DELAY_MS = 25;

/**
 * Polls `probe` until it answers, or fails after `timeoutMs`. The one rule: `undefined`
 * and `false` mean "not yet" (so does a throw; the last error is in the timeout's message),
 * and any other value is the answer, which waitFor returns. So a condition can be polled
 * as it is (`() => stats().idle === 2`), and a value as soon as it exists
 * (`() => rows.length >= 3 ? rows : undefined`).
 *
 * Probes start 25 ms apart and back off, doubling, to `maxDelayMs`: also the resolution
 * of a wait that is measured.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
  maxDelayMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let delay = Math.min(FIRST_DELAY_MS, maxDelayMs);
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, maxDelayMs);
  }
}
