/**
 * Records as clients send them (JSON values) checked against a stream's schema and
 * re-written as the JSON text that Flink's `json` format reads back into the same
 * values. The tables over stream topics must use these options (job-sql.ts does):
 *
 *   'format' = 'json', 'json.timestamp-format.standard' = 'SQL',
 *   'json.encode.decimal-as-plain-number' = 'true'
 *
 * How each type is written (and what is accepted):
 *
 * | type | accepted | written |
 * |---|---|---|
 * | BOOLEAN | true / false | true / false |
 * | TINYINT, SMALLINT, INT | an integer number in range | the number |
 * | BIGINT | a safe integer number, or a string of digits within int64 | the digits, unquoted |
 * | FLOAT, DOUBLE | a finite number; "NaN", "Infinity", "-Infinity" | the number; those three as strings |
 * | DECIMAL(p, s) | a number (≤ 15 significant digits) or a decimal string; ≤ s decimals, ≤ p − s integer digits | a plain number with exactly s decimals (`12.50`) |
 * | CHAR(n), VARCHAR(n), STRING | a string of at most n characters (code points) | the string |
 * | BINARY(n), VARBINARY(n), BYTES | base64 (standard or URL-safe) of at most n bytes | standard, padded base64 |
 * | DATE | 'YYYY-MM-DD' | the same |
 * | TIME(p) | 'HH:MM[:SS]' (Flink 1.20's json format reads whole seconds: a fraction must be zeros) | 'HH:MM:SS' |
 * | TIMESTAMP(p) | 'YYYY-MM-DD HH:MM[:SS[.f…]]', or with 'T'; no zone | 'YYYY-MM-DD HH:MM:SS[.f…]' with p digits |
 * | TIMESTAMP_LTZ(p) | ISO 8601 with 'Z' or ±hh:mm, or epoch milliseconds (a number) | in UTC, 'YYYY-MM-DD HH:MM:SS[.f…]Z' with p digits |
 * | ARRAY<T> | a JSON array | an array |
 * | MULTISET<T> | an array of elements, or an object element → count; T a character type | an object element → count |
 * | MAP<K, V> | a JSON object; K a character type (Flink's json format allows no other keys) | an object |
 * | ROW<…> | a JSON object, checked like a record | an object with every field |
 *
 * Fractional digits beyond a precision are accepted only when they are zeros, so no
 * value is ever rounded. Rejections name the first bad record, its field and why.
 */

import { ValidationError } from '../platform/errors.js';
import { FlinkTypeError } from './flink-type-error.js';
import { MAX_LENGTH, parseTypeNode, type TypeNode } from './flink-type-parser.js';
import type { StreamField } from './stream.table.js';
import { encodeDate, encodeTime, encodeTimestamp, encodeTimestampLtz } from './temporal-values.js';
import { kindOf, ValueProblem } from './value-problem.js';

export const MAX_RECORDS_PER_CALL = 1000;
/** Of the written JSON texts, all records of one call together. */
export const MAX_BYTES_PER_CALL = 1024 * 1024;

/**
 * Checks every record against the stream's fields and returns each as the JSON text
 * Flink reads. Throws a ValidationError for the first bad record (path
 * `[...path, index, field]`), so a batch is written whole or not at all.
 */
export function validateRecords(
  fields: readonly StreamField[],
  records: readonly unknown[],
  path: readonly (string | number)[] = ['records'],
): string[] {
  if (records.length > MAX_RECORDS_PER_CALL) {
    throw ValidationError.of(path, `at most ${MAX_RECORDS_PER_CALL} records per call, got ${records.length}`);
  }
  const schema = compile(fields);
  const texts: string[] = [];
  let bytes = 0;
  records.forEach((record, index) => {
    const text = encodeRecord(schema, record, index, path);
    bytes += Buffer.byteLength(text, 'utf8');
    if (bytes > MAX_BYTES_PER_CALL) {
      throw ValidationError.of(
        [...path, index],
        `the records of one call may take at most ${MAX_BYTES_PER_CALL} bytes as JSON; record ${index} goes past that`,
      );
    }
    texts.push(text);
  });
  return texts;
}

interface CompiledField {
  readonly name: string;
  readonly type: TypeNode;
}

const compiled = new WeakMap<readonly StreamField[], CompiledField[]>();

