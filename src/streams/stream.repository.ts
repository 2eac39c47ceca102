import type { Db } from '../platform/database.js';
import { paginate, type PageQuery } from '../platform/pagination.js';
import type { StreamField, StreamKind, StreamRow } from './stream.table.js';

export async function insertStream(
  db: Db,
  stream: { id: string; account_id: string; name: string; kind: StreamKind; fields: StreamField[]; primary_key: string[] },
): Promise<StreamRow> {
  return db
    .insertInto('streams')
    .values({ ...stream, fields: JSON.stringify(stream.fields), primary_key: JSON.stringify(stream.primary_key) })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function updateStream(
  db: Db,
  accountId: string,
  id: string,
  changes: { name?: string; fields?: StreamField[] },
): Promise<StreamRow | undefined> {
  return db
    .updateTable('streams')
    .set({
      ...(changes.name !== undefined ? { name: changes.name } : {}),
      ...(changes.fields !== undefined ? { fields: JSON.stringify(changes.fields) } : {}),
      updated_at: new Date(),
    })
    .where('account_id', '=', accountId)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

/**
 * A lock on stream rows, until the transaction ends. `share`: a pipeline or connection is
 * being linked to the stream, which may not be deleted or renamed meanwhile. `update`: the
 * stream is being deleted or changed, after those linking to it have committed.
 */
export type StreamLock = 'share' | 'update';

function locked<Q extends { forShare(): Q; forUpdate(): Q }>(query: Q, lock: StreamLock | undefined): Q {
  if (lock === 'share') return query.forShare();
  if (lock === 'update') return query.forUpdate();
  return query;
}

export async function findStream(db: Db, accountId: string, id: string, lock?: StreamLock): Promise<StreamRow | undefined> {
  return locked(db.selectFrom('streams').selectAll().where('account_id', '=', accountId).where('id', '=', id), lock).executeTakeFirst();
}

export async function findStreamsByIds(db: Db, accountId: string, ids: readonly string[]): Promise<StreamRow[]> {
  if (ids.length === 0) return [];
  return db.selectFrom('streams').selectAll().where('account_id', '=', accountId).where('id', 'in', ids).execute();
}

export async function findStreamsByNames(db: Db, accountId: string, names: readonly string[], lock?: StreamLock): Promise<StreamRow[]> {
  if (names.length === 0) return [];
  return locked(db.selectFrom('streams').selectAll().where('account_id', '=', accountId).where('name', 'in', names), lock).execute();
}

export async function listStreamNames(db: Db, accountId: string): Promise<string[]> {
  const rows = await db.selectFrom('streams').select('name').where('account_id', '=', accountId).execute();
  return rows.map((row) => row.name);
}

export async function listStreams(db: Db, accountId: string, page: PageQuery): Promise<StreamRow[]> {
  return paginate(db.selectFrom('streams').selectAll().where('account_id', '=', accountId), 'id', page).execute();
}

export async function deleteStream(db: Db, accountId: string, id: string): Promise<boolean> {
  const result = await db.deleteFrom('streams').where('account_id', '=', accountId).where('id', '=', id).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/** Pipelines and connections that read or write a stream, by name: what blocks its deletion. */
export async function streamUsers(db: Db, streamId: string): Promise<{ pipelines: string[]; connections: string[] }> {
  const [pipelines, connections] = await Promise.all([
    db
      .selectFrom('pipeline_streams')
      .innerJoin('pipelines', 'pipelines.id', 'pipeline_streams.pipeline_id')
      .select('pipelines.name')
      .distinct()
      .where('pipeline_streams.stream_id', '=', streamId)
      .orderBy('pipelines.name')
      .execute(),
    db.selectFrom('connections').select('name').where('stream_id', '=', streamId).orderBy('name').execute(),
  ]);
  return { pipelines: pipelines.map((r) => r.name), connections: connections.map((r) => r.name) };
}

/** Pipelines of the account that read or write each of the streams, in creation order, by stream id. */
export async function pipelinesUsingStreams(db: Db, accountId: string, streamIds: readonly string[]) {
  if (streamIds.length === 0) return [];
  return db
    .selectFrom('pipelines')
    .innerJoin('pipeline_streams', 'pipeline_streams.pipeline_id', 'pipelines.id')
    .selectAll('pipelines')
    .select('pipeline_streams.stream_id')
    // A pipeline that reads and writes the same stream is one user of it.
    .distinctOn(['pipeline_streams.stream_id', 'pipelines.id'])
    .where('pipelines.account_id', '=', accountId)
    .where('pipeline_streams.stream_id', 'in', streamIds)
    .orderBy('pipeline_streams.stream_id')
    .orderBy('pipelines.id')
    .execute();
}

/** Connections of the account that feed or drain each of the streams, in creation order. */
export async function connectionsUsingStreams(db: Db, accountId: string, streamIds: readonly string[]) {
  if (streamIds.length === 0) return [];
  return db
    .selectFrom('connections')
    .selectAll()
    .where('account_id', '=', accountId)
    .where('stream_id', 'in', streamIds)
    .orderBy('id')
    .execute();
}
