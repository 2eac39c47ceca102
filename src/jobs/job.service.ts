import type { Actor } from '../accounts/actor.js';
import { requireRole } from '../accounts/actor.js';
import * as accountRepo from '../accounts/account.repository.js';
import type { Db } from '../platform/database.js';
import { NotFoundError, PlatformQuotaExceededError, QuotaExceededError } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import type { PageQuery } from '../platform/pagination.js';
import { RuntimeQuotaError, type Runtime } from '../runtime/runtime.js';
import * as repo from './job.repository.js';
import { loadJobSpec } from './job-spec-loader.js';
import type { JobKind } from './job.table.js';

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
  ) {}

  async activate(actor: Actor | null, kind: JobKind, id: string): Promise<void> {
    const a = requireRole(actor, 'MEMBER');
    // The runtime's own quotas first, outside the transaction: it may call a cluster.
    const before = await repo.findJobState(this.db, kind, a.accountId, id);
    if (!before) throw new NotFoundError(TYPENAME[kind], id);
    if (before.desired_state === 'ACTIVE') return;
    await this.admitByRuntime(before);
    await this.db.transaction().execute(async (trx) => {
      await accountRepo.lockAccount(trx, a.accountId);
      const job = await repo.findJobState(trx, kind, a.accountId, id);
      if (!job) throw new NotFoundError(TYPENAME[kind], id);
      if (job.desired_state === 'ACTIVE') return;
      const account = await accountRepo.findAccount(trx, a.accountId);
      const limits = await accountRepo.findTier(trx, account!.tier);
      const usage = await repo.activeUsage(trx, a.accountId);
      if (usage.jobs + 1 > limits.max_active_jobs) {
        throw new QuotaExceededError('active pipelines and connections', limits.max_active_jobs, usage.jobs + 1);
      }
      if (usage.tasks + job.task_count > limits.max_task_count) {
        throw new QuotaExceededError('total task count of active jobs', limits.max_task_count, usage.tasks + job.task_count);
      }
      await repo.setDesiredState(trx, kind, a.accountId, id, 'ACTIVE');
    });
    this.logger.info({ accountId: a.accountId, kind, jobId: id }, 'job activated');
    this.wakeReconciler();
  }

  /** The runtime's own admission (e.g. a Kubernetes ResourceQuota), for the job as it would run. */
  private async admitByRuntime(job: repo.JobStateRow): Promise<void> {
    if (!this.runtime?.admit) return;
    const spec = await loadJobSpec(this.db, job);
    if (!spec) return;
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
