import type { Db } from '../platform/database.js';
import type { Logger } from '../platform/logger.js';
import * as jobRepo from '../jobs/job.repository.js';
import type { JobStateRow } from '../jobs/job.repository.js';
import type { ActualState } from '../jobs/job.table.js';
import type { StatusEvents } from '../jobs/status-events.js';
import { RuntimeRejectedError, type ObservedJob, type Runtime } from '../runtime/runtime.js';
import { loadJobSpec } from './spec-loader.js';

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
  constructor(
    private readonly db: Db,
    private readonly runtime: Runtime,
    private readonly events: StatusEvents,
    private readonly logger: Logger,
  ) {}

  async pass(): Promise<PassResult> {
    const observed = new Map((await this.runtime.observe()).map((job) => [job.id, job]));
    const jobs = await jobRepo.listJobsToReconcile(this.db);
    let applied = 0;
    let removed = 0;
    let transitions = 0;
    const record = async (job: JobStateRow, state: ActualState, reason: string | null) => {
      // Most passes change nothing: skip the write (the row read this pass says so).
      if (job.actual_state === state && job.actual_reason === reason) return;
      const transition = await jobRepo.recordActualState(this.db, job, state, reason);
      if (!transition) return;
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
    };

    for (const job of jobs) {
      const seen = observed.get(job.id);
      observed.delete(job.id);
      const log = this.logger.child({ accountId: job.account_id, kind: job.kind, jobId: job.id });
      try {
        if (job.desired_state === 'ACTIVE') {
          if (seen && seen.specVersion === job.spec_version) {
            if (seen.phase) await record(job, seen.phase, seen.reason);
            continue;
          }
          // A job that failed permanently at this spec version stays FAILED until its spec changes.
          if (!seen && job.actual_state === 'FAILED' && this.rejected.get(job.id) === job.spec_version) continue;
          const spec = await loadJobSpec(this.db, job);
          if (!spec) continue;
          await this.runtime.apply(spec);
          applied += 1;
          const wasUp = job.actual_state === 'RUNNING' || job.actual_state === 'RECOVERING';
          // Version 0 (spec versions start at 1) is a job whose apply stopped partway, say
          // when the gateway died: this pass finishes it, nothing about its spec changed. A
          // first activation finished that way is still just starting.
          if (seen?.specVersion === 0) {
            log.info('completing a half-made deployment');
            await record(job, wasUp ? 'RECOVERING' : 'STARTING', wasUp ? 'Completing a half-made deployment.' : null);
          } else if (seen) await record(job, 'RECOVERING', 'Redeploying a changed spec.');
          else if (wasUp) {
            await record(job, 'RECOVERING', 'The job stopped unexpectedly; restarting it from its latest checkpoint.');
          } else await record(job, 'STARTING', null);
        } else if (seen) {
          await record(job, 'STOPPING', null);
          await this.runtime.remove({ kind: job.kind, id: job.id, accountId: job.account_id });
          removed += 1;
          await record(job, 'STOPPED', null);
        } else {
          await record(job, 'STOPPED', null);
        }
      } catch (error) {
        if (error instanceof RuntimeRejectedError) {
          await record(job, 'FAILED', error.message);
          this.rejected.set(job.id, job.spec_version);
        } else {
          // Transient: the next pass tries again.
          log.warn({ err: error }, 'reconcile step failed; will retry');
        }
      }
    }

    // Whatever the runtime still holds that no row wants any more (a deleted job) goes.
    removed += await this.removeOrphans([...observed.values()]);
    return { applied, removed, transitions };
  }

  /** Spec versions the runtime rejected, so a pass does not retry a hopeless apply. */
  private readonly rejected = new Map<string, number>();

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