function compile(fields: readonly StreamField[]): CompiledField[] {
  let result = compiled.get(fields);
  if (!result) {
    result = fields.map((field) => {
      let node: TypeNode;
      try {
        node = parseTypeNode(field.type);
      } catch (error) {
        if (error instanceof FlinkTypeError) throw new Error(`stream field ${field.name} has a bad stored type ${field.type}: ${error.message}`);
        throw error;
      }
      return { name: field.name, type: { ...node, nullable: field.nullable && node.nullable } };
    });
    compiled.set(fields, result);
  }
  return result;
}

function encodeRecord(schema: readonly CompiledField[], record: unknown, index: number, path: readonly (string | number)[]): string {
  if (!isObject(record)) {
    throw ValidationError.of([...path, index], `record ${index}: a record must be a JSON object of field values, got ${kindOf(record)}`);
  }
  try {
    return encodeFields(schema, record);
  } catch (error) {
    if (error instanceof FieldProblem) {
      const where = `${error.field}${error.problem.where}`;
      throw ValidationError.of([...path, index, error.field], `record ${index}, field ${where}: ${error.problem.message}`);
    }
    throw error;
  }
}

class FieldProblem extends Error {
  constructor(readonly field: string, readonly problem: ValueProblem) {
    super(problem.message);
  }
}

/** A record or a ROW: every declared field, in order; unknown keys rejected. */
function encodeFields(fields: readonly CompiledField[], object: Record<string, unknown>): string {
  for (const key of Object.keys(object)) {
    if (!fields.some((field) => field.name === key)) {
      const known = fields.map((field) => field.name).join(', ');
      throw new FieldProblem(key, new ValueProblem(`not a field here (the fields are: ${known})`));
    }
  }
  const parts = fields.map((field) => {
    const present = Object.prototype.hasOwnProperty.call(object, field.name);
    if (!present && !field.type.nullable) {
      throw new FieldProblem(field.name, new ValueProblem(`missing, and ${describe(field.type)} NOT NULL needs a value`));
    }
    try {
      return `${JSON.stringify(field.name)}:${encode(field.type, present ? object[field.name] : null)}`;
    } catch (error) {
      if (error instanceof ValueProblem) throw new FieldProblem(field.name, error);
      throw error;
    }
  });
  return `{${parts.join(',')}}`;
}

