import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { QuotaExceededError, UnavailableError } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import { SECOND } from '../platform/time.js';
import { findMarkedProcesses, isAlive, markerArg, spawnDetached, stopProcess } from '../runtime/local/processes.js';
import { flinkJson } from './flink-json.js';
import { LandedOnUsedTaskManagerError, type Lease, type PreviewPool, type TaskManagerState } from './preview-backend.js';
import type { SessionCluster } from './session-cluster.js';

type TmState = TaskManagerState;

interface TaskManager {
  readonly id: string;
  readonly pid: number;
  state: TmState;
}

export interface PoolOptions {
  readonly cluster: SessionCluster;
  /** Idle TaskManagers kept registered; 0: each preview starts its own (cold). */
  readonly size: number;
  /** How long a preview may wait for a TaskManager before it fails. */
  readonly queueTimeoutMs: number;
  /** Waiting previews beyond this fail at once. */
  readonly maxQueued?: number;
  /** TaskManagers alive at once (idle, starting and leased), whatever the demand. */
  readonly maxTaskManagers?: number;
  readonly logger: Logger;
  readonly javaBin?: string;
}

interface Waiter {
  readonly accountId: string;
  readonly maxForAccount: number;
  readonly requestedAt: number;
  readonly onPosition: (position: number) => void;
  lastPosition: number;
  grant(lease: Lease): void;
  fail(error: Error): void;
}

/** One holder at a time; waiters in order. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  held = false;

  async acquire(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((resolve) => (release = resolve));
    const previous = this.tail;
    this.tail = previous.then(() => next);
    await previous;
    this.held = true;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.held = false;
      release();
    };
  }
}

/**
 * One-slot TaskManagers for previews. N idle ones are kept registered; a preview leases
 * one and it is retired when the preview ends, never reused. Flink's standalone slot
 * manager offers no way to direct a job to one of several free slots, so submissions
 * are serialised with retirements by one lock: from the grant until the job is seen
 * running, no other preview is submitted and no TaskManager is retired, so the job can
 * only land on a fresh TaskManager (one that never ran anything). `landed()` checks
 * that against the JobManager's answer and fails the preview loudly otherwise.
 */
export class TaskManagerPool implements PreviewPool {
  private readonly tms = new Map<string, TaskManager>();
  private readonly waiters: Waiter[] = [];
  private readonly leasesByAccount = new Map<string, number>();
  private readonly lock = new Mutex();
  private counter = 0;
  private closed = false;
  private pumping = false;
  private started: Promise<void> | undefined;
  private readonly maxQueued: number;
  private readonly maxTaskManagers: number;
  private readonly starts = new Set<Promise<void>>();

  constructor(private readonly options: PoolOptions) {
    this.maxQueued = options.maxQueued ?? 64;
    this.maxTaskManagers = options.maxTaskManagers ?? options.size + 4;
  }

  private get log(): Logger {
    return this.options.logger;
  }

  /** Starts the cluster (or adopts it) and fills the pool; once. */
  start(): Promise<void> {
    this.started ??= (async () => {
      const { jobManagerUrl } = await this.options.cluster.start();
      // TaskManagers left by an earlier gateway may have run previews: retire them all.
      for (const p of await findMarkedProcesses(this.options.cluster.marker('tm'))) await stopProcess(p.pid, 10 * SECOND);
      await this.cancelRunningJobs(jobManagerUrl);
      this.replenish();
    })().catch((error) => {
      this.started = undefined;
      throw error;
    });
    return this.started;
  }

  private async cancelRunningJobs(jobManagerUrl: string): Promise<void> {
    const { jobs } = await flinkJson<{ jobs: { id: string; status: string }[] }>(`${jobManagerUrl}/jobs`);
    for (const job of jobs.filter((j) => !['FINISHED', 'FAILED', 'CANCELED'].includes(j.status))) {
      await flinkJson(`${jobManagerUrl}/jobs/${job.id}?mode=cancel`, { method: 'PATCH' }).catch(() => undefined);
    }
  }

