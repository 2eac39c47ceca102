import { QuotaExceededError, UnavailableError } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import { Mutex } from '../platform/mutex.js';
import { SECOND } from '../platform/time.js';
import { LandedOnUsedTaskManagerError, type Lease, type TaskManagerState } from './preview-backend.js';

/** What the queue needs of a TaskManager; a pool's own record may carry more (a pid, a pod). */
export interface PooledTaskManager {
  readonly id: string;
  state: TaskManagerState;
}

export interface LeaseQueueOptions<T extends PooledTaskManager> {
  /** How long a preview may wait for a TaskManager before it fails. */
  readonly queueTimeoutMs: number;
  /** Waiting previews beyond this fail at once. */
  readonly maxQueued?: number;
  readonly logger: Logger;
  /** Makes the pool ready before a lease waits (its start()); a failure fails the lease. */
  readonly ready?: () => Promise<unknown>;
  /**
   * Ends a released TaskManager's life. Runs under the submission lock, so no job is
   * submitted meanwhile; the queue forgets the TaskManager afterwards, whatever happens.
   */
  readonly retire: (tm: T) => Promise<void>;
  /**
   * After every retirement, still under the lock: retires the idle-looking TaskManagers
   * that a job did run on (a preview that ended before it saw where its job landed).
   * A failure is logged; the next retirement looks again.
   */
  readonly sweep?: () => Promise<void>;
  /**
   * A TaskManager the pool does not hold (it registered after the pool last looked) on
   * which a job landed in its submission window: the pool returns a record of it, idle,
   * if it never ran anything, and the lease moves to it. Unset: such a landing fails.
   */
  readonly adopt?: (id: string) => T | undefined;
  /** A TaskManager was leased (granted, or a lease moved to it): the pool may record that where it outlives the gateway. */
  readonly leased?: (tm: T) => void;
  /** Supply or demand changed (a waiter came or went, a window ended, a TaskManager went). */
  readonly onChange?: () => void;
}

interface Waiter {
  readonly accountId: string;
  readonly maxForAccount: number;
  readonly requestedAt: number;
  readonly onPosition: (position: number) => void;
  lastPosition: number;
  grant(grant: (waiter: Waiter) => Lease): void;
  fail(error: Error): void;
}

/**
 * The part of a preview pool that does not care where TaskManagers live: a first-come
 * first-served queue of previews waiting for a fresh TaskManager (each told its position),
 * a limit of leases per account, and one lock that serialises submission windows (from a
 * grant until the job is seen running) with retirements, so that a job can only land on
 * a TaskManager that never ran anything. The pool supplies TaskManagers (`add`, then
 * `setState(id, 'idle')`) and the way to retire one; the queue hands them out.
 */
export class LeaseQueue<T extends PooledTaskManager> {
  private readonly tms = new Map<string, T>();
  private readonly waiters: Waiter[] = [];
  private readonly leasesByAccount = new Map<string, number>();
  private readonly lock = new Mutex();
  private readonly maxQueued: number;
  private pumping = false;
  private closed = false;

  constructor(private readonly options: LeaseQueueOptions<T>) {
    this.maxQueued = options.maxQueued ?? 64;
  }

  get(id: string): T | undefined {
    return this.tms.get(id);
  }

  values(): T[] {
    return [...this.tms.values()];
  }

  /** Adds a TaskManager (starting or idle); an idle one is granted at once to a waiter. */
  add(tm: T): void {
    this.tms.set(tm.id, tm);
    if (tm.state === 'idle') void this.pump();
  }

  setState(id: string, state: TaskManagerState): void {
    const tm = this.tms.get(id);
    if (!tm) return;
    tm.state = state;
    if (state === 'idle') void this.pump();
  }

  /** Forgets a TaskManager the pool saw go (it never started, or vanished while idle). */
  delete(id: string): void {
    this.tms.delete(id);
  }

  /** Counts by state, for tests, benchmarks and logs. */
  stats(): Record<TaskManagerState, number> & { queued: number } {
    const counts = { starting: 0, idle: 0, leased: 0, retiring: 0, queued: this.waiters.length };
    for (const tm of this.tms.values()) counts[tm.state] += 1;
    return counts;
  }

  /** Waiters that could take a TaskManager now (their account is under its limit). */
  eligibleWaiters(): number {
    return this.waiters.filter((w) => this.eligible(w)).length;
  }

  /** Runs `work` under the submission lock: no window is open and no retirement runs meanwhile. */
  async exclusive<R>(work: () => Promise<R>): Promise<R> {
    const unlock = await this.lock.acquire();
    try {
      return await work();
    } finally {
      unlock();
    }
  }

