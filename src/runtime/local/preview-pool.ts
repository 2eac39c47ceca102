import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../platform/logger.js';
import { SECOND } from '../../platform/time.js';
import { findMarkedProcesses, hasExited, isRunning, markerArg, spawnDetached, stopProcess, type RunningProcess } from './processes.js';
import { flinkJson, hasEnded } from '../../flink/flink-rest.js';
import { JobPlacements } from '../../flink/job-placement.js';
import { LeaseQueue, type PooledTaskManager } from '../../preview/lease-queue.js';
import type { Lease, PreviewPool, TaskManagerState } from '../../preview/preview-backend.js';
import type { LocalPreviewCluster } from './preview-cluster.js';
import { pollUntil } from '../../platform/poll.js';

interface TaskManager extends PooledTaskManager {
  /** Undefined until the process is spawned. */
  process?: RunningProcess;
}

export interface LocalPreviewPoolOptions {
  readonly cluster: LocalPreviewCluster;
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

/**
 * One-slot TaskManagers for previews, as processes of this machine. N idle ones are kept
 * registered (pre-warmed: see dev.weir.runner.PreviewTaskManager); a preview leases one
 * through the LeaseQueue (which serialises submissions with retirements, so a job can
 * only land on a TaskManager that never ran anything), and it is retired (SIGTERM: it
 * deregisters at once) when the preview ends, never reused. A replacement starts the
 * moment one is leased.
 */
export class LocalPreviewPool implements PreviewPool {
  private readonly queue: LeaseQueue<TaskManager>;
  private readonly placements: JobPlacements;
  private counter = 0;
  private closed = false;
  private started: Promise<void> | undefined;
  private readonly maxTaskManagers: number;
  private readonly starts = new Set<Promise<void>>();

  constructor(private readonly options: LocalPreviewPoolOptions) {
    this.maxTaskManagers = options.maxTaskManagers ?? options.size + 4;
    this.placements = new JobPlacements(options.logger);
    this.queue = new LeaseQueue<TaskManager>({
      queueTimeoutMs: options.queueTimeoutMs,
      maxQueued: options.maxQueued,
      logger: options.logger,
      ready: () => this.start(),
      retire: (tm) => this.stopTaskManager(tm),
      sweep: () => this.retireUsed(),
      onChange: () => this.replenish(),
    });
  }

  private get log(): Logger {
    return this.options.logger;
  }

  /**
   * Starts the cluster (or adopts it) and fills the pool, once; then, at every lease,
   * replaces idle TaskManagers whose process is gone.
   */
  start(): Promise<void> {
    if (this.started) return this.started.then(() => this.replaceGone());
    this.started = (async () => {
      const { jobManagerUrl } = await this.options.cluster.start();
      // TaskManagers left by an earlier gateway may have run previews: retire them all.
      for (const p of await findMarkedProcesses(this.options.cluster.marker('tm'))) await stopProcess(p, 10 * SECOND);
      await this.cancelRunningJobs(jobManagerUrl);
      this.replenish();
    })().catch((error) => {
      this.started = undefined;
      throw error;
    });
    return this.started;
  }

  /**
   * An idle TaskManager whose process is gone (killed, or stopped with a JobManager that
   * died and was started again: see LocalPreviewCluster.heal) leaves the pool, and a new one
   * replaces it. Checked by pid (`kill -0` and /proc) per idle TaskManager. A preview has
   * called the cluster's start() (which heals it) just before it leases.
   */
  private async replaceGone(): Promise<void> {
    const idle = this.queue.values().filter((tm) => tm.state === 'idle');
    const exited = await Promise.all(idle.map((tm) => !tm.process || hasExited(tm.process)));
    // Still idle: one granted meanwhile is its lease's to fail and retire.
    const gone = idle.filter((tm, i) => exited[i] && tm.state === 'idle');
    if (gone.length === 0) return;
    for (const tm of gone) this.queue.delete(tm.id);
    this.log.warn({ taskManagers: gone.map((tm) => tm.id) }, 'idle preview TaskManager processes are gone; replacing them');
    this.replenish();
  }

  private async cancelRunningJobs(jobManagerUrl: string): Promise<void> {
    const { jobs } = await flinkJson<{ jobs: { id: string; status: string }[] }>(`${jobManagerUrl}/jobs`);
    for (const job of jobs.filter((j) => !hasEnded(j.status))) {
      await flinkJson(`${jobManagerUrl}/jobs/${job.id}?mode=cancel`, { method: 'PATCH' }).catch(() => undefined);
    }
  }

