import type { Actor } from '../accounts/actor.js';
import { deleteJobSnapshots } from '../jobs/snapshot.repository.js';
import { requireRole } from '../accounts/actor.js';
import { lockAccount } from '../accounts/account.repository.js';
import { insertWithinLimit } from '../accounts/object-limits.js';
import { checkCheckpointInterval, checkTaskCount } from '../jobs/job-input.js';
import { assertTaskHeadroom, type ActivateOptions, type JobService } from '../jobs/job.service.js';
import type { DeliveryGuarantee, TaskSize } from '../jobs/job.table.js';
import type { Db } from '../platform/database.js';
import { ConflictError, NotFoundError, ValidationError } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import type { Logger } from '../platform/logger.js';
import { checkIdentifier } from '../platform/names.js';
import type { PageQuery } from '../platform/pagination.js';
import { withUniqueName } from '../platform/unique-violation.js';
import type { PipelineSqlAnalysis } from '../sql/pipeline-sql.js';
import type { SqlChecker } from '../sql/sql-checker.js';
import * as streamRepo from '../streams/stream.repository.js';
import * as repo from './pipeline.repository.js';
import type { PipelineRow } from './pipeline.table.js';

export interface CreatePipelineInput {
  readonly name: string;
  readonly sql: string;
  readonly taskSize?: TaskSize | null;
  readonly taskCount?: number | null;
  readonly deliveryGuarantee?: DeliveryGuarantee | null;
  readonly checkpointIntervalMs?: number | null;
}

export interface UpdatePipelineInput {
  readonly name?: string | null;
  readonly sql?: string | null;
  readonly taskSize?: TaskSize | null;
  readonly taskCount?: number | null;
  readonly deliveryGuarantee?: DeliveryGuarantee | null;
  readonly checkpointIntervalMs?: number | null;
}

export class PipelineService {
  constructor(
    private readonly db: Db,
    private readonly jobs: JobService,
    private readonly logger: Logger,
    private readonly sql: SqlChecker,
  ) {}

  /**
   * Checks the SQL against the account's streams. Outside any transaction: the check may
   * take the SQL checker's whole time limit, and must not hold a database connection
   * (with the embedded database, the only one) while it runs.
   */
  private async checkSql(accountId: string, sql: string): Promise<PipelineSqlAnalysis> {
    const names = new Set(await streamRepo.listStreamNames(this.db, accountId));
    return this.sql.analyzePipeline(sql, names, ['input', 'sql']);
  }

  /**
   * The ids of the streams a checked SQL text writes and reads, locked until the
   * transaction ends: none of them can be deleted or renamed before the links are in.
   */
  private async resolveStreams(db: Db, accountId: string, analysis: PipelineSqlAnalysis) {
    const rows = await streamRepo.findStreamsByNames(db, accountId, [analysis.output, ...analysis.inputs], 'share');
    const idOf = new Map(rows.map((row) => [row.name, row.id]));
    const outputId = idOf.get(analysis.output);
    const inputIds = analysis.inputs.map((name) => idOf.get(name));
    // A stream deleted between the check and here: say so rather than link nothing.
    if (!outputId || inputIds.some((id) => !id)) {
      throw ValidationError.of(['input', 'sql'], 'a stream named in the SQL no longer exists');
    }
    return { outputId, inputIds: inputIds as string[] };
  }

  async create(actor: Actor | null, input: CreatePipelineInput): Promise<PipelineRow> {
    const a = requireRole(actor, 'MEMBER');
    const name = checkIdentifier(['input', 'name'], input.name);
    const taskCount = checkTaskCount(['input', 'taskCount'], input.taskCount ?? 1);
    const interval = checkCheckpointInterval(['input', 'checkpointIntervalMs'], input.checkpointIntervalMs) ?? null;
    const analysis = await this.checkSql(a.accountId, input.sql);
    const row = await withUniqueName('pipeline', name, () =>
      // The account's lock (insertWithinLimit's) before the streams', in the order every transaction takes them.
      insertWithinLimit(this.db, a.accountId, 'pipelines', async (trx) => {
        const streams = await this.resolveStreams(trx, a.accountId, analysis);
        return repo.insertPipeline(
          trx,
          {
            id: newId(),
            account_id: a.accountId,
            name,
            sql: input.sql,
            task_size: input.taskSize ?? 'S',
            task_count: taskCount,
            delivery_guarantee: input.deliveryGuarantee ?? 'EXACTLY_ONCE',
            checkpoint_interval_ms: interval,
          },
          streams,
        );
      }),
    );
    this.logger.info({ accountId: a.accountId, pipelineId: row.id }, 'pipeline created');
    return row;
  }

  async get(actor: Actor | null, id: string): Promise<PipelineRow> {
    const a = requireRole(actor, 'VIEWER');
    const row = await repo.findPipeline(this.db, a.accountId, id);
    if (!row) throw new NotFoundError('Pipeline', id);
    return row;
  }

