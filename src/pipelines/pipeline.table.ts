import type { Selectable } from 'kysely';
import type { JobColumns } from '../jobs/job.table.js';

export interface PipelineTable extends JobColumns {
  id: string;
  account_id: string;
  name: string;
  sql: string;
}

export interface PipelineStreamTable {
  pipeline_id: string;
  stream_id: string;
  role: 'INPUT' | 'OUTPUT';
}

export type PipelineRow = Selectable<PipelineTable>;
