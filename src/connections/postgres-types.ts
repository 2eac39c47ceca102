/**
 * Postgres column types as Flink SQL types, the way Flink CDC's Postgres source and the
 * JDBC connector read and write them. A type without a faithful Flink counterpart is not
 * guessed: the caller names it to the user.
 */

/** A column as `information_schema.columns` describes it. */
export interface PostgresColumn {
  readonly name: string;
  /** `data_type`, e.g. `integer`, `character varying`, `ARRAY`, `USER-DEFINED`. */
  readonly dataType: string;
  /** `udt_name`, e.g. `int4`, `_int4`, `my_enum`. */
  readonly udtName: string;
  readonly numericPrecision: number | null;
  readonly numericScale: number | null;
  readonly datetimePrecision: number | null;
  readonly nullable: boolean;
}

export type MappedType = { readonly type: string } | { readonly unmappable: string };

const SIMPLE: Readonly<Record<string, string>> = {
  smallint: 'SMALLINT',
  integer: 'INT',
  bigint: 'BIGINT',
  real: 'FLOAT',
  'double precision': 'DOUBLE',
  boolean: 'BOOLEAN',
  text: 'STRING',
  'character varying': 'STRING',
  character: 'STRING',
  uuid: 'STRING',
  json: 'STRING',
  jsonb: 'STRING',
  date: 'DATE',
  bytea: 'BYTES',
};

/** Flink keeps at most 9 fractional digits of a second, Postgres at most 6. */
const precisionOf = (column: PostgresColumn) => Math.min(column.datetimePrecision ?? 6, 9);

export function flinkTypeOf(column: PostgresColumn): MappedType {
  const simple = SIMPLE[column.dataType];
  if (simple) return { type: simple };
  switch (column.dataType) {
    case 'numeric':
      // Unbounded numerics hold values no DECIMAL(p, s) can: refuse rather than round.
      if (column.numericPrecision === null) return { unmappable: 'numeric without a precision (give it one, e.g. numeric(12, 2))' };
      if (column.numericPrecision > 38) return { unmappable: `numeric(${column.numericPrecision}, ${column.numericScale ?? 0}): Flink's DECIMAL holds at most 38 digits` };
      return { type: `DECIMAL(${column.numericPrecision}, ${column.numericScale ?? 0})` };
    case 'timestamp without time zone':
      return { type: `TIMESTAMP(${precisionOf(column)})` };
    case 'timestamp with time zone':
      return { type: `TIMESTAMP_LTZ(${precisionOf(column)})` };
    case 'ARRAY':
      return { unmappable: `array ${column.udtName.replace(/^_/, '')}[]` };
    case 'USER-DEFINED':
      return { unmappable: `user-defined type ${column.udtName}` };
    default:
      return { unmappable: column.dataType };
  }
}
