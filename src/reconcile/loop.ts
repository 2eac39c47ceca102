import type { Logger } from '../platform/logger.js';
import { SECOND } from '../platform/time.js';
import type { Reconciler } from './reconciler.js';

const MAX_BACKOFF_MS = 30 * SECOND;

/**
 * Runs reconciler passes every `intervalMs`, and at once when woken (an activation).
 * Errors are logged and retried with jittered exponential backoff; the loop only ends
 * when its signal aborts.
 */
export class ReconcileLoop {
  private wakeUp: (() => void) | undefined;
  private pending = false;
  private stopped: Promise<void> | undefined;

  constructor(
    private readonly reconciler: Reconciler,
    private readonly intervalMs: number,
    private readonly logger: Logger,
  ) {}

  /** Asks for a pass as soon as the current one (if any) ends. */
  wake(): void {
    this.pending = true;
    this.wakeUp?.();
  }

  start(signal: AbortSignal): void {
    this.stopped ??= this.run(signal);
  }

  /** Resolves when the loop has ended (after its signal aborted). */
  async done(): Promise<void> {
    await this.stopped;
  }

  private async run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      this.pending = false;
      let delay = this.intervalMs;
      try {
        const result = await this.reconciler.pass();
        if (result.applied || result.removed || result.transitions) this.logger.debug(result, 'reconcile pass');
        failures = 0;
      } catch (error) {
        failures += 1;
        delay = Math.min(MAX_BACKOFF_MS, this.intervalMs * 2 ** Math.min(failures, 5));
        delay = delay / 2 + Math.random() * (delay / 2);
        this.logger.error({ err: error, failures, retryInMs: Math.round(delay) }, 'reconcile pass failed');
      }
      if (!this.pending) await this.sleep(delay, signal);
    }
  }

  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    // Aborted during the pass that just ended: its 'abort' event has been and gone.
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', finish);
        this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(finish, ms);
      signal.addEventListener('abort', finish, { once: true });
      this.wakeUp = finish;
    });
  }
}
