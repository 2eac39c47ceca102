import type { StreamAccess } from '../streams/kafka-endpoint.js';
import type { JobSpec, StreamBinding } from '../jobs/job-spec.js';
import type { DeliveryGuarantee } from '../jobs/job.table.js';
import { kafkaSinkDelivery } from '../jobs/delivery.js';
import { startupOptions, type StartPositions } from '../jobs/start-position.js';

/**
 * The Flink SQL a job runs: every stream it touches registered as a temporary Kafka
 * table over the stream's topic, then the one INSERT. Streams are the account's own,
 * by construction: only the bindings in the spec are registered.
 */

export interface KafkaTarget {
  /** The servers and the job's own principal (StreamStorage.grantJob). */
  readonly access: StreamAccess;
  readonly topicFor: (stream: StreamBinding) => string;
  /** Consumer group of the job (offsets also live in its checkpoints), and the prefix of its transactional ids. */
  readonly groupId: string;
}

/** A job's Kafka target with how it delivers what it writes and where it starts reading (previews write nothing). */
interface TableTarget extends KafkaTarget {
  readonly deliveryGuarantee?: DeliveryGuarantee;
  readonly startPositions?: StartPositions;
}

/** Temporary tables Weir adds for a connection's external side. */
export const EXTERNAL_TABLE = '__weir_external';

const quoteIdentifier = (name: string) => `\`${name.replaceAll('`', '``')}\``;
const quoteString = (value: string) => `'${value.replaceAll("'", "''")}'`;

function withOptions(options: Record<string, string | number | boolean>): string {
  const entries = Object.entries(options).map(([key, value]) => `${quoteString(key)} = ${quoteString(String(value))}`);
  return `WITH (${entries.join(', ')})`;
}

function columns(stream: StreamBinding): string {
  const fields = stream.fields.map((f) => `${quoteIdentifier(f.name)} ${f.type}${f.nullable ? '' : ' NOT NULL'}`);
  if (stream.primaryKey.length > 0) {
    fields.push(`PRIMARY KEY (${stream.primaryKey.map(quoteIdentifier).join(', ')}) NOT ENFORCED`);
  }
  return fields.join(', ');
}

/** JSON as Weir writes records: SQL timestamps, decimals as plain numbers. */
const JSON_FORMAT = {
  'json.timestamp-format.standard': 'SQL',
  'json.encode.decimal-as-plain-number': 'true',
} as const;

/** `properties.bootstrap.servers` and the principal's client settings, as Flink's options. */
function connectionOptions(access: StreamAccess): Record<string, string> {
  return {
    'properties.bootstrap.servers': access.bootstrapServers,
    ...prefixed('properties.', access.clientProperties),
  };
}

/**
 * What every reader of a stream sets: records of transactions not yet committed (or
 * aborted) are never seen, so exactly-once output is exactly once to whoever reads it.
 */
const READ_COMMITTED = { 'properties.isolation.level': 'read_committed' } as const;

function streamTable(stream: StreamBinding, kafka: TableTarget, role: 'read' | 'write'): string {
  const topic = kafka.topicFor(stream);
  const access =
    role === 'read'
      ? // The job's principal may use its own group only (Flink would make up one).
        { 'properties.group.id': kafka.groupId, ...READ_COMMITTED }
      : kafkaSinkDelivery(kafka.deliveryGuarantee ?? 'AT_LEAST_ONCE', kafka.groupId);
  const options: Record<string, string> =
    stream.kind === 'CHANGE'
      ? {
          connector: 'upsert-kafka',
          topic,
          ...connectionOptions(kafka.access),
          ...access,
          'key.format': 'json',
          'value.format': 'json',
          ...prefixed('key.', JSON_FORMAT),
          ...prefixed('value.', JSON_FORMAT),
        }
      : {
          connector: 'kafka',
          topic,
          ...connectionOptions(kafka.access),
          format: 'json',
          ...JSON_FORMAT,
          ...access,
          // Where it starts without state; a restored job goes on from its checkpointed offsets.
          ...(role === 'read' ? startupOptions(kafka.startPositions?.[stream.id]) : {}),
        };
  return `CREATE TEMPORARY TABLE ${quoteIdentifier(stream.name)} (${columns(stream)}) ${withOptions(options)}`;
}

function prefixed(prefix: string, options: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(options).map(([key, value]) => [`${prefix}${key}`, value]));
}

export function jobStatements(spec: JobSpec, target: KafkaTarget): string[] {
  const kafka: TableTarget = { ...target, deliveryGuarantee: spec.deliveryGuarantee, startPositions: spec.state.startPositions };
  const program = spec.program;
  if (program.type === 'PIPELINE') {
    const outputName = program.output.name;
    return [
      ...program.inputs.filter((s) => s.name !== outputName).map((s) => streamTable(s, kafka, 'read')),
      streamTable(program.output, kafka, 'write'),
      program.sql,
    ];
  }
  const stream = program.stream;
  const external = { ...program.properties, ...program.secretProperties };
  // Flink's Kafka connector refuses a primary key; CDC sources and upserting sinks need it.
  const externalColumns = program.keyed ? columns(stream) : columns({ ...stream, primaryKey: [] });
  const externalTable = `CREATE TEMPORARY TABLE ${quoteIdentifier(EXTERNAL_TABLE)} (${externalColumns}) ${withOptions({
    connector: program.connector,
    ...(program.connector === 'kafka' && external.format === undefined ? { format: 'json' } : {}),
    ...external,
  })}`;
  const fieldList = stream.fields.map((f) => quoteIdentifier(f.name)).join(', ');
  if (program.connectionType === 'SOURCE') {
    return [
      externalTable,
      streamTable(stream, kafka, 'write'),
      `INSERT INTO ${quoteIdentifier(stream.name)} SELECT ${fieldList} FROM ${quoteIdentifier(EXTERNAL_TABLE)}`,
    ];
  }
  return [
    streamTable(stream, kafka, 'read'),
    externalTable,
    `INSERT INTO ${quoteIdentifier(EXTERNAL_TABLE)} SELECT ${fieldList} FROM ${quoteIdentifier(stream.name)}`,
  ];
}

/**
 * A stream as a preview reads it: from its earliest or latest offset, never committing
 * offsets (the group is the account's previews', only so that the read-only principal
 * need not be let into groups Flink would make up). CHANGE streams (upsert-kafka) are
 * always read from the start: their state is the whole log.
 */
export function previewStreamTable(
  stream: StreamBinding,
  target: {
    readonly access: StreamAccess;
    readonly groupId: string;
    readonly topic: string;
    readonly from: 'EARLIEST' | 'LATEST';
  },
): string {
  if (stream.kind === 'CHANGE') {
    return streamTable(stream, { access: target.access, topicFor: () => target.topic, groupId: target.groupId }, 'read');
  }
  const options = {
    connector: 'kafka',
    topic: target.topic,
    ...connectionOptions(target.access),
    'properties.group.id': target.groupId,
    'properties.enable.auto.commit': 'false',
    'properties.commit.offsets.on.checkpoint': 'false',
    ...READ_COMMITTED,
    'scan.startup.mode': target.from === 'EARLIEST' ? 'earliest-offset' : 'latest-offset',
    format: 'json',
    ...JSON_FORMAT,
  };
  return `CREATE TEMPORARY TABLE ${quoteIdentifier(stream.name)} (${columns(stream)}) ${withOptions(options)}`;
}