  /** Counts by state, for tests, benchmarks and logs. */
  stats(): Record<TmState, number> & { queued: number } {
    const counts = { starting: 0, idle: 0, leased: 0, retiring: 0, queued: this.waiters.length };
    for (const tm of this.tms.values()) counts[tm.state] += 1;
    return counts;
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
    await this.start();
    return new Promise<Lease>((resolve, reject) => {
      const requestedAt = Date.now();
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
        requestedAt,
        onPosition,
        lastPosition: 0,
        grant: (lease) => {
          if (settled) return void lease.release();
          finish();
          resolve(lease);
        },
        fail: (error) => {
          if (settled) return;
          finish();
          reject(error);
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
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
      this.reportPositions();
      this.replenish();
      void this.pump();
    });
  }

  private held(accountId: string): number {
    return this.leasesByAccount.get(accountId) ?? 0;
  }

  private eligible(waiter: Waiter): boolean {
    return this.held(waiter.accountId) < waiter.maxForAccount;
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
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (;;) {
        const waiter = this.waiters.find((w) => this.eligible(w));
        const idle = [...this.tms.values()].find((tm) => tm.state === 'idle');
        if (!waiter || !idle || this.closed) return;
        const unlock = await this.lock.acquire();
        // The world may have moved while the lock was busy.
        const still = this.waiters.includes(waiter) && this.eligible(waiter);
        const tm = [...this.tms.values()].find((t) => t.state === 'idle');
        if (!still || !tm) {
          unlock();
          continue;
        }
        tm.state = 'leased';
        this.leasesByAccount.set(waiter.accountId, this.held(waiter.accountId) + 1);
        waiter.grant(this.makeLease(tm, waiter, unlock));
      }
    } finally {
      this.pumping = false;
    }
  }

  private makeLease(first: TaskManager, waiter: Waiter, unlock: () => void): Lease {
    let tm = first;
    let released: Promise<void> | undefined;
    const pool = this;
    const leaseMs = Date.now() - waiter.requestedAt;
    this.log.debug({ accountId: waiter.accountId, taskManager: tm.id, leaseMs }, 'TaskManager leased');
    const endWindow = () => {
      unlock();
      pool.replenish();
      void pool.pump();
    };
    return {
      get taskManagerId() {
        return tm.id;
      },
      leaseMs,
      landed(ids: readonly string[]) {
        try {
          const other = ids.filter((id) => id !== tm.id);
          if (other.length === 0) return;
          // While the window is held, only fresh TaskManagers have free slots; a job on
          // another fresh one is still alone there: the lease moves with it.
          const [landedId] = ids;
          const landedOn = landedId ? pool.tms.get(landedId) : undefined;
          if (ids.length === 1 && landedOn?.state === 'idle') {
            pool.log.info({ leased: tm.id, landed: landedOn.id }, 'preview landed on another fresh TaskManager; lease moved');
            tm.state = 'idle';
            landedOn.state = 'leased';
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
          pool.leasesByAccount.set(waiter.accountId, pool.held(waiter.accountId) - 1);
          await pool.retire(tm);
          void pool.pump();
        })();
        return released;
      },
    };
  }

  /** SIGTERM (the TaskManager deregisters at once), under the submission lock. */
  private async retire(tm: TaskManager): Promise<void> {
    tm.state = 'retiring';
    const unlock = await this.lock.acquire();
    try {
      await stopProcess(tm.pid, 10 * SECOND);
      await this.waitRegistered(tm.id, false, 20 * SECOND).catch((error) => this.log.warn({ err: error, taskManager: tm.id }, 'retired TaskManager still listed'));
    } finally {
      this.tms.delete(tm.id);
      unlock();
      await rm(join(this.options.cluster.dir, 'tm', tm.id), { recursive: true, force: true });
      this.log.debug({ taskManager: tm.id }, 'TaskManager retired');
      this.replenish();
    }
  }

