import type { PropertyValue } from '../connection.table.js';
import type { OptionDefinition, OptionProblem } from './connector-definition.js';

/**
 * What both Postgres connectors (`postgres-cdc` and `jdbc`) need to reach one table: the
 * server, the database, the table, and a login. The keys are the Flink CDC connector's;
 * the JDBC connector's `url` and `table-name` are made from them, so a tenant never writes
 * a JDBC URL (its parameters name classes the driver would load, such as `socketFactory`).
 */

export const DEFAULT_PORT = 5432;
export const DEFAULT_SCHEMA = 'public';

/** A host name, an IPv4 address or a bracketed IPv6 address. */
const HOST = /^(?:[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])$/;
/**
 * An unquoted SQL identifier (Postgres folds it to lower case). Flink CDC reads schema
 * and table names as patterns and the JDBC connector writes them unquoted, so nothing
 * else can be passed on safely.
 */
export const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
/** Database names go into a JDBC URL's path. */
const DATABASE = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,62}$/;

export const serverOptions: readonly OptionDefinition[] = [
  { key: 'hostname', type: 'STRING', required: true, secret: false, description: 'Host name or IP address of the Postgres server (not the platform’s own database).' },
  { key: 'port', type: 'INT', required: false, secret: false, default: DEFAULT_PORT, min: 1, max: 65535, description: 'Port of the Postgres server.' },
  { key: 'database-name', type: 'STRING', required: true, secret: false, description: 'The database that holds the table.' },
  {
    key: 'schema-name',
    type: 'STRING',
    required: false,
    secret: false,
    default: DEFAULT_SCHEMA,
    description: 'The schema that holds the table: an unquoted identifier (letters, digits, underscores).',
  },
  {
    key: 'table-name',
    type: 'STRING',
    required: true,
    secret: false,
    description: 'The one table: an unquoted identifier (letters, digits, underscores; Postgres folds it to lower case), never a pattern.',
  },
  { key: 'username', type: 'STRING', required: true, secret: false, description: 'The Postgres role the job logs in as.' },
  { key: 'password', type: 'STRING', required: true, secret: true, description: 'The role’s password (write-only).' },
];

/** Problems of the server options' values that their declarations cannot say. */
export function serverProblems(values: ReadonlyMap<string, PropertyValue>): OptionProblem[] {
  const problems: OptionProblem[] = [];
  const mismatch = (key: string, pattern: RegExp, message: string) => {
    const value = values.get(key);
    if (typeof value === 'string' && !pattern.test(value)) problems.push({ key, message });
  };
  mismatch('hostname', HOST, 'must be a host name, an IPv4 address or a bracketed IPv6 address');
  mismatch('database-name', DATABASE, 'must be a database name of letters, digits, underscores and hyphens (at most 63)');
  mismatch('schema-name', IDENTIFIER, 'must be an unquoted identifier: a letter or underscore, then letters, digits or underscores (at most 63)');
  mismatch('table-name', IDENTIFIER, 'must be one table’s unquoted identifier (a letter or underscore, then letters, digits or underscores; at most 63), never a pattern or a list');
  const username = values.get('username');
  if (typeof username === 'string' && /[\u0000-\u001f\u007f]/.test(username)) {
    problems.push({ key: 'username', message: 'must not contain control characters' });
  }
  return problems;
}

/** `host:port` of the stored properties, for the check against the platform's own database. */
export function serverOf(properties: Readonly<Record<string, unknown>>): string | undefined {
  const host = properties['hostname'];
  if (typeof host !== 'string') return undefined;
  const port = properties['port'];
  return `${host}:${typeof port === 'number' || typeof port === 'string' ? port : DEFAULT_PORT}`;
}

export interface ServerSettings {
  readonly hostname: string;
  readonly port: number;
  readonly database: string;
  readonly schema: string;
  readonly table: string;
}

export function serverSettings(properties: Readonly<Record<string, PropertyValue>>): ServerSettings {
  return {
    hostname: String(properties['hostname']),
    port: Number(properties['port'] ?? DEFAULT_PORT),
    database: String(properties['database-name']),
    schema: String(properties['schema-name'] ?? DEFAULT_SCHEMA),
    table: String(properties['table-name']),
  };
}

/** A name of Weir's own for something a connection creates on the server (a slot, a publication). */
export function derivedName(connectionId: string): string {
  return `weir_${connectionId.replaceAll('-', '').toLowerCase()}`;
}