  async list(actor: Actor | null, page: PageQuery): Promise<PipelineRow[]> {
    const a = requireRole(actor, 'VIEWER');
    return repo.listPipelines(this.db, a.accountId, page);
  }

  /** The streams each pipeline reads and writes, by pipeline id (callers pass ids of the caller's pipelines). */
  async streamIdsOf(actor: Actor | null, pipelineIds: readonly string[]): Promise<Map<string, repo.PipelineStreams>> {
    requireRole(actor, 'VIEWER');
    return repo.pipelineStreamIdsOf(this.db, pipelineIds);
  }

  /** A change of SQL or resources bumps the spec version: an active pipeline is redeployed. */
  async update(actor: Actor | null, id: string, input: UpdatePipelineInput): Promise<PipelineRow> {
    const a = requireRole(actor, 'MEMBER');
    const name = input.name != null ? checkIdentifier(['input', 'name'], input.name) : undefined;
    const taskCount = input.taskCount != null ? checkTaskCount(['input', 'taskCount'], input.taskCount) : undefined;
    const interval = checkCheckpointInterval(['input', 'checkpointIntervalMs'], input.checkpointIntervalMs);
    let analysis: PipelineSqlAnalysis | undefined;
    if (input.sql != null) {
      // Another account's pipeline is NOT_FOUND whatever its SQL, as inside the transaction.
      if (!(await repo.findPipeline(this.db, a.accountId, id))) throw new NotFoundError('Pipeline', id);
      analysis = await this.checkSql(a.accountId, input.sql);
    }
    return withUniqueName('pipeline', name, () =>
      this.db.transaction().execute(async (trx) => {
        // A new task count is checked only if the job is active: lock before reading
        // that, as activation does, or one could slip in between and count the old one.
        if (taskCount !== undefined) await lockAccount(trx, a.accountId);
        const current = await repo.findPipeline(trx, a.accountId, id);
        if (!current) throw new NotFoundError('Pipeline', id);
        if (analysis) await repo.linkStreams(trx, id, await this.resolveStreams(trx, a.accountId, analysis));
        if (taskCount !== undefined && current.desired_state === 'ACTIVE') {
          await assertTaskHeadroom(trx, a.accountId, taskCount - current.task_count);
        }
        // A new plan or delivery: the old state may not fit it (upgrades that keep it come with a check).
        const newGeneration =
          (input.sql != null && input.sql !== current.sql) ||
          (input.deliveryGuarantee != null && input.deliveryGuarantee !== current.delivery_guarantee);
        const bumpSpec =
          newGeneration ||
          (input.taskSize != null && input.taskSize !== current.task_size) ||
          (taskCount !== undefined && taskCount !== current.task_count) ||
          (interval !== undefined && interval !== current.checkpoint_interval_ms);
        const row = await repo.updatePipeline(trx, a.accountId, id, {
          ...(name !== undefined ? { name } : {}),
          ...(input.sql != null ? { sql: input.sql } : {}),
          ...(input.taskSize != null ? { task_size: input.taskSize } : {}),
          ...(taskCount !== undefined ? { task_count: taskCount } : {}),
          ...(input.deliveryGuarantee != null ? { delivery_guarantee: input.deliveryGuarantee } : {}),
          ...(interval !== undefined ? { checkpoint_interval_ms: interval } : {}),
          bumpSpec,
          newGeneration,
        });
        return row!;
      }),
    );
  }

  /** Refused while active: deactivate first, so deleting never leaves a job running unseen. */
  async delete(actor: Actor | null, id: string): Promise<PipelineRow> {
    const a = requireRole(actor, 'MEMBER');
    return this.db.transaction().execute(async (trx) => {
      const current = await repo.findPipeline(trx, a.accountId, id);
      if (!current) throw new NotFoundError('Pipeline', id);
      if (current.desired_state === 'ACTIVE') {
        throw new ConflictError(`Pipeline "${current.name}" is active; deactivate it before deleting it.`);
      }
      await repo.deletePipeline(trx, a.accountId, id);
      // Its savepoints' files go with the rest of its state (the reconciler discards it).
      await deleteJobSnapshots(trx, a.accountId, id);
      this.logger.info({ accountId: a.accountId, pipelineId: id }, 'pipeline deleted');
      return current;
    });
  }

  async activate(actor: Actor | null, id: string, options: ActivateOptions = {}): Promise<PipelineRow> {
    await this.jobs.activate(actor, 'PIPELINE', id, options);
    return this.get(actor, id);
  }

  async deactivate(actor: Actor | null, id: string): Promise<PipelineRow> {
    await this.jobs.deactivate(actor, 'PIPELINE', id);
    return this.get(actor, id);
  }
}
