import pg from 'pg';
import type { StreamField } from '../streams/stream.table.js';
import type { PropertyValue } from './connection.table.js';
import { cdcPublicationName } from './connectors/postgres-cdc.js';
import { derivedName, serverSettings, type ServerSettings } from './connectors/postgres-server.js';
import { flinkTypeOf, type PostgresColumn } from './postgres-types.js';

/**
 * The gateway's own look at a user's Postgres table, before any job runs: whether it can
 * be reached and logged into, what the table's columns are as Flink types, and whether
 * the server is ready for what the connector will do (logical replication for CDC,
 * matching columns and a key for the JDBC sink). Each check reports the server's own
 * message, never a password.
 */

const CONNECT_TIMEOUT_MS = 5000;
const QUERY_TIMEOUT_MS = 10_000;

export type CheckName = 'REACHABLE' | 'LOGIN' | 'TABLE' | 'TYPES' | 'WAL_LEVEL' | 'REPLICATION' | 'PUBLICATION' | 'COLUMNS' | 'PRIMARY_KEY' | 'PRIVILEGES';

export interface CheckResult {
  readonly name: CheckName;
  readonly passed: boolean;
  readonly message: string;
}

export interface TableSchema {
  readonly fields: readonly StreamField[];
  readonly primaryKey: readonly string[];
  /** Columns whose type Weir cannot map, with what they are. */
  readonly unmappable: readonly { readonly column: string; readonly type: string }[];
}

export interface Login {
  readonly properties: Readonly<Record<string, PropertyValue>>;
  readonly secretProperties: Readonly<Record<string, PropertyValue>>;
}

/** Runs `use` with a connected client, or returns the failed REACHABLE / LOGIN check. */
export async function withServer<T>(login: Login, use: (client: pg.Client, server: ServerSettings) => Promise<T>): Promise<T | CheckResult> {
  const server = serverSettings(login.properties);
  const client = new pg.Client({
    host: server.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: server.port,
    database: server.database,
    user: String(login.properties['username']),
    password: String(login.secretProperties['password'] ?? ''),
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    query_timeout: QUERY_TIMEOUT_MS,
    application_name: 'weir-check',
  });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => {});
    return connectFailure(error, server);
  }
  try {
    return await use(client, server);
  } finally {
    await client.end().catch(() => {});
  }
}

export const isCheck = (value: unknown): value is CheckResult =>
  typeof value === 'object' && value !== null && 'passed' in value && 'name' in value;

function connectFailure(error: unknown, server: ServerSettings): CheckResult {
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  const where = `${server.hostname}:${server.port}`;
  // SQLSTATE class 28 (authorization) and 3D000 (no such database): the server answered.
  if (code && (/^28/.test(code) || code === '3D000')) return { name: 'LOGIN', passed: false, message };
  if (/timeout/i.test(message)) return { name: 'REACHABLE', passed: false, message: `${where} did not answer within ${CONNECT_TIMEOUT_MS / 1000} s` };
  return { name: 'REACHABLE', passed: false, message: `${where}: ${message}` };
}

/** The table's columns (as Flink types) and primary key; undefined if there is no such table. */
export async function readTableSchema(client: pg.Client, schema: string, table: string): Promise<TableSchema | undefined> {
  // Unquoted identifiers, as the connectors write them: Postgres folds them to lower case.
  const [schemaName, tableName] = [schema.toLowerCase(), table.toLowerCase()];
  const columns = await client.query<{
    column_name: string;
    data_type: string;
    udt_name: string;
    numeric_precision: number | null;
    numeric_scale: number | null;
    datetime_precision: number | null;
    is_nullable: string;
  }>(
    `SELECT column_name, data_type, udt_name, numeric_precision, numeric_scale, datetime_precision, is_nullable
       FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`,
    [schemaName, tableName],
  );
  if (columns.rows.length === 0) return undefined;
  const key = await client.query<{ column_name: string }>(
    `SELECT a.attname AS column_name
       FROM pg_index i
       JOIN pg_class c ON c.oid = i.indrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position) ON true
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
      WHERE i.indisprimary AND n.nspname = $1 AND c.relname = $2
      ORDER BY k.position`,
    [schemaName, tableName],
  );
  const fields: StreamField[] = [];
  const unmappable: { column: string; type: string }[] = [];
  for (const row of columns.rows) {
    const column: PostgresColumn = {
      name: row.column_name,
      dataType: row.data_type,
      udtName: row.udt_name,
      numericPrecision: row.numeric_precision,
      numericScale: row.numeric_scale,
      datetimePrecision: row.datetime_precision,
      nullable: row.is_nullable === 'YES',
    };
    const mapped = flinkTypeOf(column);
    if ('type' in mapped) fields.push({ name: column.name, type: mapped.type, nullable: column.nullable });
    else unmappable.push({ column: column.name, type: mapped.unmappable });
  }
  return { fields, primaryKey: key.rows.map((r) => r.column_name), unmappable };
}