function encode(type: TypeNode, value: unknown): string {
  if (value === null || value === undefined) {
    if (!type.nullable) throw new ValueProblem(`${describe(type)} NOT NULL cannot be null`);
    return 'null';
  }
  switch (type.kind) {
    case 'simple':
      return encodeSimple(type.name, value);
    case 'sized':
      return type.name === 'CHAR' || type.name === 'VARCHAR' ? encodeString(type, value) : encodeBinary(type, value);
    case 'decimal':
      return encodeDecimal(type.precision, type.scale, value);
    case 'temporal':
      return type.name === 'TIME'
        ? encodeTime(type.precision, value)
        : type.name === 'TIMESTAMP'
          ? encodeTimestamp(type.precision, value)
          : encodeTimestampLtz(type.precision, value);
    case 'collection':
      return type.name === 'ARRAY' ? encodeArray(type.element, value) : encodeMultiset(type.element, value);
    case 'map':
      return encodeMap(type.key, type.value, value);
    case 'row': {
      if (!isObject(value)) throw new ValueProblem(`a ROW needs a JSON object, got ${kindOf(value)}`);
      try {
        return encodeFields(type.fields, value);
      } catch (error) {
        if (error instanceof FieldProblem) throw error.problem.under(`.${error.field}`);
        throw error;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Numbers

const INTEGER_RANGES = {
  TINYINT: [-128, 127],
  SMALLINT: [-32768, 32767],
  INT: [-2147483648, 2147483647],
} as const;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const FLOAT_MAX = 3.4028234663852886e38;

function encodeSimple(name: Extract<TypeNode, { kind: 'simple' }>['name'], value: unknown): string {
  switch (name) {
    case 'BOOLEAN':
      if (typeof value !== 'boolean') throw new ValueProblem(`BOOLEAN needs true or false, got ${kindOf(value)}`);
      return String(value);
    case 'TINYINT':
    case 'SMALLINT':
    case 'INT': {
      const [min, max] = INTEGER_RANGES[name];
      if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
        throw new ValueProblem(`${name} needs an integer from ${min} to ${max}, got ${kindOf(value)}`);
      }
      return String(value);
    }
    case 'BIGINT':
      return encodeBigint(value);
    case 'FLOAT':
    case 'DOUBLE':
      return encodeFloating(name, value);
    case 'DATE':
      return encodeDate(value);
  }
}

function encodeBigint(value: unknown): string {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new ValueProblem(`BIGINT needs an integer, got ${kindOf(value)}`);
    if (!Number.isSafeInteger(value)) {
      throw new ValueProblem(`BIGINT values beyond ±${Number.MAX_SAFE_INTEGER} must be sent as strings (JSON numbers lose precision), got ${kindOf(value)}`);
    }
    return String(value);
  }
  if (typeof value === 'string' && /^-?\d{1,20}$/.test(value)) {
    const big = BigInt(value);
    if (big >= INT64_MIN && big <= INT64_MAX) return big.toString();
  }
  throw new ValueProblem(`BIGINT needs an integer (a number, or a string of digits for large values) within 64 bits, got ${kindOf(value)}`);
}

function encodeFloating(name: 'FLOAT' | 'DOUBLE', value: unknown): string {
  if (typeof value === 'string' && (value === 'NaN' || value === 'Infinity' || value === '-Infinity')) {
    return JSON.stringify(value);
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new ValueProblem(`${name} needs a number (or "NaN", "Infinity", "-Infinity"), got ${kindOf(value)}`);
  }
  if (name === 'FLOAT' && Math.abs(value) > FLOAT_MAX) {
    throw new ValueProblem(`FLOAT holds at most ±${FLOAT_MAX}, got ${value}`);
  }
  return JSON.stringify(value);
}

/** Significant digits a JSON number keeps through JavaScript's double without doubt. */
const SAFE_NUMBER_DIGITS = 15;

function encodeDecimal(precision: number, scale: number, value: unknown): string {
  const type = `DECIMAL(${precision}, ${scale})`;
  let text: string;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new ValueProblem(`${type} needs a finite number, got ${kindOf(value)}`);
    text = String(value);
  } else if (typeof value === 'string') {
    text = value.trim();
  } else {
    throw new ValueProblem(`${type} needs a number or a decimal string such as "12.34", got ${kindOf(value)}`);
  }
  const parsed = parseDecimal(text);
  if (!parsed) throw new ValueProblem(`${type} needs a decimal number such as "12.34", got ${kindOf(value)}`);
  const shown = typeof value === 'number' ? text : JSON.stringify(value);
  const fraction = parsed.fraction.replace(/0+$/, '');
  if (fraction.length > scale) {
    throw new ValueProblem(`${type} allows ${scale} decimal${scale === 1 ? '' : 's'}, got ${shown}`);
  }
  const integer = parsed.integer.replace(/^0+/, '');
  if (integer.length > precision - scale) {
    throw new ValueProblem(`${type} allows ${precision - scale} digit${precision - scale === 1 ? '' : 's'} before the decimal point, got ${shown}`);
  }
  // The double may already have rounded what the client wrote; only a string is exact.
  if (typeof value === 'number' && significantDigits(parsed) > SAFE_NUMBER_DIGITS) {
    throw new ValueProblem(
      `${type}: numbers with more than ${SAFE_NUMBER_DIGITS} significant digits lose precision in JSON; send the value as a string, got ${shown}`,
    );
  }
  const isZero = integer === '' && fraction === '';
  const sign = parsed.negative && !isZero ? '-' : '';
  const decimals = scale > 0 ? `.${fraction.padEnd(scale, '0')}` : '';
  return `${sign}${integer || '0'}${decimals}`;
}

interface DecimalParts {
  readonly negative: boolean;
  /** Digits before the point and after it, the exponent applied. */
  readonly integer: string;
  readonly fraction: string;
}

function parseDecimal(text: string): DecimalParts | undefined {
  const match = /^([+-])?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d{1,4}))?$/.exec(text);
  if (!match) return undefined;
  const [, sign, whole = '', part = '', exponentText] = match;
  if (whole === '' && part === '') return undefined;
  let digits = whole + part;
  let point = whole.length + Number(exponentText ?? 0);
  if (point < 0) {
    digits = '0'.repeat(-point) + digits;
    point = 0;
  }
  if (point > digits.length) digits = digits.padEnd(point, '0');
  return { negative: sign === '-', integer: digits.slice(0, point), fraction: digits.slice(point) };
}

function significantDigits(parts: DecimalParts): number {
  return `${parts.integer}${parts.fraction}`.replace(/^0+/, '').replace(/0+$/, '').length;
}

// ---------------------------------------------------------------------------------------
// Strings and bytes

function encodeString(type: Extract<TypeNode, { kind: 'sized' }>, value: unknown): string {
  const name = describe(type);
  if (typeof value !== 'string') throw new ValueProblem(`${name} needs a string, got ${kindOf(value)}`);
  if (type.length !== MAX_LENGTH) {
    const length = codePoints(value);
    if (length > type.length) throw new ValueProblem(`${name} allows at most ${type.length} characters, got ${length}`);
  }
  return JSON.stringify(value);
}

