import type { ColumnType, Selectable } from 'kysely';

export type StreamKind = 'APPEND' | 'CHANGE';

export interface StreamField {
  readonly name: string;
  /** A Flink SQL data type, normalised (e.g. `DECIMAL(10, 2)`, `ROW<a INT>`). */
  readonly type: string;
  readonly nullable: boolean;
}

type Json<T> = ColumnType<T, string, string>;

export interface StreamTable {
  id: string;
  account_id: string;
  name: string;
  kind: StreamKind;
  fields: Json<StreamField[]>;
  primary_key: Json<string[]>;
  created_at: ColumnType<Date, never, never>;
  updated_at: ColumnType<Date, never, Date>;
}

export type StreamRow = Selectable<StreamTable>;
