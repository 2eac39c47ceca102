import type { Actor } from '../accounts/actor.js';
import { requireRole } from '../accounts/actor.js';
import { SavepointError } from '../flink/flink-rest.js';
import type { Db } from '../platform/database.js';
import { ConflictError, NotFoundError, QuotaExceededError, SnapshotFailedError, UnavailableError } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import type { Runtime, TakenSnapshot } from '../runtime/runtime.js';
import type { JobRef } from './job-spec.js';
import * as jobRepo from './job.repository.js';
import type { JobKind } from './job.table.js';
import * as repo from './snapshot.repository.js';
import type { JobSnapshotRow, SnapshotTrigger } from './snapshot.table.js';

/** Unpinned snapshots a job keeps, newest first; older ones are deleted, files and all. */
export const SNAPSHOT_RETENTION = 5;
/** Pinned snapshots a job may hold: they are kept until unpinned or the job is deleted. */
export const MAX_PINNED_SNAPSHOTS = 10;

const TYPENAME: Record<JobKind, string> = { PIPELINE: 'Pipeline', CONNECTION: 'Connection' };

type SnapshotRuntime = Pick<Runtime, 'name' | 'snapshot' | 'deleteSnapshot'>;

/**
 * Records complete savepoints and applies the retention: the newest SNAPSHOT_RETENTION
 * unpinned ones and every pinned one stay. A dropped snapshot's row goes first, then its
 * files: a crash in between leaves files no row names (deleted with the job), never a row
 * naming files that are gone.
 */
export class SnapshotKeeper {
  constructor(
    private readonly db: Db,
    private readonly runtime: SnapshotRuntime | undefined,
    private readonly logger: Logger,
  ) {}

  async record(job: jobRepo.JobStateRow, trigger: SnapshotTrigger, taken: TakenSnapshot): Promise<JobSnapshotRow> {
    const row = await repo.insertSnapshot(this.db, {
      accountId: job.account_id,
      jobKind: job.kind,
      jobId: job.id,
      trigger,
      stateGeneration: job.state_generation,
      specVersion: job.spec_version,
      location: taken.location,
      sizeBytes: taken.sizeBytes,
    });
    this.logger.info({ accountId: job.account_id, jobId: job.id, snapshotId: row.id, trigger, sizeBytes: row.size_bytes }, 'snapshot recorded');
    await this.applyRetention(job);
    return row;
  }

  async applyRetention(job: jobRepo.JobStateRow): Promise<void> {
    const ref: JobRef = { kind: job.kind, id: job.id, accountId: job.account_id };
    for (const dropped of await repo.snapshotsBeyond(this.db, job.id, SNAPSHOT_RETENTION, job.initial_snapshot)) {
      await repo.deleteSnapshot(this.db, dropped.id);
      try {
        await this.runtime?.deleteSnapshot?.(ref, dropped.location);
        this.logger.info({ accountId: job.account_id, jobId: job.id, snapshotId: dropped.id }, 'snapshot dropped by the retention');
      } catch (error) {
        this.logger.warn({ err: error, accountId: job.account_id, jobId: job.id, location: dropped.location }, 'snapshot files not deleted');
      }
    }
  }
}

/** Snapshots of pipelines and connections: listed, taken on demand, pinned, chosen to restore. */
export class SnapshotService {
  private readonly keeper: SnapshotKeeper;

  constructor(
    private readonly db: Db,
    private readonly runtime: SnapshotRuntime | undefined,
    logger: Logger,
  ) {
    this.keeper = new SnapshotKeeper(db, runtime, logger);
  }

  /** A job's snapshots, newest first (callers check the job is the caller's first). */
  async list(actor: Actor | null, jobId: string): Promise<JobSnapshotRow[]> {
    const a = requireRole(actor, 'VIEWER');
    return repo.listSnapshots(this.db, a.accountId, jobId);
  }

  async get(actor: Actor | null, id: string): Promise<JobSnapshotRow> {
    const a = requireRole(actor, 'VIEWER');
    const row = await repo.findSnapshot(this.db, a.accountId, id);
    if (!row) throw new NotFoundError('Snapshot', id);
    return row;
  }

  /** Takes a savepoint of a running job, which runs on. */
  async take(actor: Actor | null, kind: JobKind, id: string): Promise<JobSnapshotRow> {
    const a = requireRole(actor, 'MEMBER');
    const job = await jobRepo.findJobState(this.db, kind, a.accountId, id);
    if (!job) throw new NotFoundError(TYPENAME[kind], id);
    if (job.desired_state !== 'ACTIVE' || job.actual_state !== 'RUNNING') {
      throw new ConflictError(`${TYPENAME[kind]} "${job.name}" is not running (${job.actual_state}); a snapshot is taken of a running job.`);
    }
    if (!this.runtime?.snapshot) throw new UnavailableError(`The ${this.runtime?.name ?? 'configured'} runtime does not take snapshots yet.`);
    let taken: TakenSnapshot;
    try {
      taken = await this.runtime.snapshot({ kind, id, accountId: a.accountId }, job.state_generation);
    } catch (error) {
      if (error instanceof SavepointError) throw new SnapshotFailedError(`${TYPENAME[kind]} "${job.name}": ${error.message}.`);
      throw error;
    }
    // Read again: the job may have moved on (a new spec version) while the savepoint ran.
    const now = await jobRepo.findJobState(this.db, kind, a.accountId, id);
    if (!now) throw new NotFoundError(TYPENAME[kind], id);
    return this.keeper.record({ ...now, state_generation: job.state_generation, spec_version: job.spec_version }, 'ON_DEMAND', taken);
  }

  /** Pinned snapshots are kept by the retention until unpinned. */
  async pin(actor: Actor | null, id: string, pinned: boolean): Promise<JobSnapshotRow> {
    const a = requireRole(actor, 'MEMBER');
    const row = await repo.findSnapshot(this.db, a.accountId, id);
    if (!row) throw new NotFoundError('Snapshot', id);
    if (pinned && !row.pinned) {
      const count = await repo.countPinned(this.db, row.job_id);
      if (count + 1 > MAX_PINNED_SNAPSHOTS) throw new QuotaExceededError('pinned snapshots of a job', MAX_PINNED_SNAPSHOTS, count + 1);
    }
    await repo.setPinned(this.db, a.accountId, id, pinned);
    if (!pinned) {
      const job = await jobRepo.findJobState(this.db, row.job_kind, a.accountId, row.job_id);
      if (job) await this.keeper.applyRetention(job);
    }
    return (await repo.findSnapshot(this.db, a.accountId, id)) ?? { ...row, pinned };
  }
}
