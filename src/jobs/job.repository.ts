import { sql } from 'kysely';
import type { Db } from '../platform/database.js';
import type { PageQuery } from '../platform/pagination.js';
import { paginate } from '../platform/pagination.js';
import type { StartPositions } from './start-position.js';
import type { ActualState, DeliveryGuarantee, DesiredState, JobKind, JobTransitionRow, TaskSize } from './job.table.js';

const TABLE = { PIPELINE: 'pipelines', CONNECTION: 'connections' } as const;

/** The state columns every job has, whichever table holds it. */
export interface JobStateRow {
  readonly kind: JobKind;
  readonly id: string;
  readonly account_id: string;
  readonly name: string;
  readonly task_size: TaskSize;
  readonly task_count: number;
  readonly delivery_guarantee: DeliveryGuarantee;
  readonly checkpoint_interval_ms: number | null;
  readonly desired_state: DesiredState;
  readonly actual_state: ActualState;
  readonly actual_reason: string | null;
  readonly spec_version: number;
  readonly state_generation: number;
  readonly start_positions: StartPositions;
  readonly state_started_at: Date | null;
  readonly initial_snapshot: string | null;
  /** Set by every change of the row's spec or desired state (not by observed state). */
  readonly updated_at: Date;
}

const STATE_COLUMNS = [
  'id',
  'account_id',
  'name',
  'task_size',
  'task_count',
  'delivery_guarantee',
  'checkpoint_interval_ms',
  'desired_state',
  'actual_state',
  'actual_reason',
  'spec_version',
  'state_generation',
  'start_positions',
  'state_started_at',
  'initial_snapshot',
  'updated_at',
] as const;

export async function findJobState(db: Db, kind: JobKind, accountId: string, id: string) {
  const row = await db
    .selectFrom(TABLE[kind])
    .select(STATE_COLUMNS)
    .where('account_id', '=', accountId)
    .where('id', '=', id)
    .executeTakeFirst();
  return row && ({ kind, ...row } satisfies JobStateRow);
}

/** Active jobs of an account and the sum of their task counts. */
export async function activeUsage(db: Db, accountId: string): Promise<{ jobs: number; tasks: number }> {
  const usage = await sql<{ jobs: string; tasks: string | null }>`
    select count(*) as jobs, sum(task_count) as tasks from (
      select task_count from pipelines where account_id = ${accountId} and desired_state = 'ACTIVE'
      union all
      select task_count from connections where account_id = ${accountId} and desired_state = 'ACTIVE'
    ) active`.execute(db);
  const row = usage.rows[0];
  return { jobs: Number(row?.jobs ?? 0), tasks: Number(row?.tasks ?? 0) };
}

export async function setDesiredState(db: Db, kind: JobKind, accountId: string, id: string, desired: DesiredState) {
  await db
    .updateTable(TABLE[kind])
    .set({ desired_state: desired, updated_at: new Date() })
    .where('account_id', '=', accountId)
    .where('id', '=', id)
    .execute();
}

/**
 * Sets the job ACTIVE and where its state starts. `fresh` begins a new state generation
 * (restore NONE, or a chosen snapshot): the old state is left behind, and the spec version
 * moves on so that a job still stopping is deployed again rather than followed.
 * `fromSnapshot` is the savepoint the new generation starts from (with `fresh`).
 * `startPositions`, when given, is where the generation starts without state. Call inside
 * the activating transaction.
 */
