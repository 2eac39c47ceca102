import type { Actor } from '../accounts/actor.js';
import { requireRole } from '../accounts/actor.js';
import * as accountRepo from '../accounts/account.repository.js';
import type { Db } from '../platform/database.js';
import { ConflictError, NotFoundError, PlatformQuotaExceededError, QuotaExceededError, UnavailableError, ValidationError } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import type { PageQuery } from '../platform/pagination.js';
import { RuntimeQuotaError, type Runtime } from '../runtime/runtime.js';
import * as repo from './job.repository.js';
import * as snapshotRepo from './snapshot.repository.js';
import { loadJobSpec } from './job-spec-loader.js';
import type { JobKind } from './job.table.js';
import { inputsOf, type JobSpec } from './job-spec.js';
import type { StreamStorage } from '../streams/stream-storage.js';
import { resolveStartPositions, type RestoreMode, type StartPositionInput, type StartPositions } from './start-position.js';

/** What an activation restores, and where a job without state starts reading. */
export interface ActivateOptions {
  /** Default LATEST. */
  readonly restore?: RestoreMode | null;
  readonly startFrom?: readonly StartPositionInput[] | null;
  /** A snapshot (uuid) of this job to start a new state generation from, instead of restore. */
  readonly fromSnapshot?: string | null;
}

const TYPENAME: Record<JobKind, string> = { PIPELINE: 'Pipeline', CONNECTION: 'Connection' };

/**
 * Desired state of pipelines and connections. Activation checks the tier's quotas under
 * a lock on the account, so two concurrent activations cannot both squeeze past a limit.
 * The reconciler does the rest.
 */
export class JobService {
  constructor(
    private readonly db: Db,
    private readonly wakeReconciler: () => void,
    private readonly logger: Logger,
    /** Asked at activation whether it would accept the job now (its own quotas). */
    private readonly runtime?: Pick<Runtime, 'admit'>,
    /** Where start positions LATEST are read; undefined: they cannot be (UNAVAILABLE). */
    private readonly storage?: Pick<StreamStorage, 'endOffset' | 'topicFor'>,
  ) {}

  /**
   * Sets the job ACTIVE. By default (restore LATEST) it resumes from its latest state, or,
   * with none yet, starts from its start positions (`startFrom`, resolved now: LATEST is
   * the offset each stream has at this moment). restore NONE discards the state and starts
   * from `startFrom` (EARLIEST for every input not named).
   */
  async activate(actor: Actor | null, kind: JobKind, id: string, options: ActivateOptions = {}): Promise<void> {
    const a = requireRole(actor, 'MEMBER');
    const restore = options.restore ?? 'LATEST';
    const startFrom = options.startFrom ?? [];
    const fromSnapshot = options.fromSnapshot ?? null;
    const chooses = options.restore != null || startFrom.length > 0 || fromSnapshot !== null;
    if (fromSnapshot !== null && restore === 'NONE') {
      throw ValidationError.of(['fromSnapshot'], 'restore NONE starts without state and fromSnapshot from a snapshot: pass one of them');
    }
    // The runtime's own quotas first, outside the transaction: it may call a cluster.
    const before = await repo.findJobState(this.db, kind, a.accountId, id);
    if (!before) throw new NotFoundError(TYPENAME[kind], id);
    if (before.desired_state === 'ACTIVE') return this.alreadyActive(before, chooses);
    if (startFrom.length > 0 && restore === 'LATEST' && fromSnapshot === null && before.state_started_at) {
      throw ValidationError.of(
        ['startFrom'],
        `${TYPENAME[kind]} "${before.name}" has state from an earlier run, and restore LATEST resumes from it; pass restore: NONE to discard that state and start from these positions`,
      );
    }
    const spec = await loadJobSpec(this.db, before);
    if (!spec) throw new NotFoundError(TYPENAME[kind], id);
    await this.admitByRuntime(spec);
    // A snapshot of this very job, the caller's: any other id is not found.
    const snapshot = fromSnapshot === null ? undefined : await snapshotRepo.findSnapshot(this.db, a.accountId, fromSnapshot);
    if (fromSnapshot !== null && (snapshot?.job_id !== id || snapshot.job_kind !== kind)) throw new NotFoundError('Snapshot', fromSnapshot);
    // Restoring a chosen snapshot begins a new generation that starts from it.
    const fresh = restore === 'NONE' || snapshot !== undefined;
    // Outside the transaction too: LATEST asks the stream storage for each stream's end.
    const startPositions =
      startFrom.length > 0 || fresh ? await this.resolveStartPositions(spec, startFrom) : undefined;
    await this.db.transaction().execute(async (trx) => {
      await accountRepo.lockAccount(trx, a.accountId);
      const job = await repo.findJobState(trx, kind, a.accountId, id);
      if (!job) throw new NotFoundError(TYPENAME[kind], id);
      if (job.desired_state === 'ACTIVE') return this.alreadyActive(job, chooses);
      const account = await accountRepo.findAccount(trx, a.accountId);
      const limits = await accountRepo.findTier(trx, account!.tier);
      const usage = await repo.activeUsage(trx, a.accountId);
      if (usage.jobs + 1 > limits.max_active_jobs) {
        throw new QuotaExceededError('active pipelines and connections', limits.max_active_jobs, usage.jobs + 1);
      }
      if (usage.tasks + job.task_count > limits.max_task_count) {
        throw new QuotaExceededError('total task count of active jobs', limits.max_task_count, usage.tasks + job.task_count);
      }
      await repo.activateJob(trx, kind, a.accountId, id, { fresh, fromSnapshot: snapshot?.location, startPositions });
    });
    this.logger.info(
      { accountId: a.accountId, kind, jobId: id, restore, fromSnapshot: snapshot?.id ?? null, startPositions: startPositions ?? null },
      'job activated',
    );
    this.wakeReconciler();
  }