  /** Starts TaskManagers until idle + starting covers the pool size and the eligible waiters. */
  private replenish(): void {
    if (this.closed || !this.started) return;
    const counts = this.stats();
    const demand = Math.max(0, this.waiters.filter((w) => this.eligible(w)).length - counts.idle);
    const wanted = this.options.size + demand - (counts.idle + counts.starting);
    const room = this.maxTaskManagers - this.tms.size;
    for (let i = 0; i < Math.min(wanted, room); i += 1) {
      const start = this.startTaskManager().finally(() => this.starts.delete(start));
      this.starts.add(start);
    }
  }

  private async startTaskManager(): Promise<void> {
    this.counter += 1;
    const id = `weir-tm-${this.counter}`;
    const cluster = this.options.cluster;
    const placeholder: TaskManager = { id, pid: -1, state: 'starting' };
    this.tms.set(id, placeholder);
    try {
      const distribution = await cluster.distribution();
      const dir = join(cluster.dir, 'tm', id);
      await rm(dir, { recursive: true, force: true });
      await mkdir(join(dir, 'tmp'), { recursive: true });
      const pid = await spawnDetached({
        command: this.options.javaBin ?? 'java',
        args: [
          ...distribution.jvmOptions,
          ...cluster.taskManagerJvm(),
          `-Djava.io.tmpdir=${join(dir, 'tmp')}`,
          `-Dlog4j2.configurationFile=${distribution.log4jConfig}`,
          markerArg(cluster.marker('tm', id)),
          '-cp',
          `${distribution.runnerJar}:${distribution.flinkClasspath}`,
          // TaskManagerRunner, after loading the classes a preview needs (pre-warmed).
          'dev.weir.runner.PreviewTaskManager',
          '--configDir',
          cluster.confDir,
          '-D',
          `taskmanager.resource-id=${id}`,
        ],
        logFile: join(dir, 'taskmanager.log'),
      });
      const tm: TaskManager = { id, pid, state: 'starting' };
      this.tms.set(id, tm);
      await this.waitRegistered(id, true, 90 * SECOND, () => isAlive(pid));
      if (this.closed) return;
      tm.state = 'idle';
      this.log.debug({ taskManager: id, pid }, 'TaskManager registered');
      void this.pump();
    } catch (error) {
      const tm = this.tms.get(id);
      this.tms.delete(id);
      if (tm && tm.pid > 0) await stopProcess(tm.pid, 5 * SECOND).catch(() => undefined);
      if (this.closed) return;
      this.log.error({ err: error, taskManager: id }, 'preview TaskManager did not start');
      await sleep(2 * SECOND); // do not spin on a machine that cannot start JVMs
      this.replenish();
    }
  }

  private async waitRegistered(id: string, present: boolean, timeoutMs: number, alive: () => boolean = () => true): Promise<void> {
    const { jobManagerUrl } = await this.options.cluster.start();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.closed && present) throw new Error('pool closed');
      if (!alive()) throw new Error(`TaskManager ${id} exited before it registered`);
      const { taskmanagers } = await flinkJson<{ taskmanagers: { id: string }[] }>(`${jobManagerUrl}/taskmanagers`).catch(
        () => ({ taskmanagers: undefined as { id: string }[] | undefined }),
      );
      if (taskmanagers && taskmanagers.some((tm) => tm.id === id) === present) return;
      if (Date.now() > deadline) throw new Error(`TaskManager ${id} ${present ? 'did not register' : 'stayed registered'} within ${timeoutMs} ms`);
      await sleep(100);
    }
  }

  /** Fails the waiters and waits for TaskManagers being started; the cluster's close() stops the processes. */
  async close(): Promise<void> {
    this.closed = true;
    for (const waiter of [...this.waiters]) waiter.fail(new UnavailableError('Previews are shutting down.'));
    await Promise.allSettled([...this.starts]);
  }
}
