/**
 * Flink SQL data types as users write them for stream fields: validated, and spelt one
 * canonical way so that stored schemas compare by string. The canonical spelling is
 * Flink's own summary form: upper case, defaults made explicit (`VARCHAR` is
 * `VARCHAR(1)` in Flink, `TIMESTAMP` is `TIMESTAMP(6)`), synonyms folded (`INTEGER` is
 * `INT`, `VARCHAR(2147483647)` is `STRING`, `TIMESTAMP(3) WITH LOCAL TIME ZONE` is
 * `TIMESTAMP_LTZ(3)`).
 */

import { FlinkTypeError } from './flink-type-error.js';
import { MAX_LENGTH, parseTypeNode } from './flink-type-parser.js';
import type { SimpleName, TypeNode } from './flink-type-parser.js';

export { FlinkTypeError } from './flink-type-error.js';

export interface ParsedFlinkType {
  /** Canonical spelling, without the top-level NOT NULL (that is `nullable`). */
  readonly type: string;
  readonly nullable: boolean;
}

export function parseFlinkType(text: string): ParsedFlinkType {
  const node = parseTypeNode(text);
  return { type: format(node, false), nullable: node.nullable };
}

/**
 * Whether a stream field may change type from `from` to `to` without breaking readers
 * of data already written. Only lossless widenings of primitive types; nested types must
 * stay identical. Nullability is the caller's concern: top-level NOT NULL is ignored.
 */
export function isCompatibleWidening(from: string, to: string): boolean {
  let a: TypeNode;
  let b: TypeNode;
  try {
    a = parseTypeNode(from);
    b = parseTypeNode(to);
  } catch (error) {
    if (error instanceof FlinkTypeError) return false;
    throw error;
  }
  if (format(a, false) === format(b, false)) return true;
  if (a.kind === 'simple' && b.kind === 'simple') {
    const [fromRank, toRank] = [INTEGER_RANKS.indexOf(a.name), INTEGER_RANKS.indexOf(b.name)];
    if (fromRank >= 0 && toRank >= 0) return fromRank <= toRank;
    return a.name === 'FLOAT' && b.name === 'DOUBLE';
  }
  if (a.kind === 'sized' && b.kind === 'sized' && b.name === 'VARCHAR') {
    if (a.name === 'VARCHAR') return b.length >= a.length;
    return a.name === 'CHAR' && b.length === MAX_LENGTH;
  }
  if (a.kind === 'decimal' && b.kind === 'decimal') {
    return b.precision >= a.precision && b.scale === a.scale;
  }
  return false;
}

/** Stream and field names: plain identifiers, so they never need quoting in Flink SQL. */
export function isValidIdentifier(name: string): boolean {
  return name.length >= 1 && name.length <= 128 && /^[A-Za-z_][A-Za-z0-9_]*$/.test(name);
}

const INTEGER_RANKS: readonly SimpleName[] = ['TINYINT', 'SMALLINT', 'INT', 'BIGINT'];

function format(node: TypeNode, withNullability = true): string {
  const suffix = withNullability && !node.nullable ? ' NOT NULL' : '';
  return `${formatBare(node)}${suffix}`;
}

function formatBare(node: TypeNode): string {
  switch (node.kind) {
    case 'simple':
      return node.name;
    case 'sized':
      if (node.length === MAX_LENGTH && node.name === 'VARCHAR') return 'STRING';
      if (node.length === MAX_LENGTH && node.name === 'VARBINARY') return 'BYTES';
      return `${node.name}(${node.length})`;
    case 'decimal':
      return `DECIMAL(${node.precision}, ${node.scale})`;
    case 'temporal':
      return `${node.name}(${node.precision})`;
    case 'collection':
      return `${node.name}<${format(node.element)}>`;
    case 'map':
      return `MAP<${format(node.key)}, ${format(node.value)}>`;
    case 'row':
      return `ROW<${node.fields.map((field) => `${quoteFieldName(field.name)} ${format(field.type)}`).join(', ')}>`;
  }
}

const RESERVED_FIELD_NAMES: ReadonlySet<string> = new Set(
  (
    'ARRAY BIGINT BINARY BOOLEAN BYTES CHAR CHARACTER DATE DEC DECIMAL DOUBLE FLOAT INT INTEGER INTERVAL ' +
    'LOCAL MAP MULTISET NOT NULL NUMERIC PRECISION RAW ROW SMALLINT STRING TIME TIMESTAMP TIMESTAMP_LTZ ' +
    'TINYINT VARBINARY VARCHAR WITH WITHOUT ZONE ' +
    'ALL AND AS BY CASE CAST CURRENT DAY DEFAULT DESC END FALSE FROM FUNCTION GROUP HOUR IN LIKE ' +
    'LIMIT MINUTE MONTH OF ON OR ORDER PARTITION RANGE SECOND SELECT TABLE TO TRUE UNION USER VALUE ' +
    'VALUES WHERE WINDOW YEAR'
  ).split(' '),
);

/**
 * ROW field names go bare where Flink reads them back unchanged, in backticks otherwise.
 * The list holds the words of the type grammar and the reserved SQL words most often
 * used as names; it is not Flink's whole reserved list, so a rarer reserved word stays
 * bare, as the user wrote it, and Flink reports it.
 */
function quoteFieldName(name: string): string {
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && !RESERVED_FIELD_NAMES.has(name.toUpperCase())) return name;
  return `\`${name.replaceAll('`', '``')}\``;
}
