import type { Db } from '../platform/database.js';
import type { Logger } from '../platform/logger.js';
import * as jobRepo from '../jobs/job.repository.js';
import type { JobStateRow } from '../jobs/job.repository.js';
import type { ActualState } from '../jobs/job.table.js';
import type { StatusEvents } from '../jobs/status-events.js';
import { RuntimeRejectedError, type ObservedJob, type Runtime } from '../runtime/runtime.js';
import {
  countRestarts,
  decideRestart,
  DEFAULT_RESTART_POLICY,
  HALF_MADE_REASON,
  isRuntimeRestart,
  overBudget,
  REDEPLOY_REASON,
  restartReason,
  RESUME_REASON,
  type RestartPolicy,
} from './restart-policy.js';
import { loadJobSpec } from '../jobs/job-spec-loader.js';

export interface ReconcilerOptions {
  readonly restartPolicy?: RestartPolicy;
  /** The clock backoffs are timed by (tests). */
  readonly now?: () => number;
  /** Jitter of backoffs, in [0, 1). */
  readonly random?: () => number;
}

/** Records an observed state; true when that was a change (a transition). */
type Recorder = (job: JobStateRow, state: ActualState, reason: string | null) => Promise<boolean>;

/** States of a job that the runtime should be holding: one absent in them died. */
const UP: ReadonlySet<ActualState> = new Set(['STARTING', 'RUNNING', 'RECOVERING']);

export interface PassResult {
  readonly applied: number;
  readonly removed: number;
  readonly transitions: number;
}

/**
 * One level-triggered pass: observe what the runtime holds, compare with what the
 * database wants, act idempotently, record what was seen. Safe to repeat at any time,
 * including after a crash halfway through the previous pass.
 */
