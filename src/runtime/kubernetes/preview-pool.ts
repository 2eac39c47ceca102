import { setTimeout as sleep } from 'node:timers/promises';
import { UnavailableError } from '../../platform/errors.js';
import type { Logger } from '../../platform/logger.js';
import { SECOND } from '../../platform/time.js';
import { describeFailure, flinkJson } from '../../flink/flink-rest.js';
import { JobPlacements } from '../../flink/job-placement.js';
import { LeaseQueue, type PooledTaskManager } from '../../preview/lease-queue.js';
import type { Lease, PreviewEndpoints, PreviewPool, TaskManagerState } from '../../preview/preview-backend.js';
import { pollUntil } from '../../platform/poll.js';

/** What the pool needs of the session cluster (KubernetesPreviewCluster). */
export interface TaskManagerPods {
  start(): Promise<PreviewEndpoints>;
  /** Deletes the TaskManager's pod (its name is the TaskManager id); false if already gone. */
  retireTaskManager(podName: string): Promise<boolean>;
  /** Records on the pod that it was leased, so that a restarted gateway retires it; false if gone. */
  markLeased(podName: string): Promise<boolean>;
  /** Those of the named pods that carry that record. */
  leasedTaskManagers(podNames: readonly string[]): Promise<Set<string>>;
}

export interface KubernetesPreviewPoolOptions {
  readonly cluster: TaskManagerPods;
  /** How long a preview may wait for a TaskManager; also how long start() waits for the JobManager. */
  readonly queueTimeoutMs: number;
  /** Waiting previews beyond this fail at once. */
  readonly maxQueued?: number;
  /** How often the JobManager is asked for its TaskManagers. Default 500 ms. */
  readonly pollIntervalMs?: number;
  /** How long a retirement waits for the JobManager to stop listing the TaskManager. Default 30 s. */
  readonly retireTimeoutMs?: number;
  readonly logger: Logger;
}

/** A TaskManager as `GET /taskmanagers` lists it. */
interface TaskManagerInfo {
  readonly id: string;
  readonly slotsNumber: number;
  readonly freeSlots: number;
}

/**
 * One-slot TaskManagers for previews on Kubernetes. Flink's native resource manager
 * starts the TaskManager pods itself and keeps `slotmanager.redundant-taskmanager-num`
 * of them idle, so this pool starts nothing: it learns of TaskManagers from the
 * JobManager (`GET /taskmanagers`; on native Kubernetes a TaskManager's id is its pod's
 * name), leases those that never ran anything through a LeaseQueue, and retires a
 * leased one by deleting its pod; Flink then starts a replacement.
 *
 * Fresh means: listed with every slot free and never leased, landed on or retired by
 * this gateway. A lease is also recorded on the pod (an annotation). At start (a
 * restarted gateway) and after every retirement, TaskManagers that a job the JobManager
 * still knows ran on are retired too, and at start also those with a busy slot or a pod
 * that records a lease. One gateway per preview cluster: the submission lock is in-process.
 */
export class KubernetesPreviewPool implements PreviewPool {
  private readonly queue: LeaseQueue<PooledTaskManager>;
  /** TaskManagers that were leased, ran a job or were retired: never granted again. */
  private readonly used = new Set<string>();
  /** TaskManagers whose pods this pool deleted (a slow JobManager may list them a while longer). */
  private readonly retired = new Set<string>();
  private readonly placements: JobPlacements;
  private readonly pollIntervalMs: number;
  private readonly retireTimeoutMs: number;
  private readonly stop = new AbortController();
  /** Leases being recorded on their pods. */
  private readonly marking = new Set<Promise<void>>();
  private jobManagerUrl: string | undefined;
  private started: Promise<void> | undefined;
  private polling: Promise<void> | undefined;

  constructor(private readonly options: KubernetesPreviewPoolOptions) {
    this.pollIntervalMs = options.pollIntervalMs ?? 500;
    this.retireTimeoutMs = options.retireTimeoutMs ?? 30 * SECOND;
    this.placements = new JobPlacements(options.logger);
    this.queue = new LeaseQueue<PooledTaskManager>({
      queueTimeoutMs: options.queueTimeoutMs,
      maxQueued: options.maxQueued,
      logger: options.logger,
      ready: () => this.start(),
      retire: (tm) => this.retirePod(tm.id),
      sweep: async () => this.retireUsed(await this.listTaskManagers(), false),
      adopt: (id) => (this.used.has(id) ? undefined : { id, state: 'idle' }),
      leased: (tm) => this.markLeased(tm.id),
    });
  }

  private get log(): Logger {
    return this.options.logger;
  }

  /** Applies the session cluster, waits for its JobManager, retires leftovers of an earlier gateway; once. */
  start(): Promise<void> {
    this.started ??= (async () => {
      const { jobManagerUrl } = await this.options.cluster.start();
      this.jobManagerUrl = jobManagerUrl;
      const listing = await this.firstListing(jobManagerUrl);
      await this.queue.exclusive(() => this.retireUsed(listing, true));
      this.refresh(listing);
      this.polling ??= this.poll(this.stop.signal);
    })().catch((error: unknown) => {
      this.started = undefined;
      throw error;
    });
    return this.started;
  }

  lease(accountId: string, maxForAccount: number, onPosition?: (position: number) => void, signal?: AbortSignal): Promise<Lease> {
    return this.queue.lease(accountId, maxForAccount, onPosition, signal);
  }

  stats(): Record<TaskManagerState, number> & { queued: number } {
    return this.queue.stats();
  }

  /** Fails the waiters and stops watching the JobManager; the cluster and its pods stay. */
  async close(): Promise<void> {
    this.queue.close();
    this.stop.abort();
    await this.polling;
    await Promise.all(this.marking);
  }