export type PostgresConnector = 'postgres-cdc' | 'jdbc';

/** The connectors whose server the gateway checks (testConnection, activation). */
export const isPostgresConnector = (connector: string): connector is PostgresConnector => connector === 'postgres-cdc' || connector === 'jdbc';

export interface CheckInput extends Login {
  readonly connector: PostgresConnector;
  readonly connectionId?: string;
  /** The stream the connection feeds or drains, when known: its fields are compared with the table's. */
  readonly stream?: { readonly fields: readonly StreamField[]; readonly primaryKey: readonly string[] };
}

/** Every check of a Postgres connection, in order; the first failure of reaching or logging in ends the list. */
export async function checkPostgres(input: CheckInput): Promise<CheckResult[]> {
  const outcome = await withServer(input, async (client, server) => {
    const checks: CheckResult[] = [
      { name: 'REACHABLE', passed: true, message: `${server.hostname}:${server.port} answered` },
      { name: 'LOGIN', passed: true, message: `logged in to ${server.database} as ${String(input.properties['username'])}` },
    ];
    const schema = await readTableSchema(client, server.schema, server.table);
    const qualified = `${server.schema}.${server.table}`;
    if (!schema) {
      checks.push({ name: 'TABLE', passed: false, message: `there is no table ${qualified} that ${String(input.properties['username'])} can see` });
      return checks;
    }
    checks.push({ name: 'TABLE', passed: true, message: `${qualified} has ${schema.fields.length + schema.unmappable.length} columns` });
    checks.push(
      schema.unmappable.length === 0
        ? { name: 'TYPES', passed: true, message: 'every column has a Flink type' }
        : { name: 'TYPES', passed: false, message: `Weir cannot map ${schema.unmappable.map((u) => `${u.column} (${u.type})`).join(', ')}` },
    );
    if (input.connector === 'postgres-cdc') checks.push(...(await cdcChecks(client, server, schema, input)));
    else checks.push(...(await sinkChecks(client, server, schema, input)));
    if (input.stream) checks.push(columnCheck(schema, input.stream, input.connector));
    return checks;
  });
  return isCheck(outcome) ? [outcome] : outcome;
}