export class Reconciler {
  private readonly policy: RestartPolicy;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(
    private readonly db: Db,
    private readonly runtime: Runtime,
    private readonly events: StatusEvents,
    private readonly logger: Logger,
    options: ReconcilerOptions = {},
  ) {
    this.policy = options.restartPolicy ?? DEFAULT_RESTART_POLICY;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  async pass(): Promise<PassResult> {
    const observed = new Map((await this.runtime.observe()).map((job) => [job.id, job]));
    const jobs = await jobRepo.listJobsToReconcile(this.db);
    let applied = 0;
    let removed = 0;
    let transitions = 0;
    const record: Recorder = async (job, state, reason) => {
      // Most passes change nothing: skip the write (the row read this pass says so).
      if (job.actual_state === state && job.actual_reason === reason) return false;
      const transition = await jobRepo.recordActualState(this.db, job, state, reason);
      if (!transition) return false;
      transitions += 1;
      this.events.publish({
        accountId: job.account_id,
        kind: job.kind,
        jobId: job.id,
        desiredState: job.desired_state,
        state,
        reason,
        at: transition.at,
      });
      return true;
    };

    for (const job of jobs) {
      const seen = observed.get(job.id);
      observed.delete(job.id);
      const log = this.logger.child({ accountId: job.account_id, kind: job.kind, jobId: job.id });
      try {
        if (job.desired_state === 'ACTIVE') {
          applied += await this.reconcileActive(job, seen, record, log);
        } else {
          // Deactivated: a later activation starts afresh.
          this.held.delete(job.id);
          this.restartDue.delete(job.id);
          if (seen) {
            await record(job, 'STOPPING', null);
            await this.runtime.remove({ kind: job.kind, id: job.id, accountId: job.account_id });
            removed += 1;
          }
          await record(job, 'STOPPED', null);
        }
      } catch (error) {
        if (error instanceof RuntimeRejectedError) {
          await record(job, 'FAILED', error.message);
          this.held.set(job.id, job.spec_version);
        } else {
          // Transient: the next pass tries again.
          log.warn({ err: error }, 'reconcile step failed; will retry');
        }
      }
    }

    this.firstPass = false;
    // Whatever the runtime still holds that no row wants any more (a deleted job) goes.
    removed += await this.removeOrphans([...observed.values()]);
    return { applied, removed, transitions };
  }

  /**
   * An active job: follow what the runtime says of it, restart it when it died (after a
   * backoff, within its budget), deploy it when it is missing or its spec changed.
   * Returns how many applies it made.
   */
  private async reconcileActive(job: JobStateRow, seen: ObservedJob | undefined, record: Recorder, log: Logger): Promise<number> {
    if (seen && seen.specVersion === job.spec_version) {
      if (!seen.phase) return 0;
      const entered = await record(job, seen.phase, seen.reason);
      // The runtime restarts it itself (Flink's restart strategy, a hung process it
      // killed): that counts against the budget too.
      if (entered && seen.phase === 'RECOVERING') {
        const giveUp = overBudget(await this.restartsOf(job), this.policy);
        if (giveUp) await this.giveUp(job, giveUp, record, log);
      }
      return 0;
    }
    if (!seen) {
      // A job that failed for good at this spec version stays FAILED until its spec
      // changes or it is activated again.
      if (job.actual_state === 'FAILED' && this.held.get(job.id) === job.spec_version) return 0;
      if (UP.has(job.actual_state) && !this.restartDue.has(job.id)) {
        if (this.firstPass) {
          // Gone before this gateway looked: stopped with the previous gateway (the local
          // runtime's processes go with it), not dead. Resumed at once, not counted.
          await record(job, 'RECOVERING', RESUME_REASON);
          this.restartDue.set(job.id, { specVersion: job.spec_version, dueAt: this.now() });
        } else if (!(await this.scheduleRestart(job, record, log))) return 0; // it died
      }
      const due = this.restartDue.get(job.id);
      if (due?.specVersion === job.spec_version) {
        if (this.now() < due.dueAt) return 0;
        const spec = await loadJobSpec(this.db, job);
        if (!spec) return 0;
        await this.runtime.apply(spec);
        this.restartDue.delete(job.id);
        return 1;
      }
    }
    this.restartDue.delete(job.id);
    const spec = await loadJobSpec(this.db, job);
    if (!spec) return 0;
    await this.runtime.apply(spec);
    const wasUp = job.actual_state === 'RUNNING' || job.actual_state === 'RECOVERING';
    // Version 0 (spec versions start at 1) is a job whose apply stopped partway, say
    // when the gateway died: this pass finishes it, nothing about its spec changed. A
    // first activation finished that way is still just starting.
    if (seen?.specVersion === 0) {
      log.info('completing a half-made deployment');
      await record(job, wasUp ? 'RECOVERING' : 'STARTING', wasUp ? HALF_MADE_REASON : null);
    } else if (seen) await record(job, 'RECOVERING', REDEPLOY_REASON);
    else await record(job, 'STARTING', null);
    return 1;
  }

  /**
   * A job died: records its restart (due after a backoff), or gives up on it when its
   * budget is spent. False when it was given up on.
   */
  private async scheduleRestart(job: JobStateRow, record: Recorder, log: Logger): Promise<boolean> {
    // A hung process the runtime killed was counted when the runtime reported it.
    const counted = isRuntimeRestart(job.actual_state, job.actual_reason);
    const decision = decideRestart(await this.restartsOf(job), this.policy, this.random(), counted);
    if (decision.action === 'give-up') {
      await this.giveUp(job, decision.reason, record, log);
      return false;
    }
    log.warn({ attempt: decision.attempt, delayMs: decision.delayMs }, 'job died; restarting it');
    await record(job, 'RECOVERING', restartReason(decision.attempt, this.policy, decision.delayMs));
    this.restartDue.set(job.id, { specVersion: job.spec_version, dueAt: this.now() + decision.delayMs });
    return true;
  }

  /**
   * Spec versions held FAILED: rejected by the runtime, or given up on after too many
   * restarts. A pass does not retry them; a spec change or a new activation does.
   */
  private readonly held = new Map<string, number>();
  /** The first pass of this gateway: jobs it finds gone were stopped with the previous one. */
  private firstPass = true;
  /** Jobs that died and wait out their backoff before they are applied again. */
  private readonly restartDue = new Map<string, { readonly specVersion: number; readonly dueAt: number }>();

  /** What the history says of the job's restarts since its last change, within the window. */
  private async restartsOf(job: JobStateRow) {
    const since = new Date(Math.max(job.updated_at.getTime(), this.now() - this.policy.windowMs));
    return countRestarts(await jobRepo.transitionsSince(this.db, job.id, since));
  }

  /** Too many restarts: the runtime lets go of the job, which ends FAILED saying why. */
  private async giveUp(job: JobStateRow, reason: string, record: Recorder, log: Logger): Promise<void> {
    log.warn({ reason }, 'job keeps dying; giving up on it');
    this.restartDue.delete(job.id);
    await this.runtime.remove({ kind: job.kind, id: job.id, accountId: job.account_id });
    await record(job, 'FAILED', reason);
    this.held.set(job.id, job.spec_version);
  }

  private async removeOrphans(orphans: ObservedJob[]): Promise<number> {
    let removed = 0;
    for (const kind of ['PIPELINE', 'CONNECTION'] as const) {
      const ofKind = orphans.filter((job) => job.kind === kind);
      const existing = await jobRepo.existingJobIds(this.db, kind, ofKind.map((job) => job.id));
      for (const job of ofKind) {
        // Rows that exist but were not listed are inactive and already STOPPED: still remove.
        this.logger.info({ accountId: job.accountId, jobId: job.id, deleted: !existing.has(job.id) }, 'removing orphaned job');
        await this.runtime.remove(job);
        removed += 1;
      }
    }
    return removed;
  }
}
