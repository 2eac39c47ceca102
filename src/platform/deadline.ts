/**
 * When a piece of work must stop: its signal aborts when the clock started by `start`
 * runs out, or when the parent signal (e.g. the client going away) aborts first.
 */
export class Deadline {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  readonly signal = this.controller.signal;

  constructor(parent?: AbortSignal) {
    if (parent?.aborted) this.controller.abort(parent.reason);
    else parent?.addEventListener('abort', () => this.controller.abort(parent.reason), { once: true });
  }

  /** After `ms`, the signal aborts with `reason()`. A second start keeps the first clock. */
  start(ms: number, reason: () => Error): void {
    if (this.timer || this.signal.aborted) return;
    this.timer = setTimeout(() => this.controller.abort(reason()), ms);
  }

  /** The work is done: the clock stops (the signal stays as it is). */
  clear(): void {
    clearTimeout(this.timer);
  }
}
