import type { Db } from '../platform/database.js';
import { newStateGeneration } from '../jobs/job.repository.js';
import { paginate, type PageQuery } from '../platform/pagination.js';
import type { DeliveryGuarantee, TaskSize } from '../jobs/job.table.js';
import type { ConnectionRow, ConnectionType, PropertyValue } from './connection.table.js';

type Properties = Record<string, PropertyValue>;

export async function insertConnection(
  db: Db,
  connection: {
    id: string;
    account_id: string;
    name: string;
    connector: string;
    type: ConnectionType;
    stream_id: string;
    properties: Properties;
    secret_properties: Properties;
    task_size: TaskSize;
    task_count: number;
    delivery_guarantee: DeliveryGuarantee;
    checkpoint_interval_ms: number | null;
  },
): Promise<ConnectionRow> {
  return db
    .insertInto('connections')
    .values({
      ...connection,
      properties: JSON.stringify(connection.properties),
      secret_properties: JSON.stringify(connection.secret_properties),
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function updateConnection(
  db: Db,
  accountId: string,
  id: string,
  changes: {
    name?: string;
    properties?: Properties;
    secret_properties?: Properties;
    task_size?: TaskSize;
    task_count?: number;
    delivery_guarantee?: DeliveryGuarantee;
    checkpoint_interval_ms?: number | null;
    bumpSpec: boolean;
    /** What the job computes changed: its state starts over (newStateGeneration). */
    newGeneration?: boolean;
  },
): Promise<ConnectionRow | undefined> {
  const { bumpSpec, newGeneration, properties, secret_properties, ...columns } = changes;
  return db
    .updateTable('connections')
    .set((eb) => ({
      ...columns,
      ...(properties !== undefined ? { properties: JSON.stringify(properties) } : {}),
      ...(secret_properties !== undefined ? { secret_properties: JSON.stringify(secret_properties) } : {}),
      updated_at: new Date(),
      spec_version: bumpSpec ? eb('spec_version', '+', 1) : eb.ref('spec_version'),
      ...(newGeneration ? newStateGeneration() : {}),
    }))
    .where('account_id', '=', accountId)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

export async function findConnection(db: Db, accountId: string, id: string): Promise<ConnectionRow | undefined> {
  return db.selectFrom('connections').selectAll().where('account_id', '=', accountId).where('id', '=', id).executeTakeFirst();
}

export async function listConnections(db: Db, accountId: string, page: PageQuery): Promise<ConnectionRow[]> {
  return paginate(db.selectFrom('connections').selectAll().where('account_id', '=', accountId), 'id', page).execute();
}

export async function deleteConnection(db: Db, accountId: string, id: string): Promise<boolean> {
  const result = await db.deleteFrom('connections').where('account_id', '=', accountId).where('id', '=', id).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}
