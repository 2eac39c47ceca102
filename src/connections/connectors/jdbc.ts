import type { ConnectorDefinition, FlinkOptionsInput, OptionProblem } from './connector-definition.js';
import { IDENTIFIER, serverOf, serverOptions, serverProblems, serverSettings } from './postgres-server.js';

const FLUSH_ROWS_DEFAULT = 500;
const FLUSH_INTERVAL_MS_DEFAULT = 1000;
const MAX_RETRIES_DEFAULT = 3;

/**
 * Flink's JDBC sink, to a Postgres table. A CHANGE stream is written by its primary key
 * (`INSERT … ON CONFLICT … DO UPDATE`, and `DELETE` for deletions), so replaying after a
 * failure rewrites the same rows; an APPEND stream is appended (`INSERT`), at least once.
 * The connector writes table and column names unquoted, so the stream's field names must
 * be unquoted identifiers too: Postgres folds them to lower case.
 */
export const jdbc: ConnectorDefinition = {
  name: 'jdbc',
  description:
    'Writes a stream to a Postgres table: a CHANGE stream upserts and deletes by its primary key, an APPEND stream appends rows. Columns are matched to the stream’s fields by name.',
  types: ['SINK'],
  keyed: true,
  // Flink's JDBC sink writes again, after a failure, what followed the last checkpoint:
  // an upsert by key makes that harmless, an INSERT doubles the row.
  exactlyOnceRefusal: ({ primaryKey }) =>
    primaryKey.length === 0
      ? "a jdbc sink writes exactly once only by upserting on the stream's primary key, and this stream has none: use AT_LEAST_ONCE, or a stream with a primary key"
      : undefined,
  serverOf,
  options: [
    ...serverOptions,
    {
      key: 'sink.buffer-flush.max-rows',
      type: 'INT',
      default: FLUSH_ROWS_DEFAULT,
      min: 1,
      max: 10_000,
      required: false,
      secret: false,
      description: 'Rows written in one batch at most.',
    },
    {
      key: 'sink.buffer-flush.interval-ms',
      type: 'LONG',
      default: FLUSH_INTERVAL_MS_DEFAULT,
      min: 0,
      max: 60_000,
      required: false,
      secret: false,
      description: 'A batch is written at least this often (milliseconds; 0: only when full or on a checkpoint). Rows are also written on every checkpoint.',
    },
    {
      key: 'sink.max-retries',
      type: 'INT',
      default: MAX_RETRIES_DEFAULT,
      min: 0,
      max: 10,
      required: false,
      secret: false,
      description: 'Retries of a failed batch before the job fails (and restarts from its last checkpoint).',
    },
  ],
  check: ({ values, streamFields }) => [...serverProblems(values), ...fieldProblems(streamFields)],
  flinkOptions: ({ properties, secretProperties }: FlinkOptionsInput) => {
    const server = serverSettings(properties);
    return {
      properties: {
        url: `jdbc:postgresql://${server.hostname}:${server.port}/${server.database}`,
        'table-name': `${server.schema}.${server.table}`,
        username: String(properties['username']),
        'sink.buffer-flush.max-rows': properties['sink.buffer-flush.max-rows'] ?? FLUSH_ROWS_DEFAULT,
        'sink.buffer-flush.interval': `${Number(properties['sink.buffer-flush.interval-ms'] ?? FLUSH_INTERVAL_MS_DEFAULT)}ms`,
        'sink.max-retries': properties['sink.max-retries'] ?? MAX_RETRIES_DEFAULT,
      },
      secretProperties: { password: secretProperties['password']! },
    };
  },
};

function fieldProblems(streamFields: readonly string[]): OptionProblem[] {
  const bad = streamFields.filter((field) => !IDENTIFIER.test(field));
  if (bad.length === 0) return [];
  return [
    {
      key: 'table-name',
      message: `the JDBC connector writes column names unquoted, so every field of the stream must be an unquoted identifier (letters, digits, underscores); ${bad.map((f) => JSON.stringify(f)).join(', ')} ${bad.length === 1 ? 'is' : 'are'} not`,
    },
  ];
}
