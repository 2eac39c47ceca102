import type { ColumnType, Selectable } from 'kysely';
import type { JobKind } from './job.table.js';

/** Why a savepoint was taken: asked for (snapshotPipeline, snapshotConnection), or the job was deactivated. */
export const SNAPSHOT_TRIGGERS = ['ON_DEMAND', 'DEACTIVATION'] as const;
export type SnapshotTrigger = (typeof SNAPSHOT_TRIGGERS)[number];

/** A complete savepoint a job keeps (migration 0005). */
export interface JobSnapshotTable {
  id: string;
  account_id: string;
  job_kind: JobKind;
  job_id: string;
  trigger: SnapshotTrigger;
  state_generation: number;
  spec_version: number;
  /** Where the runtime keeps its files (a `file:` or object-store URI). */
  location: string;
  /** bigint: pg hands it back as a string. */
  size_bytes: ColumnType<string | number, number, never>;
  pinned: ColumnType<boolean, boolean | undefined, boolean>;
  taken_at: ColumnType<Date, Date | undefined, never>;
}

export type JobSnapshotRow = Omit<Selectable<JobSnapshotTable>, 'size_bytes'> & { readonly size_bytes: number };
