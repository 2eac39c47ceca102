import type { Db } from '../platform/database.js';
import { newId } from '../platform/ids.js';
import type { JobKind } from './job.table.js';
import type { JobSnapshotRow, JobSnapshotTable, SnapshotTrigger } from './snapshot.table.js';

const rowOf = (row: Omit<JobSnapshotRow, 'size_bytes'> & { size_bytes: string | number }): JobSnapshotRow => ({
  ...row,
  size_bytes: Number(row.size_bytes),
});

export interface NewSnapshot {
  readonly accountId: string;
  readonly jobKind: JobKind;
  readonly jobId: string;
  readonly trigger: SnapshotTrigger;
  readonly stateGeneration: number;
  readonly specVersion: number;
  readonly location: string;
  readonly sizeBytes: number;
}

export async function insertSnapshot(db: Db, snapshot: NewSnapshot): Promise<JobSnapshotRow> {
  const row = await db
    .insertInto('job_snapshots')
    .values({
      id: newId(),
      account_id: snapshot.accountId,
      job_kind: snapshot.jobKind,
      job_id: snapshot.jobId,
      trigger: snapshot.trigger,
      state_generation: snapshot.stateGeneration,
      spec_version: snapshot.specVersion,
      location: snapshot.location,
      size_bytes: snapshot.sizeBytes,
    } satisfies Partial<Record<keyof JobSnapshotTable, unknown>>)
    .returningAll()
    .executeTakeFirstOrThrow();
  return rowOf(row);
}

/** A job's snapshots, newest first. */
const newestFirst = (db: Db, jobId: string) =>
  db.selectFrom('job_snapshots').selectAll().where('job_id', '=', jobId).orderBy('taken_at', 'desc').orderBy('id', 'desc');

export async function listSnapshots(db: Db, accountId: string, jobId: string): Promise<JobSnapshotRow[]> {
  const rows = await newestFirst(db, jobId).where('account_id', '=', accountId).execute();
  return rows.map(rowOf);
}

export async function findSnapshot(db: Db, accountId: string, id: string): Promise<JobSnapshotRow | undefined> {
  const row = await db.selectFrom('job_snapshots').selectAll().where('account_id', '=', accountId).where('id', '=', id).executeTakeFirst();
  return row && rowOf(row);
}

export async function setPinned(db: Db, accountId: string, id: string, pinned: boolean): Promise<void> {
  await db.updateTable('job_snapshots').set({ pinned }).where('account_id', '=', accountId).where('id', '=', id).execute();
}

export async function countPinned(db: Db, jobId: string): Promise<number> {
  const row = await db
    .selectFrom('job_snapshots')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('job_id', '=', jobId)
    .where('pinned', '=', true)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * The snapshots the retention drops: unpinned ones older than the newest `keep`, except
 * `protect` (the savepoint the job's generation starts from, until it has its own).
 */
export async function snapshotsBeyond(db: Db, jobId: string, keep: number, protect: string | null): Promise<JobSnapshotRow[]> {
  const rows = await newestFirst(db, jobId).where('pinned', '=', false).offset(keep).limit(1000).execute();
  return rows.map(rowOf).filter((row) => row.location !== protect);
}

export async function deleteSnapshot(db: Db, id: string): Promise<void> {
  await db.deleteFrom('job_snapshots').where('id', '=', id).execute();
}

/** With the job: its files go with the rest of its state. */
export async function deleteJobSnapshots(db: Db, accountId: string, jobId: string): Promise<void> {
  await db.deleteFrom('job_snapshots').where('account_id', '=', accountId).where('job_id', '=', jobId).execute();
}
