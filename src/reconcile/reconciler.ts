import type { Db } from '../platform/database.js';
import type { Logger } from '../platform/logger.js';
import * as jobRepo from '../jobs/job.repository.js';
import type { JobStateRow } from '../jobs/job.repository.js';
import type { JobRef } from '../jobs/job-spec.js';
import type { ActualState } from '../jobs/job.table.js';
import type { StatusEvents } from '../jobs/status-events.js';
import { RuntimeRejectedError, type ObservedJob, type RemoveResult, type Runtime } from '../runtime/runtime.js';
import { loadJobSpec } from '../jobs/job-spec-loader.js';
import { SnapshotKeeper } from '../jobs/snapshot.service.js';
import { decide, type Action, type DecideInput, type Step } from './decide.js';
import { DEFAULT_RESTART_POLICY, type RestartPolicy } from './restart-policy.js';

/** What the steps of one action did so far, for the steps after them. */
interface Done {
  removal?: RemoveResult;
}

export interface ReconcilerOptions {
  readonly restartPolicy?: RestartPolicy;
  /** The clock backoffs are timed by (tests). */
  readonly now?: () => number;
  /** Jitter of backoffs, in [0, 1). */
  readonly random?: () => number;
}

export interface PassResult {
  readonly applied: number;
  readonly removed: number;
  readonly transitions: number;
}

type Tally = { -readonly [K in keyof PassResult]: number };

/**
 * One level-triggered pass: observe what the runtime holds, read what the database wants,
 * ask `decide` what to do about each job, do it, record what was seen. Safe to repeat at
 * any time, including after a crash halfway through the previous pass.
 */
