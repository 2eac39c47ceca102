/** One holder at a time; waiters in the order they asked. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  /** Holders and waiters; 0: free. */
  private pending = 0;

  get free(): boolean {
    return this.pending === 0;
  }

  /** Waits for the lock; the returned function releases it (once; later calls do nothing). */
  async acquire(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((resolve) => (release = resolve));
    const previous = this.tail;
    this.tail = previous.then(() => next);
    this.pending += 1;
    await previous;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.pending -= 1;
      release();
    };
  }

  /** Waits until every holder and waiter so far has released. */
  async idle(): Promise<void> {
    await this.tail;
  }
}