async function cdcChecks(client: pg.Client, server: ServerSettings, schema: TableSchema, input: CheckInput): Promise<CheckResult[]> {
  const checks: CheckResult[] = [];
  const wal = (await client.query<{ wal_level: string }>('SHOW wal_level')).rows[0]!.wal_level;
  checks.push(
    wal === 'logical'
      ? { name: 'WAL_LEVEL', passed: true, message: 'wal_level is logical' }
      : { name: 'WAL_LEVEL', passed: false, message: `wal_level is ${wal}; change data capture needs wal_level = logical (set it and restart the server)` },
  );
  const role = (
    await client.query<{ replication: boolean }>('SELECT rolreplication OR rolsuper AS replication FROM pg_roles WHERE rolname = current_user')
  ).rows[0];
  checks.push(
    role?.replication
      ? { name: 'REPLICATION', passed: true, message: 'the role may replicate' }
      : { name: 'REPLICATION', passed: false, message: `role ${String(input.properties['username'])} lacks REPLICATION (ALTER ROLE … REPLICATION)` },
  );
  checks.push(
    schema.primaryKey.length > 0
      ? { name: 'PRIMARY_KEY', passed: true, message: `primary key (${schema.primaryKey.join(', ')})` }
      : { name: 'PRIMARY_KEY', passed: false, message: `${server.schema}.${server.table} has no primary key; a CHANGE stream needs one` },
  );
  const given = input.properties['publication.name'];
  // A connection not yet created has no id, so Weir's own name for it is not known yet.
  const publication = input.connectionId !== undefined ? cdcPublicationName(input.connectionId, input.properties) : typeof given === 'string' ? given : undefined;
  const own = input.connectionId !== undefined && publication === derivedName(input.connectionId);
  const published =
    publication === undefined
      ? []
      : (
          await client.query<{ tables: string | null }>(
            `SELECT (SELECT count(*) FROM pg_publication_tables t WHERE t.pubname = p.pubname AND t.schemaname = $2 AND t.tablename = $3)::text AS tables
               FROM pg_publication p WHERE p.pubname = $1`,
            [publication, server.schema.toLowerCase(), server.table.toLowerCase()],
          )
        ).rows;
  if (published.length > 0) {
    checks.push(
      published[0]!.tables !== '0'
        ? { name: 'PUBLICATION', passed: true, message: `publication ${publication} includes the table` }
        : { name: 'PUBLICATION', passed: false, message: `publication ${publication} does not include ${server.schema}.${server.table}` },
    );
  } else if (given !== undefined && !own) {
    checks.push({ name: 'PUBLICATION', passed: false, message: `there is no publication ${publication}` });
  } else {
    const owner = await client.query<{ owns: boolean }>(
      `SELECT pg_has_role(current_user, c.relowner, 'USAGE') AS owns FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname = $2`,
      [server.schema.toLowerCase(), server.table.toLowerCase()],
    );
    checks.push(
      owner.rows[0]?.owns
        ? { name: 'PUBLICATION', passed: true, message: 'Weir will create a publication for the table (the role owns it)' }
        : {
            name: 'PUBLICATION',
            passed: false,
            message: `the role does not own ${server.schema}.${server.table}, so Weir cannot create its publication; create one (CREATE PUBLICATION … FOR TABLE …) and name it in publication.name`,
          },
    );
  }
  return checks;
}

async function sinkChecks(client: pg.Client, server: ServerSettings, schema: TableSchema, input: CheckInput): Promise<CheckResult[]> {
  const privileges = await client.query<{ insert: boolean; update: boolean; delete: boolean }>(
    `SELECT has_table_privilege(c.oid, 'INSERT') AS insert, has_table_privilege(c.oid, 'UPDATE') AS update, has_table_privilege(c.oid, 'DELETE') AS delete
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`,
    [server.schema.toLowerCase(), server.table.toLowerCase()],
  );
  const granted = privileges.rows[0];
  const keyed = (input.stream?.primaryKey.length ?? 0) > 0;
  const needed = keyed ? (['insert', 'update', 'delete'] as const) : (['insert'] as const);
  const missing = needed.filter((privilege) => !granted?.[privilege]);
  const checks: CheckResult[] = [
    missing.length === 0
      ? { name: 'PRIVILEGES', passed: true, message: `the role may ${needed.join(', ')}` }
      : { name: 'PRIVILEGES', passed: false, message: `the role lacks ${missing.map((m) => m.toUpperCase()).join(', ')} on ${server.schema}.${server.table}` },
  ];
  if (keyed) {
    const key = input.stream!.primaryKey.map((k) => k.toLowerCase());
    const same = key.length === schema.primaryKey.length && key.every((k) => schema.primaryKey.includes(k));
    checks.push(
      same
        ? { name: 'PRIMARY_KEY', passed: true, message: `upserts by (${key.join(', ')})` }
        : {
            name: 'PRIMARY_KEY',
            passed: false,
            message: `the stream's key (${key.join(', ')}) is not the table's primary key (${schema.primaryKey.join(', ') || 'none'}); upserts need it`,
          },
    );
  }
  return checks;
}

/** The stream's fields against the table's columns: CDC reads them by name, JDBC writes them by name. */
function columnCheck(schema: TableSchema, stream: NonNullable<CheckInput['stream']>, connector: CheckInput['connector']): CheckResult {
  const columns = new Map(schema.fields.map((f) => [f.name, f]));
  const problems: string[] = [];
  for (const field of stream.fields) {
    const column = columns.get(connector === 'jdbc' ? field.name.toLowerCase() : field.name);
    if (!column) problems.push(`${field.name} is not a column of the table`);
    else if (column.type !== field.type) problems.push(`${field.name} is ${field.type} in the stream but ${column.type} in the table`);
  }
  return problems.length === 0
    ? { name: 'COLUMNS', passed: true, message: 'every field of the stream is a column of the same type' }
    : { name: 'COLUMNS', passed: false, message: problems.join('; ') };
}
