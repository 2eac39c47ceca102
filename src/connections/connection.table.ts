import type { ColumnType, Selectable } from 'kysely';
import type { JobColumns } from '../jobs/job.table.js';

export type ConnectionType = 'SOURCE' | 'SINK';
export type PropertyValue = string | number | boolean;

type Json<T> = ColumnType<T, string, string>;

export interface ConnectionTable extends JobColumns {
  id: string;
  account_id: string;
  name: string;
  connector: string;
  type: ConnectionType;
  stream_id: string;
  properties: Json<Record<string, PropertyValue>>;
  /** Write-only over the API; never returned, never logged. */
  secret_properties: Json<Record<string, PropertyValue>>;
}

export type ConnectionRow = Selectable<ConnectionTable>;