export class Reconciler {
  private readonly policy: RestartPolicy;
  private readonly now: () => number;
  private readonly random: () => number;
  /**
   * Spec versions held FAILED: rejected by the runtime, or given up on after too many
   * restarts. A pass does not retry them; a spec change or a new activation does.
   */
  private readonly held = new Map<string, number>();
  /** The first pass of this gateway: jobs it finds gone were stopped with the previous one. */
  private firstPass = true;
  /** Jobs that died and wait out their backoff before they are applied again. */
  private readonly restartDue = new Map<string, { readonly specVersion: number; readonly dueAt: number }>();
  /** Records the savepoints deactivations stop with. */
  private readonly snapshots: SnapshotKeeper;

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
    this.snapshots = new SnapshotKeeper(db, runtime, logger);
  }

  async pass(): Promise<PassResult> {
    const observed = new Map((await this.runtime.observe()).map((job) => [job.id, job]));
    const jobs = await jobRepo.listJobsToReconcile(this.db);
    const tally: Tally = { applied: 0, removed: 0, transitions: 0 };
    for (const job of jobs) {
      const seen = observed.get(job.id);
      observed.delete(job.id);
      await this.reconcile(job, seen, tally);
    }
    this.firstPass = false;
    // Whatever the runtime still holds that no row wants any more (a deleted job) goes.
    tally.removed += await this.removeOrphans([...observed.values()]);
    try {
      tally.removed += await this.discardDeletedStates();
    } catch (error) {
      // Nothing waits on it: the next pass tries again.
      this.logger.warn({ err: error }, 'discarding the state of deleted jobs failed; will retry');
    }
    return tally;
  }

  /** Decides about one job and carries the action out; a step that fails ends it. */
  private async reconcile(job: JobStateRow, seen: ObservedJob | undefined, tally: Tally): Promise<void> {
    const log = this.logger.child({ accountId: job.account_id, kind: job.kind, jobId: job.id });
    try {
      const action = await this.decide(job, seen);
      if (action.log) log[action.log.level](action.log.fields ?? {}, action.log.message);
      const done: Done = {};
      for (const step of action.steps) if (!(await this.perform(step, job, tally, done))) break;
    } catch (error) {
      if (error instanceof RuntimeRejectedError) {
        await this.record(job, 'FAILED', error.message, tally);
        this.held.set(job.id, job.spec_version);
      } else {
        // Transient: the next pass tries again.
        log.warn({ err: error }, 'reconcile step failed; will retry');
      }
    }
  }

  private async decide(job: JobStateRow, observed: ObservedJob | undefined): Promise<Action> {
    const input: DecideInput = {
      job,
      observed,
      remembered: { heldVersion: this.held.get(job.id), restart: this.restartDue.get(job.id), firstPass: this.firstPass },
      policy: this.policy,
      now: this.now(),
      jitter: this.random(),
    };
    const action = decide(input);
    return action.verdict === 'read-history' ? decide({ ...input, history: await this.restartHistory(job) }) : action;
  }

  /** Carries out one step; false when the action ends here (the job was deleted meanwhile). */
  private async perform(step: Step, job: JobStateRow, tally: Tally, done: Done): Promise<boolean> {
    switch (step.do) {
      case 'record':
        // A stop without the savepoint it asked for says so in the state it records.
        await this.record(job, step.state, step.reason ?? done.removal?.note ?? null, tally);
        break;
      case 'apply': {
        const spec = await loadJobSpec(this.db, job);
        if (!spec) return false;
        await this.runtime.apply(spec);
        tally.applied += 1;
        break;
      }
      case 'remove':
        done.removal = await this.runtime.remove(
          { kind: job.kind, id: job.id, accountId: job.account_id },
          step.savepoint ? { savepoint: true } : {},
        );
        if (done.removal.savepoint) await this.snapshots.record(job, 'DEACTIVATION', done.removal.savepoint);
        tally.removed += 1;
        break;
      case 'schedule-restart':
        this.restartDue.set(job.id, { specVersion: job.spec_version, dueAt: step.dueAt });
        break;
      case 'clear-restart':
        this.restartDue.delete(job.id);
        break;
      case 'hold':
        this.held.set(job.id, job.spec_version);
        break;
      case 'forget':
        this.held.delete(job.id);
        this.restartDue.delete(job.id);
        break;
    }
    return true;
  }

  /** Records an observed state; a change (a transition) is published. */
  private async record(job: JobStateRow, state: ActualState, reason: string | null, tally: Tally): Promise<void> {
    const transition = await jobRepo.recordActualState(this.db, job, state, reason);
    if (!transition) return;
    tally.transitions += 1;
    this.events.publish({
      accountId: job.account_id,
      kind: job.kind,
      jobId: job.id,
      desiredState: job.desired_state,
      state,
      reason,
      at: transition.at,
    });
  }

  /** The job's transitions since its last change, within the restart window: what the restart policy counts. */
  private async restartHistory(job: JobStateRow) {
    const since = new Date(Math.max(job.updated_at.getTime(), this.now() - this.policy.windowMs));
    return jobRepo.transitionsSince(this.db, job.id, since);
  }

  private async removeOrphans(orphans: ObservedJob[]): Promise<number> {
    const existing = await this.existingIds(orphans);
    for (const job of orphans) {
      // Rows that exist but were not listed are inactive and already STOPPED: still remove.
      const deleted = !existing.has(job.id);
      this.logger.info({ accountId: job.accountId, jobId: job.id, deleted }, 'removing orphaned job');
      // A deleted job's state goes with it.
      await this.runtime.remove(job, { discardState: deleted });
    }
    return orphans.length;
  }

  /** The state a runtime keeps for stopped jobs that were deleted since: it goes too. */
  private async discardDeletedStates(): Promise<number> {
    if (!this.runtime.keptStates) return 0;
    const kept = await this.runtime.keptStates();
    const existing = await this.existingIds(kept);
    const deleted = kept.filter((job) => !existing.has(job.id));
    for (const job of deleted) {
      this.logger.info({ accountId: job.accountId, jobId: job.id }, 'discarding the state of a deleted job');
      await this.runtime.remove(job, { discardState: true });
    }
    return deleted.length;
  }

  /** Which of these jobs still have their row. */
  private async existingIds(jobs: readonly JobRef[]): Promise<Set<string>> {
    const byKind = await Promise.all(
      (['PIPELINE', 'CONNECTION'] as const).map((kind) => jobRepo.existingJobIds(this.db, kind, jobs.filter((job) => job.kind === kind).map((job) => job.id))),
    );
    return new Set(byKind.flatMap((ids) => [...ids]));
  }
}