  /**
   * Waits for a fresh TaskManager. The caller holds the submission window until it calls
   * `landed()` (or `release()`), and must do one of them promptly.
   */
  async lease(
    accountId: string,
    maxForAccount: number,
    onPosition: (position: number) => void = () => {},
    signal?: AbortSignal,
  ): Promise<Lease> {
    if (this.closed) throw new UnavailableError('Previews are shutting down.');
    if (maxForAccount <= 0) throw new QuotaExceededError('concurrent previews', maxForAccount, 1);
    if (this.waiters.length >= this.maxQueued) {
      throw new UnavailableError(`Too many previews are waiting (${this.waiters.length}); try again shortly.`);
    }
    await this.options.ready?.();
    return new Promise<Lease>((resolve, reject) => {
      let settled = false;
      const finish = () => {
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        this.reportPositions();
      };
      const waiter: Waiter = {
        accountId,
        maxForAccount,
        requestedAt: Date.now(),
        onPosition,
        lastPosition: 0,
        grant: (grant) => {
          finish();
          resolve(grant(waiter));
        },
        fail: (error) => {
          if (settled) return;
          finish();
          reject(error);
          this.options.onChange?.();
        },
      };
      const timer = setTimeout(() => {
        waiter.fail(
          new UnavailableError(
            `No preview TaskManager became free within ${Math.round(this.options.queueTimeoutMs / SECOND)} s; try again shortly.`,
          ),
        );
      }, this.options.queueTimeoutMs);
      const onAbort = () => waiter.fail(new UnavailableError('The preview was cancelled while it waited for a TaskManager.'));
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
      // One that is granted at once is not told it queued.
      const grantable = this.lock.free && this.idle() !== undefined && this.waiters.find((w) => this.eligible(w)) === waiter;
      if (!grantable) this.reportPositions();
      this.options.onChange?.();
      void this.pump().finally(() => this.reportPositions());
    });
  }

  private held(accountId: string): number {
    return this.leasesByAccount.get(accountId) ?? 0;
  }

  private eligible(waiter: Waiter): boolean {
    return this.held(waiter.accountId) < waiter.maxForAccount;
  }

  private idle(): T | undefined {
    return [...this.tms.values()].find((tm) => tm.state === 'idle');
  }

  /** Position 1 is next; every waiter hears its position whenever it changes. */
  private reportPositions(): void {
    this.waiters.forEach((waiter, index) => {
      if (waiter.lastPosition !== index + 1) {
        waiter.lastPosition = index + 1;
        waiter.onPosition(index + 1);
      }
    });
  }

  /** Grants fresh TaskManagers to eligible waiters, first come first served. */
  async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (;;) {
        if (this.closed || !this.idle() || !this.waiters.some((w) => this.eligible(w))) return;
        const unlock = await this.lock.acquire();
        // The world may have moved while the lock was busy.
        const waiter = this.waiters.find((w) => this.eligible(w));
        const tm = this.idle();
        if (!waiter || !tm || this.closed) {
          unlock();
          continue;
        }
        tm.state = 'leased';
        this.options.leased?.(tm);
        this.leasesByAccount.set(waiter.accountId, this.held(waiter.accountId) + 1);
        waiter.grant((w) => this.makeLease(tm, w, unlock));
      }
    } finally {
      this.pumping = false;
    }
  }

  private makeLease(first: T, waiter: Waiter, unlock: () => void): Lease {
    let tm = first;
    let released: Promise<void> | undefined;
    const queue = this;
    const leaseMs = Date.now() - waiter.requestedAt;
    const log = this.options.logger;
    log.debug({ accountId: waiter.accountId, taskManager: tm.id, leaseMs }, 'TaskManager leased');
    const endWindow = () => {
      unlock();
      queue.options.onChange?.();
      void queue.pump();
    };
    return {
      get taskManagerId() {
        return tm.id;
      },
      leaseMs,
      landed(ids: readonly string[]) {
        try {
          if (ids.every((id) => id === tm.id)) return;
          // While the window is held, only fresh TaskManagers have free slots; a job on
          // another fresh one is still alone there: the lease moves with it.
          const [landedId] = ids;
          let landedOn = landedId === undefined ? undefined : queue.tms.get(landedId);
          if (landedId !== undefined && !landedOn && ids.length === 1) {
            landedOn = queue.options.adopt?.(landedId);
            if (landedOn) queue.tms.set(landedOn.id, landedOn);
          }
          if (ids.length === 1 && landedOn?.state === 'idle') {
            log.info({ leased: tm.id, landed: landedOn.id }, 'preview landed on another fresh TaskManager; lease moved');
            tm.state = 'idle';
            landedOn.state = 'leased';
            queue.options.leased?.(landedOn);
            tm = landedOn;
            return;
          }
          throw new LandedOnUsedTaskManagerError(tm.id, ids, landedOn ? ` (${landedOn.state})` : ' (not in the pool)');
        } finally {
          endWindow();
        }
      },
      release() {
        released ??= (async () => {
          endWindow();
          queue.leasesByAccount.set(waiter.accountId, queue.held(waiter.accountId) - 1);
          tm.state = 'retiring';
          const unlockRetirement = await queue.lock.acquire();
          try {
            await queue.options.retire(tm);
            log.debug({ taskManager: tm.id }, 'TaskManager retired');
            await queue.options.sweep?.().catch((error: unknown) => log.warn({ err: error }, 'looking for used TaskManagers failed'));
          } finally {
            queue.tms.delete(tm.id);
            unlockRetirement();
            queue.options.onChange?.();
            void queue.pump();
          }
        })();
        return released;
      },
    };
  }

  /** Fails the waiters; leases already granted end as their previews release them. */
  close(): void {
    this.closed = true;
    for (const waiter of [...this.waiters]) waiter.fail(new UnavailableError('Previews are shutting down.'));
  }
}