  stats(): Record<TaskManagerState, number> & { queued: number } {
    return this.queue.stats();
  }

  lease(accountId: string, maxForAccount: number, onPosition?: (position: number) => void, signal?: AbortSignal): Promise<Lease> {
    return this.queue.lease(accountId, maxForAccount, onPosition, signal);
  }

  /** SIGTERM (the TaskManager deregisters at once); under the submission lock. */
  private async stopTaskManager(tm: TaskManager): Promise<void> {
    try {
      if (tm.process) await stopProcess(tm.process, 10 * SECOND);
      await this.waitRegistered(tm.id, false, 20 * SECOND).catch((error) => {
        if (!this.closed) this.log.warn({ err: error, taskManager: tm.id }, 'retired TaskManager still listed');
      });
    } finally {
      await rm(join(this.options.cluster.dir, 'tm', tm.id), { recursive: true, force: true });
    }
  }

  /** Under the submission lock: retires idle TaskManagers that a job the JobManager knows ran on. */
  private async retireUsed(): Promise<void> {
    if (this.closed) return; // the cluster's close() stops every TaskManager
    const { jobManagerUrl } = await this.options.cluster.start();
    const ran = await this.placements.taskManagersOfJobs(jobManagerUrl);
    for (const tm of this.queue.values()) {
      if (tm.state !== 'idle' || !ran.has(tm.id)) continue;
      this.log.warn({ taskManager: tm.id }, 'an idle preview TaskManager ran a job; retiring it');
      this.queue.setState(tm.id, 'retiring');
      try {
        await this.stopTaskManager(tm);
      } finally {
        this.queue.delete(tm.id);
      }
    }
  }

  /** Starts TaskManagers until idle + starting covers the pool size and the eligible waiters. */
  private replenish(): void {
    if (this.closed || !this.started) return;
    const counts = this.queue.stats();
    const demand = Math.max(0, this.queue.eligibleWaiters() - counts.idle);
    const wanted = this.options.size + demand - (counts.idle + counts.starting);
    const room = this.maxTaskManagers - this.queue.values().length;
    for (let i = 0; i < Math.min(wanted, room); i += 1) {
      const start = this.startTaskManager().finally(() => this.starts.delete(start));
      this.starts.add(start);
    }
  }

  private async startTaskManager(): Promise<void> {
    this.counter += 1;
    const id = `weir-tm-${this.counter}`;
    const cluster = this.options.cluster;
    const tm: TaskManager = { id, state: 'starting' };
    this.queue.add(tm);
    try {
      const distribution = await cluster.distribution();
      const dir = join(cluster.dir, 'tm', id);
      await rm(dir, { recursive: true, force: true });
      await mkdir(join(dir, 'tmp'), { recursive: true });
      const process = await spawnDetached({
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
      tm.process = process;
      await this.waitRegistered(id, true, 90 * SECOND, () => isRunning(process));
      if (this.closed) return;
      this.log.debug({ taskManager: id, pid: process.pid }, 'TaskManager registered');
      this.queue.setState(id, 'idle');
    } catch (error) {
      this.queue.delete(id);
      if (tm.process) await stopProcess(tm.process, 5 * SECOND).catch(() => undefined);
      if (this.closed) return;
      this.log.error({ err: error, taskManager: id }, 'preview TaskManager did not start');
      await sleep(2 * SECOND); // do not spin on a machine that cannot start JVMs
      this.replenish();
    }
  }

  private async waitRegistered(id: string, present: boolean, timeoutMs: number, alive: () => Promise<boolean> = async () => true): Promise<void> {
    const { jobManagerUrl } = await this.options.cluster.start();
    await pollUntil(
      async () => {
        if (this.closed && present) throw new Error('pool closed');
        if (!(await alive())) throw new Error(`TaskManager ${id} exited before it registered`);
        const { taskmanagers } = await flinkJson<{ taskmanagers: { id: string }[] }>(`${jobManagerUrl}/taskmanagers`).catch(
          () => ({ taskmanagers: undefined as { id: string }[] | undefined }),
        );
        return (taskmanagers && taskmanagers.some((tm) => tm.id === id) === present) || undefined;
      },
      { timeoutMs, timeoutError: () => new Error(`TaskManager ${id} ${present ? 'did not register' : 'stayed registered'} within ${timeoutMs} ms`) },
    );
  }

  /** Fails the waiters and waits for TaskManagers being started; the cluster's close() stops the processes. */
  async close(): Promise<void> {
    this.closed = true;
    this.queue.close();
    await Promise.allSettled([...this.starts]);
  }
}
