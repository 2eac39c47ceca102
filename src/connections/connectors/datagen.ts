import type { TaskSize } from '../../jobs/job.table.js';
import { TASK_HEAP_MB } from '../../jobs/task-size.js';
import type { PropertyValue } from '../connection.table.js';
import type { ConnectorDefinition, OptionProblem } from './connector-definition.js';
import { parsePerFieldKey, perFieldKey } from './connector-definition.js';

const RANDOM_ONLY = { key: 'fields.#.kind', oneOf: ['random'] } as const;
const SEQUENCE_ONLY = { key: 'fields.#.kind', oneOf: ['sequence'] } as const;

/**
 * Flink's datagen source. Per-field options are checked against the stream's field names
 * only: the field's SQL type (which decides whether `length` or `min` make sense) is
 * checked by Flink when the job starts.
 */
export const datagen: ConnectorDefinition = {
  name: 'datagen',
  description: 'Generates rows in the shape of the stream: random values or sequences. For trying pipelines out.',
  types: ['SOURCE'],
  options: [
    {
      key: 'rows-per-second',
      type: 'LONG',
      required: false,
      secret: false,
      // Flink's own default is 10000; a shared cluster is better served by a trickle.
      default: 1,
      min: 1,
      max: 100_000,
      description: 'Rows generated per second.',
    },
    {
      key: 'number-of-rows',
      type: 'LONG',
      required: false,
      secret: false,
      min: 1,
      description: 'Total rows to generate, after which the source ends. Unbounded when absent.',
    },
    {
      key: 'fields.#.kind',
      perField: true,
      type: 'ENUM',
      enumValues: ['random', 'sequence'],
      default: 'random',
      required: false,
      secret: false,
      description: 'How the field is generated. A sequence makes the source bounded: it ends at `end`.',
    },
    {
      key: 'fields.#.min',
      perField: true,
      type: 'DOUBLE',
      required: false,
      secret: false,
      onlyWhen: RANDOM_ONLY,
      description: 'Smallest random value of a numeric field.',
    },
    {
      key: 'fields.#.max',
      perField: true,
      type: 'DOUBLE',
      required: false,
      secret: false,
      onlyWhen: RANDOM_ONLY,
      description: 'Largest random value of a numeric field.',
    },
    {
      key: 'fields.#.length',
      perField: true,
      type: 'INT',
      required: false,
      secret: false,
      default: 100,
      min: 1,
      onlyWhen: RANDOM_ONLY,
      description: 'Length of random strings, bytes and collections.',
    },
    {
      key: 'fields.#.start',
      perField: true,
      type: 'LONG',
      required: false,
      secret: false,
      onlyWhen: SEQUENCE_ONLY,
      requiredWhen: SEQUENCE_ONLY,
      description: 'First value of a sequence.',
    },
    {
      key: 'fields.#.end',
      perField: true,
      type: 'LONG',
      required: false,
      secret: false,
      onlyWhen: SEQUENCE_ONLY,
      requiredWhen: SEQUENCE_ONLY,
      description:
        'Last value of a sequence. Flink holds the whole range in memory: all sequences of a connection together ' +
        'hold at most 2,048,000 values at task size S, 4,096,000 at M, 8,192,000 at L.',
    },
    {
      key: 'fields.#.null-rate',
      perField: true,
      type: 'DOUBLE',
      required: false,
      secret: false,
      default: 0,
      min: 0,
      max: 1,
      description: 'Share of rows in which the field is null, from 0 to 1.',
    },
  ],
  // Flink accepts an inverted range and only fails once the generator runs.
  check: ({ values, taskSize }) => [
    ...inverted(values, 'min', 'max'),
    ...inverted(values, 'start', 'end'),
    ...tooLongSequences(values, taskSize),
  ],
};

/**
 * Flink's sequence generator puts every value of its range in memory when the source
 * opens (about 22 bytes each on the heap, measured on Flink 1.20) and copies what is left
 * into every checkpoint. A range beyond the heap fails the job on each start with an
 * OutOfMemoryError. Sequences may use about a fifth of the job's heap: 8,000 values per MB.
 */
export const SEQUENCE_VALUES_PER_HEAP_MB = 8000;

export function maxSequenceValues(taskSize: TaskSize): number {
  return TASK_HEAP_MB[taskSize] * SEQUENCE_VALUES_PER_HEAP_MB;
}

function tooLongSequences(values: ReadonlyMap<string, PropertyValue>, taskSize: TaskSize): OptionProblem[] {
  const ends: string[] = [];
  let total = 0;
  for (const [key, end] of values) {
    const parsed = parsePerFieldKey(key);
    if (parsed?.suffix !== 'end') continue;
    const start = values.get(perFieldKey(parsed.field, 'start'));
    // The field's parallel subtasks split the range, but they share one heap.
    if (typeof start === 'number' && typeof end === 'number' && end >= start) {
      total += end - start + 1;
      ends.push(key);
    }
  }
  const limit = maxSequenceValues(taskSize);
  if (total <= limit) return [];
  const what = ends.length > 1 ? `these ${ends.length} sequences hold ${total} values together` : `the sequence holds ${total} values`;
  const message =
    `${what}, more than the ${limit} that fit in task size ${taskSize} (${TASK_HEAP_MB[taskSize]} MB heap): ` +
    'Flink keeps a sequence\'s whole range in memory. Use a shorter range, a larger taskSize, or kind random with number-of-rows.';
  return ends.map((key) => ({ key, message }));
}

function inverted(values: ReadonlyMap<string, PropertyValue>, low: string, high: string): OptionProblem[] {
  const problems: OptionProblem[] = [];
  for (const [key, value] of values) {
    const parsed = parsePerFieldKey(key);
    if (parsed?.suffix !== high) continue;
    const lowKey = perFieldKey(parsed.field, low);
    const lowValue = values.get(lowKey);
    if (typeof lowValue === 'number' && typeof value === 'number' && value < lowValue) {
      problems.push({ key, message: `must not be less than ${lowKey} (${lowValue}), got ${value}` });
    }
  }
  return problems;
}
