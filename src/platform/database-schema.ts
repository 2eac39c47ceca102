import type { AccountTable, ApiKeyTable, TierTable } from '../accounts/account.table.js';
import type { ConnectionTable } from '../connections/connection.table.js';
import type { JobTransitionTable } from '../jobs/job.table.js';
import type { JobSnapshotTable } from '../jobs/snapshot.table.js';
import type { PipelineStreamTable, PipelineTable } from '../pipelines/pipeline.table.js';
import type { StreamTable } from '../streams/stream.table.js';

/** Every table Weir's repositories may touch. */
export interface WeirDatabase {
  tiers: TierTable;
  accounts: AccountTable;
  api_keys: ApiKeyTable;
  streams: StreamTable;
  connections: ConnectionTable;
  pipelines: PipelineTable;
  pipeline_streams: PipelineStreamTable;
  job_transitions: JobTransitionTable;
  job_snapshots: JobSnapshotTable;
}