  /** Activating an active job changes nothing; asking it to restore or start elsewhere is a conflict. */
  private alreadyActive(job: repo.JobStateRow, chooses: boolean): void {
    if (!chooses) return;
    throw new ConflictError(
      `${TYPENAME[job.kind]} "${job.name}" is active; deactivate it before choosing what it restores or where it starts reading.`,
    );
  }

  /** The requested start positions checked against the job's inputs, LATEST read off each stream now. */
  private async resolveStartPositions(spec: JobSpec, startFrom: readonly StartPositionInput[]): Promise<StartPositions> {
    const inputs = inputsOf(spec);
    const storage = this.storage;
    return resolveStartPositions(
      startFrom,
      inputs,
      async (stream) => {
        if (!storage) throw new UnavailableError('Stream storage is not configured: a start position LATEST cannot be read.');
        return storage.endOffset(storage.topicFor(spec.accountId, stream.id));
      },
      new Date(),
      ['startFrom'],
    );
  }

  /** The runtime's own admission (e.g. a Kubernetes ResourceQuota), for the job as it would run. */
  private async admitByRuntime(spec: JobSpec): Promise<void> {
    if (!this.runtime?.admit) return;
    try {
      await this.runtime.admit(spec);
    } catch (error) {
      if (error instanceof RuntimeQuotaError) throw new PlatformQuotaExceededError(error.message, { exceeded: error.exceeded });
      throw error;
    }
  }

  async deactivate(actor: Actor | null, kind: JobKind, id: string): Promise<void> {
    const a = requireRole(actor, 'MEMBER');
    const job = await repo.findJobState(this.db, kind, a.accountId, id);
    if (!job) throw new NotFoundError(TYPENAME[kind], id);
    if (job.desired_state === 'INACTIVE') return;
    await repo.setDesiredState(this.db, kind, a.accountId, id, 'INACTIVE');
    this.logger.info({ accountId: a.accountId, kind, jobId: id }, 'job deactivated');
    this.wakeReconciler();
  }

  /** Transitions of a job the caller can see (callers check the job exists first). */
  async history(actor: Actor | null, jobId: string, page: PageQuery) {
    const a = requireRole(actor, 'VIEWER');
    return repo.listTransitions(this.db, a.accountId, jobId, page);
  }
}

/**
 * For an update that raises an active job's task count: the account's total must stay
 * within its tier. Call inside the updating transaction.
 */
export async function assertTaskHeadroom(db: Db, accountId: string, extraTasks: number): Promise<void> {
  if (extraTasks <= 0) return;
  await accountRepo.lockAccount(db, accountId);
  const account = await accountRepo.findAccount(db, accountId);
  const limits = await accountRepo.findTier(db, account!.tier);
  const usage = await repo.activeUsage(db, accountId);
  if (usage.tasks + extraTasks > limits.max_task_count) {
    throw new QuotaExceededError('total task count of active jobs', limits.max_task_count, usage.tasks + extraTasks);
  }
}