  /**
   * Records the lease on the pod, off the preview's critical path: a restarted gateway
   * retires the pod even after the JobManager forgot the job (an hour after it ended).
   * A failure only weakens that, so it is logged, not thrown.
   */
  private markLeased(id: string): void {
    const marked = this.options.cluster
      .markLeased(id)
      .then(() => undefined)
      .catch((error: unknown) => this.log.warn({ err: error, taskManager: id }, 'recording a preview lease on its pod failed'))
      .finally(() => this.marking.delete(marked));
    this.marking.add(marked);
  }

  private url(path: string): string {
    if (!this.jobManagerUrl) throw new Error('the preview pool has not started');
    return `${this.jobManagerUrl}${path}`;
  }

  private async listTaskManagers(): Promise<TaskManagerInfo[]> {
    const { taskmanagers } = await flinkJson<{ taskmanagers?: TaskManagerInfo[] }>(this.url('/taskmanagers'), { timeoutMs: 5 * SECOND });
    return taskmanagers ?? [];
  }

  /** The JobManager's first answer; a cluster just applied needs a while to come up. */
  private async firstListing(jobManagerUrl: string): Promise<TaskManagerInfo[]> {
    let failure: unknown;
    const shuttingDown = () => new UnavailableError('Previews are shutting down.');
    return pollUntil(
      () =>
        this.listTaskManagers().catch((error: unknown) => {
          if (this.stop.signal.aborted) throw shuttingDown();
          failure = error;
          return undefined;
        }),
      {
        timeoutMs: this.options.queueTimeoutMs,
        intervalMs: Math.min(SECOND, this.pollIntervalMs),
        signal: this.stop.signal,
        timeoutError: () =>
          new UnavailableError(
            `The preview JobManager (${jobManagerUrl}) did not answer within ${Math.round(this.options.queueTimeoutMs / SECOND)} s: ${describeFailure(failure)}`,
            { cause: failure },
          ),
      },
    ).catch((error: unknown) => {
      throw this.stop.signal.aborted ? shuttingDown() : error;
    });
  }

  /** Keeps the pool's idea of idle TaskManagers in step with the JobManager's; backs off while it does not answer. */
  private async poll(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        this.refresh(await this.listTaskManagers());
        failures = 0;
      } catch (error) {
        failures += 1;
        if (failures === 1 || failures % 50 === 0) this.log.warn({ err: error, failures }, 'listing preview TaskManagers failed');
      }
      const backoff = Math.min(this.pollIntervalMs * 2 ** failures, 10 * SECOND) * (0.5 + Math.random() / 2);
      await sleep(failures ? backoff : this.pollIntervalMs, undefined, { signal }).catch(() => undefined);
    }
  }

  private refresh(listing: readonly TaskManagerInfo[]): void {
    const listed = new Set(listing.map((tm) => tm.id));
    for (const tm of this.queue.values()) {
      if (tm.state === 'idle' && !listed.has(tm.id)) {
        // Gone without us (Flink released it, or its pod was deleted): never back.
        this.used.add(tm.id);
        this.queue.delete(tm.id);
        this.log.info({ taskManager: tm.id }, 'idle preview TaskManager went away');
      }
    }
    for (const tm of listing) {
      const fresh = tm.slotsNumber > 0 && tm.freeSlots === tm.slotsNumber && !this.used.has(tm.id) && !this.queue.get(tm.id);
      if (fresh) this.queue.add({ id: tm.id, state: 'idle' });
    }
  }

  /** Deletes a TaskManager's pod and waits (bounded) until the JobManager no longer lists it. */
  private async retirePod(id: string): Promise<void> {
    this.used.add(id);
    this.queue.setState(id, 'retiring');
    try {
      await this.options.cluster.retireTaskManager(id);
      this.retired.add(id);
      await this.waitUnlisted(id).catch((error) => this.log.warn({ err: error, taskManager: id }, 'retired TaskManager still listed'));
    } finally {
      this.queue.delete(id);
    }
  }

  private async waitUnlisted(id: string): Promise<void> {
    await pollUntil(
      async () => {
        const listing = await this.listTaskManagers().catch(() => undefined);
        return (listing && !listing.some((tm) => tm.id === id)) || undefined;
      },
      {
        timeoutMs: this.retireTimeoutMs,
        timeoutError: () => new Error(`TaskManager ${id} stayed registered for ${this.retireTimeoutMs} ms after its pod was deleted`),
      },
    );
  }

  /**
   * Retires the listed TaskManagers a job the JobManager knows (running or ended) ran on,
   * and at start also those with a busy slot or a pod that records a lease (an earlier
   * gateway's). Leased ones are left to their previews.
   */
  private async retireUsed(listing: readonly TaskManagerInfo[], atStart: boolean): Promise<void> {
    const ran = await this.placements.taskManagersOfJobs(this.url(''));
    if (atStart) for (const id of await this.options.cluster.leasedTaskManagers(listing.map((tm) => tm.id))) ran.add(id);
    for (const id of ran) this.used.add(id);
    const victims = listing.filter((tm) => {
      const state = this.queue.get(tm.id)?.state;
      if (state === 'leased' || state === 'retiring' || this.retired.has(tm.id)) return false;
      return ran.has(tm.id) || (atStart && tm.freeSlots < tm.slotsNumber);
    });
    if (victims.length === 0) return;
    this.log.info({ taskManagers: victims.map((tm) => tm.id), atStart }, 'retiring preview TaskManagers that ran a job');
    const results = await Promise.allSettled(victims.map((tm) => this.retirePod(tm.id)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}