function encodeBinary(type: Extract<TypeNode, { kind: 'sized' }>, value: unknown): string {
  const name = describe(type);
  const base64 = typeof value === 'string' ? value.replace(/-/g, '+').replace(/_/g, '/') : undefined;
  if (base64 === undefined || !/^[A-Za-z0-9+/]*={0,2}$/.test(base64) || base64.replace(/=+$/, '').length % 4 === 1) {
    throw new ValueProblem(`${name} needs base64 text, got ${kindOf(value)}`);
  }
  const bytes = Buffer.from(base64, 'base64');
  if (type.length !== MAX_LENGTH && bytes.length > type.length) {
    throw new ValueProblem(`${name} allows at most ${type.length} bytes, got ${bytes.length}`);
  }
  return JSON.stringify(bytes.toString('base64'));
}

function codePoints(text: string): number {
  let count = 0;
  for (const _ of text) count += 1;
  return count;
}

// ---------------------------------------------------------------------------------------
// Collections

function encodeArray(element: TypeNode, value: unknown): string {
  if (!Array.isArray(value)) throw new ValueProblem(`an ARRAY needs a JSON array, got ${kindOf(value)}`);
  const parts = value.map((item, index) => {
    try {
      return encode(element, item);
    } catch (error) {
      if (error instanceof ValueProblem) throw error.under(`[${index}]`);
      throw error;
    }
  });
  return `[${parts.join(',')}]`;
}

function requireStringKeys(what: string, key: TypeNode): void {
  if (key.kind !== 'sized' || (key.name !== 'CHAR' && key.name !== 'VARCHAR')) {
    throw new ValueProblem(`Flink's json format cannot carry a ${what} keyed by ${describe(key)}: keys must be a character type`);
  }
}

function encodeMap(key: TypeNode, valueType: TypeNode, value: unknown): string {
  requireStringKeys('MAP', key);
  if (!isObject(value)) throw new ValueProblem(`a MAP needs a JSON object, got ${kindOf(value)}`);
  const parts = Object.keys(value).map((name) => {
    const where = `[${JSON.stringify(name)}]`;
    try {
      return `${encode(key, name)}:${encode(valueType, value[name])}`;
    } catch (error) {
      if (error instanceof ValueProblem) throw error.under(where);
      throw error;
    }
  });
  return `{${parts.join(',')}}`;
}

function encodeMultiset(element: TypeNode, value: unknown): string {
  requireStringKeys('MULTISET', element);
  const counts = new Map<string, number>();
  if (Array.isArray(value)) {
    value.forEach((item, index) => {
      if (typeof item !== 'string') throw new ValueProblem(`${describe(element)} needs a string, got ${kindOf(item)}`, `[${index}]`);
      counts.set(item, (counts.get(item) ?? 0) + 1);
    });
  } else if (isObject(value)) {
    for (const [item, count] of Object.entries(value)) {
      if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > 2147483647) {
        throw new ValueProblem(`a MULTISET count must be a positive INT, got ${kindOf(count)}`, `[${JSON.stringify(item)}]`);
      }
      counts.set(item, count);
    }
  } else {
    throw new ValueProblem(`a MULTISET needs a JSON array of elements or an object of element counts, got ${kindOf(value)}`);
  }
  const parts = [...counts].map(([item, count]) => {
    try {
      return `${encode(element, item)}:${count}`;
    } catch (error) {
      if (error instanceof ValueProblem) throw error.under(`[${JSON.stringify(item)}]`);
      throw error;
    }
  });
  return `{${parts.join(',')}}`;
}

// ---------------------------------------------------------------------------------------

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A leaf type's canonical name, for messages. */
function describe(type: TypeNode): string {
  switch (type.kind) {
    case 'simple':
      return type.name;
    case 'sized':
      if (type.length === MAX_LENGTH) return type.name === 'VARCHAR' ? 'STRING' : type.name === 'VARBINARY' ? 'BYTES' : `${type.name}(${type.length})`;
      return `${type.name}(${type.length})`;
    case 'decimal':
      return `DECIMAL(${type.precision}, ${type.scale})`;
    case 'temporal':
      return `${type.name}(${type.precision})`;
    case 'collection':
      return `${type.name}<${describe(type.element)}>`;
    case 'map':
      return `MAP<${describe(type.key)}, ${describe(type.value)}>`;
    case 'row':
      return 'ROW';
  }
}
