import type { PropertyValue } from '../connection.table.js';
import type { ConnectorDefinition, FlinkOptionsInput, OptionProblem } from './connector-definition.js';
import { derivedName, serverOf, serverOptions, serverProblems, serverSettings } from './postgres-server.js';

/** Postgres replication slot names: lower-case letters, digits and underscores, at most 63 (room left for Flink CDC's own suffixes). */
const SLOT_NAME = /^[a-z0-9_]{1,50}$/;
const PUBLICATION_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const STARTUP_DEFAULT = 'initial';

/**
 * Flink CDC's Postgres source: an initial snapshot of one table, then its changes from a
 * logical replication slot (the `pgoutput` plugin, built into Postgres 10 and later), into
 * a CHANGE stream keyed by the table's primary key. The slot outlives deactivation, so a
 * connection resumes where it stopped; it is dropped with the connection
 * (postgres-admin.ts). Weir creates the publication (for this table only) unless the
 * user names one that exists.
 */
export const postgresCdc: ConnectorDefinition = {
  name: 'postgres-cdc',
  description:
    'Reads one Postgres table: a snapshot of its rows, then every insert, update and delete as they commit (logical replication). Feeds a CHANGE stream whose primary key is the table’s.',
  types: ['SOURCE'],
  streamKinds: ['CHANGE'],
  keyed: true,
  serverOf,
  options: [
    ...serverOptions,
    {
      key: 'slot.name',
      type: 'STRING',
      required: false,
      secret: false,
      description:
        'Replication slot the connection reads from (lower-case letters, digits, underscores; at most 50). Default: weir_ and the connection’s id, unique to it. Kept while the connection is inactive, dropped when it is deleted.',
    },
    {
      key: 'publication.name',
      type: 'STRING',
      required: false,
      secret: false,
      description:
        'Publication that selects the table for replication. Default: weir_ and the connection’s id, created for this table if it does not exist (the role must own the table) and dropped with the connection.',
    },
    {
      key: 'scan.startup.mode',
      type: 'ENUM',
      enumValues: ['initial', 'latest-offset'],
      default: STARTUP_DEFAULT,
      required: false,
      secret: false,
      description: 'initial: the table’s current rows first, then its changes. latest-offset: only changes made after the first activation.',
    },
  ],
  check: ({ values }) => [
    ...serverProblems(values),
    ...mismatch(values, 'slot.name', SLOT_NAME, 'must be a replication slot name: lower-case letters, digits and underscores, at most 50'),
    ...mismatch(values, 'publication.name', PUBLICATION_NAME, 'must be a publication name: a lower-case letter or underscore, then lower-case letters, digits or underscores'),
  ],
  flinkOptions: ({ connectionId, properties, secretProperties }: FlinkOptionsInput) => {
    const server = serverSettings(properties);
    return {
      properties: {
        hostname: server.hostname,
        port: server.port,
        'database-name': server.database,
        'schema-name': server.schema,
        'table-name': server.table,
        username: String(properties['username']),
        'slot.name': cdcSlotName(connectionId, properties),
        'decoding.plugin.name': 'pgoutput',
        'debezium.publication.name': cdcPublicationName(connectionId, properties),
        // Only the connection's own table, never FOR ALL TABLES (which needs a superuser).
        'debezium.publication.autocreate.mode': 'filtered',
        'scan.startup.mode': properties['scan.startup.mode'] ?? STARTUP_DEFAULT,
        // Changes as upserts and deletes by key: what the CHANGE stream (upsert-kafka) keeps,
        // and what Postgres logs by default. The default, `all`, also emits each update's
        // old row, which Postgres logs only under REPLICA IDENTITY FULL (every column of
        // every updated row in the WAL).
        'changelog-mode': 'upsert',
        // The snapshot is read in chunks, in parallel, without locks, and resumes from a
        // checkpoint; then the slot is read from where the snapshot ended.
        'scan.incremental.snapshot.enabled': true,
      },
      secretProperties: { password: secretProperties['password']! },
    };
  },
};

/** The replication slot a `postgres-cdc` connection reads from. */
export function cdcSlotName(connectionId: string, properties: Readonly<Record<string, PropertyValue>>): string {
  const given = properties['slot.name'];
  return typeof given === 'string' ? given : derivedName(connectionId);
}

/** The publication a `postgres-cdc` connection uses (Weir's own unless the user named one). */
export function cdcPublicationName(connectionId: string, properties: Readonly<Record<string, PropertyValue>>): string {
  const given = properties['publication.name'];
  return typeof given === 'string' ? given : derivedName(connectionId);
}

function mismatch(values: ReadonlyMap<string, PropertyValue>, key: string, pattern: RegExp, message: string): OptionProblem[] {
  const value = values.get(key);
  return typeof value === 'string' && !pattern.test(value) ? [{ key, message }] : [];
}
