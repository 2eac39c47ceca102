import type { Db } from '../platform/database.js';
import { newStateGeneration } from '../jobs/job.repository.js';
import { paginate, type PageQuery } from '../platform/pagination.js';
import type { DeliveryGuarantee, TaskSize } from '../jobs/job.table.js';
import type { PipelineRow } from './pipeline.table.js';

export interface PipelineStreams {
  readonly outputId: string;
  readonly inputIds: readonly string[];
}

/** Inserts a pipeline and its stream links; call inside a transaction. */
export async function insertPipeline(
  db: Db,
  pipeline: {
    id: string;
    account_id: string;
    name: string;
    sql: string;
    task_size: TaskSize;
    task_count: number;
    delivery_guarantee: DeliveryGuarantee;
    checkpoint_interval_ms: number | null;
  },
  streams: PipelineStreams,
): Promise<PipelineRow> {
  const row = await db.insertInto('pipelines').values(pipeline).returningAll().executeTakeFirstOrThrow();
  await linkStreams(db, pipeline.id, streams);
  return row;
}

/** Replaces a pipeline's stream links; call inside a transaction. */
export async function linkStreams(db: Db, pipelineId: string, streams: PipelineStreams): Promise<void> {
  await db.deleteFrom('pipeline_streams').where('pipeline_id', '=', pipelineId).execute();
  await db
    .insertInto('pipeline_streams')
    .values([
      { pipeline_id: pipelineId, stream_id: streams.outputId, role: 'OUTPUT' as const },
      ...streams.inputIds.map((id) => ({ pipeline_id: pipelineId, stream_id: id, role: 'INPUT' as const })),
    ])
    .execute();
}

export async function updatePipeline(
  db: Db,
  accountId: string,
  id: string,
  changes: {
    name?: string;
    sql?: string;
    task_size?: TaskSize;
    task_count?: number;
    delivery_guarantee?: DeliveryGuarantee;
    checkpoint_interval_ms?: number | null;
    bumpSpec: boolean;
    /** What the job computes changed: its state starts over (newStateGeneration). */
    newGeneration?: boolean;
  },
): Promise<PipelineRow | undefined> {
  const { bumpSpec, newGeneration, ...columns } = changes;
  return db
    .updateTable('pipelines')
    .set((eb) => ({
      ...columns,
      updated_at: new Date(),
      spec_version: bumpSpec ? eb('spec_version', '+', 1) : eb.ref('spec_version'),
      ...(newGeneration ? newStateGeneration() : {}),
    }))
    .where('account_id', '=', accountId)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

export async function findPipeline(db: Db, accountId: string, id: string): Promise<PipelineRow | undefined> {
  return db.selectFrom('pipelines').selectAll().where('account_id', '=', accountId).where('id', '=', id).executeTakeFirst();
}

export async function listPipelines(db: Db, accountId: string, page: PageQuery): Promise<PipelineRow[]> {
  return paginate(db.selectFrom('pipelines').selectAll().where('account_id', '=', accountId), 'id', page).execute();
}

export async function pipelineStreamIds(db: Db, pipelineId: string): Promise<{ inputIds: string[]; outputId: string | undefined }> {
  const rows = await db.selectFrom('pipeline_streams').select(['stream_id', 'role']).where('pipeline_id', '=', pipelineId).execute();
  return {
    inputIds: rows.filter((r) => r.role === 'INPUT').map((r) => r.stream_id),
    outputId: rows.find((r) => r.role === 'OUTPUT')?.stream_id,
  };
}

/** The stream links of many pipelines, by pipeline id (a pipeline without links is left out). */
export async function pipelineStreamIdsOf(db: Db, pipelineIds: readonly string[]): Promise<Map<string, PipelineStreams>> {
  if (pipelineIds.length === 0) return new Map();
  const rows = await db
    .selectFrom('pipeline_streams')
    .select(['pipeline_id', 'stream_id', 'role'])
    .where('pipeline_id', 'in', pipelineIds)
    .execute();
  const links = new Map<string, { outputId: string; inputIds: string[] }>();
  for (const row of rows) {
    const link = links.get(row.pipeline_id) ?? { outputId: '', inputIds: [] };
    if (row.role === 'OUTPUT') link.outputId = row.stream_id;
    else link.inputIds.push(row.stream_id);
    links.set(row.pipeline_id, link);
  }
  return links;
}

export async function deletePipeline(db: Db, accountId: string, id: string): Promise<boolean> {
  const result = await db.deleteFrom('pipelines').where('account_id', '=', accountId).where('id', '=', id).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}