export async function activateJob(
  db: Db,
  kind: JobKind,
  accountId: string,
  id: string,
  state: { readonly fresh: boolean; readonly fromSnapshot?: string | undefined; readonly startPositions?: StartPositions | undefined },
): Promise<void> {
  const now = new Date();
  await db
    .updateTable(TABLE[kind])
    .set((eb) => ({
      desired_state: 'ACTIVE' as const,
      updated_at: now,
      state_started_at: state.fresh ? now : eb.fn.coalesce('state_started_at', eb.val(now)),
      ...(state.fresh ? { state_generation: eb('state_generation', '+', 1), initial_snapshot: state.fromSnapshot ?? null } : {}),
      ...(state.fresh || state.startPositions ? { spec_version: eb('spec_version', '+', 1) } : {}),
      ...(state.startPositions ? { start_positions: JSON.stringify(state.startPositions) } : {}),
    }))
    .where('account_id', '=', accountId)
    .where('id', '=', id)
    .execute();
}

/**
 * The columns an update sets when it changes what a job computes (its SQL, its external
 * side, its delivery): the old state may not fit the new plan, so a new generation starts
 * without it, from the same start positions; at once if the job is active.
 */
export function newStateGeneration() {
  return {
    state_generation: sql<number>`state_generation + 1`,
    state_started_at: sql<Date | null>`case when desired_state = 'ACTIVE' then now() else null end`,
    initial_snapshot: null,
  };
}

/** Jobs the reconciler must look at: wanted active, or not yet seen stopped. */
export async function listJobsToReconcile(db: Db): Promise<JobStateRow[]> {
  const [pipelines, connections] = await Promise.all(
    (['PIPELINE', 'CONNECTION'] as const).map(async (kind) => {
      const rows = await db
        .selectFrom(TABLE[kind])
        .select(STATE_COLUMNS)
        .where((eb) => eb.or([eb('desired_state', '=', 'ACTIVE'), eb('actual_state', '!=', 'STOPPED')]))
        .execute();
      return rows.map((row) => ({ kind, ...row }));
    }),
  );
  return [...pipelines!, ...connections!];
}

/** Which of these job ids still exist (a job absent here was deleted). */
export async function existingJobIds(db: Db, kind: JobKind, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await db.selectFrom(TABLE[kind]).select('id').where('id', 'in', ids).execute();
  return new Set(rows.map((row) => row.id));
}

/**
 * Records an observed state. Writes (and appends a transition) only when something
 * changed; returns the transition, or undefined when nothing did.
 */
export async function recordActualState(
  db: Db,
  job: Pick<JobStateRow, 'kind' | 'id' | 'account_id'>,
  state: ActualState,
  reason: string | null,
): Promise<JobTransitionRow | undefined> {
  return db.transaction().execute(async (trx) => {
    const updated = await trx
      .updateTable(TABLE[job.kind])
      .set({ actual_state: state, actual_reason: reason })
      .where('id', '=', job.id)
      .where((eb) =>
        eb.or([eb('actual_state', '!=', state), eb('actual_reason', 'is distinct from', reason)]),
      )
      .executeTakeFirst();
    if (Number(updated.numUpdatedRows) === 0) return undefined;
    return trx
      .insertInto('job_transitions')
      .values({ account_id: job.account_id, job_kind: job.kind, job_id: job.id, state, reason })
      .returningAll()
      .executeTakeFirstOrThrow();
  });
}

export async function listTransitions(
  db: Db,
  accountId: string,
  jobId: string,
  page: PageQuery,
): Promise<JobTransitionRow[]> {
  const rows = await paginate(
    db
      .selectFrom('job_transitions')
      .selectAll()
      .where('account_id', '=', accountId)
      .where('job_id', '=', jobId),
    'id',
    page,
  ).execute();
  // bigserial comes back as a string from pg and as a number from PGlite.
  return rows.map((row) => ({ ...row, id: String(row.id) }));
}

/** A job's transitions since `since`, oldest first: what the restart policy counts. */
export async function transitionsSince(
  db: Db,
  jobId: string,
  since: Date,
): Promise<Pick<JobTransitionRow, 'state' | 'reason' | 'at'>[]> {
  return db
    .selectFrom('job_transitions')
    .select(['state', 'reason', 'at'])
    .where('job_id', '=', jobId)
    .where('at', '>=', since)
    .orderBy('id')
    .execute();
}
