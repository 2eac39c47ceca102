/**
 * Calls `onIdle` once nothing has been in progress for `idleMs`. Operations begin and
 * end by id; ending an id twice, or one that never began, changes nothing.
 */
export class IdleTimer {
  private readonly active = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly idleMs: number,
    private readonly onIdle: () => void,
  ) {
    this.arm();
  }

  begin(id: string): void {
    this.active.add(id);
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  end(id: string): void {
    if (this.active.delete(id) && this.active.size === 0) this.arm();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private arm(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.stopped = true;
      this.onIdle();
    }, this.idleMs);
    // A socket waiting to be closed for idleness does not keep the process alive.
    this.timer.unref();
  }
}
