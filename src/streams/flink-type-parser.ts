/**
 * A hand-written tokenizer and recursive-descent parser for the Flink SQL data types
 * that stream fields may use. It builds a tree; flink-types.ts spells it canonically.
 */

import { FlinkTypeError } from './flink-type-error.js';

export type SimpleName = 'BOOLEAN' | 'TINYINT' | 'SMALLINT' | 'INT' | 'BIGINT' | 'FLOAT' | 'DOUBLE' | 'DATE';

export type TypeNode = { readonly nullable: boolean } & (
  | { readonly kind: 'simple'; readonly name: SimpleName }
  | { readonly kind: 'sized'; readonly name: 'CHAR' | 'VARCHAR' | 'BINARY' | 'VARBINARY'; readonly length: number }
  | { readonly kind: 'decimal'; readonly precision: number; readonly scale: number }
  | { readonly kind: 'temporal'; readonly name: 'TIME' | 'TIMESTAMP' | 'TIMESTAMP_LTZ'; readonly precision: number }
  | { readonly kind: 'collection'; readonly name: 'ARRAY' | 'MULTISET'; readonly element: TypeNode }
  | { readonly kind: 'map'; readonly key: TypeNode; readonly value: TypeNode }
  | { readonly kind: 'row'; readonly fields: readonly RowField[] }
);

export interface RowField {
  readonly name: string;
  readonly type: TypeNode;
}

/** Flink's VarCharType.MAX_LENGTH: STRING and BYTES are the maximum-length VARCHAR and VARBINARY. */
export const MAX_LENGTH = 2147483647;
const MAX_DECIMAL_PRECISION = 38;
const MAX_TIME_PRECISION = 9;
/** Deeper nesting than this is a mistake or an attack on the recursion. */
const MAX_DEPTH = 32;

// ---------------------------------------------------------------------------------------
// Tokenizer

interface Token {
  readonly kind: 'word' | 'quoted' | 'string' | 'number' | 'symbol' | 'end';
  /** Words keep their case (ROW field names are case-sensitive); compare via `upper`. */
  readonly text: string;
  readonly upper: string;
  /** 1-based. */
  readonly column: number;
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const push = (kind: Token['kind'], value: string, start: number) =>
    tokens.push({ kind, text: value, upper: value.toUpperCase(), column: start + 1 });
  while (i < text.length) {
    const char = text[i]!;
    const start = i;
    if (/\s/.test(char)) {
      i += 1;
    } else if (/[A-Za-z_]/.test(char)) {
      while (i < text.length && /[A-Za-z0-9_]/.test(text[i]!)) i += 1;
      push('word', text.slice(start, i), start);
    } else if (/[0-9]/.test(char)) {
      while (i < text.length && /[0-9]/.test(text[i]!)) i += 1;
      push('number', text.slice(start, i), start);
    } else if ('()<>,'.includes(char)) {
      i += 1;
      push('symbol', char, start);
    } else if (char === '`' || char === "'") {
      const { value, end } = scanQuoted(text, start);
      i = end;
      push(char === '`' ? 'quoted' : 'string', value, start);
    } else {
      throw new FlinkTypeError(`unexpected character ${JSON.stringify(char)}`, start + 1);
    }
  }
  tokens.push({ kind: 'end', text: '', upper: '', column: text.length + 1 });
  return tokens;
}

/** A `name` or 'string' starting at `start`, where a doubled quote stands for one. */
function scanQuoted(text: string, start: number): { value: string; end: number } {
  const quote = text[start]!;
  let value = '';
  let i = start + 1;
  for (;;) {
    if (i >= text.length) {
      const what = quote === '`' ? '`quoted name`' : "'string'";
      throw new FlinkTypeError(`unterminated ${what}`, start + 1);
    }
    if (text[i] === quote && text[i + 1] === quote) {
      value += quote;
      i += 2;
    } else if (text[i] === quote) {
      return { value, end: i + 1 };
    } else {
      value += text[i];
      i += 1;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Recursive-descent parser

export function parseTypeNode(text: string): TypeNode {
  const parser = new TypeParser(tokenize(text));
  return parser.parseAll();
}

function describe(token: Token): string {
  if (token.kind === 'end') return 'the end of the type';
  return token.kind === 'string' ? `the string '${token.text}'` : `"${token.text}"`;
}

class TypeParser {
  private index = 0;
  private depth = 0;

  constructor(private readonly tokens: readonly Token[]) {}

  parseAll(): TypeNode {
    if (this.peek().kind === 'end') throw new FlinkTypeError('the type is empty', 1);
    const node = this.type();
    const rest = this.peek();
    if (rest.kind !== 'end') throw new FlinkTypeError(`unexpected ${describe(rest)} after the type`, rest.column);
    return node;
  }

  /** primary [NOT NULL | NULL] { (ARRAY | MULTISET) [NOT NULL | NULL] } */
  private type(): TypeNode {
    this.depth += 1;
    if (this.depth > MAX_DEPTH) {
      throw new FlinkTypeError(`types nest deeper than ${MAX_DEPTH} levels`, this.peek().column);
    }
    let node = this.nullability(this.primary());
    while (this.isWord('ARRAY') || this.isWord('MULTISET')) {
      const name = this.next().upper as 'ARRAY' | 'MULTISET';
      node = this.nullability({ kind: 'collection', name, element: node, nullable: true });
    }
    this.depth -= 1;
    return node;
  }

  private nullability(node: TypeNode): TypeNode {
    if (this.isWord('NOT')) {
      this.next();
      this.expectWord('NULL');
      return { ...node, nullable: false };
    }
    if (this.isWord('NULL')) this.next();
    return node;
  }

  private primary(): TypeNode {
    const token = this.next();
    if (token.kind !== 'word') throw new FlinkTypeError(`expected a type name, got ${describe(token)}`, token.column);
    const nullable = true;
    switch (token.upper) {
      case 'BOOLEAN':
      case 'TINYINT':
      case 'SMALLINT':
      case 'BIGINT':
      case 'FLOAT':
      case 'DATE':
        return { kind: 'simple', name: token.upper, nullable };
      case 'INT':
      case 'INTEGER':
        return { kind: 'simple', name: 'INT', nullable };
      case 'DOUBLE':
        if (this.isWord('PRECISION')) this.next();
        return { kind: 'simple', name: 'DOUBLE', nullable };
      case 'STRING':
        return { kind: 'sized', name: 'VARCHAR', length: MAX_LENGTH, nullable };
      case 'BYTES':
        return { kind: 'sized', name: 'VARBINARY', length: MAX_LENGTH, nullable };
      case 'CHAR':
      case 'VARCHAR':
      case 'BINARY':
      case 'VARBINARY': {
        const [parameter] = this.parameters(token, ['length']);
        const length = inRange(parameter, 1, `${token.upper} length`, 1, MAX_LENGTH);
        return { kind: 'sized', name: token.upper, length, nullable };
      }
      case 'DECIMAL':
      case 'DEC':
      case 'NUMERIC':
        return this.decimal(token);
      case 'TIME':
      case 'TIMESTAMP':
      case 'TIMESTAMP_LTZ':
        return this.temporal(token);
      case 'ARRAY':
      case 'MULTISET': {
        this.expectSymbol('<');
        const element = this.type();
        this.expectSymbol('>');
        return { kind: 'collection', name: token.upper, element, nullable };
      }
      case 'MAP': {
        this.expectSymbol('<');
        const key = this.type();
        this.expectSymbol(',');
        const value = this.type();
        this.expectSymbol('>');
        return { kind: 'map', key, value, nullable };
      }
      case 'ROW':
        return this.row();
      case 'INTERVAL':
      case 'RAW':
      case 'SYMBOL':
      case 'NULL':
        throw new FlinkTypeError(`${token.upper} types are not supported for stream fields`, token.column);
      default:
        throw new FlinkTypeError(`unknown type "${token.text}"`, token.column);
    }
  }

  private decimal(token: Token): TypeNode {
    const [p, s] = this.parameters(token, ['precision', 'scale']);
    const precision = inRange(p, 10, 'DECIMAL precision', 1, MAX_DECIMAL_PRECISION);
    const scale = inRange(s, 0, 'DECIMAL scale', 0, precision, `the precision ${precision}`);
    return { kind: 'decimal', precision, scale, nullable: true };
  }

  /** TIME [(p)] [WITHOUT TIME ZONE]; TIMESTAMP [(p)] [WITHOUT TIME ZONE | WITH LOCAL TIME ZONE]. */
  private temporal(token: Token): TypeNode {
    const [p] = this.parameters(token, ['precision']);
    let name = token.upper as 'TIME' | 'TIMESTAMP' | 'TIMESTAMP_LTZ';
    if (name !== 'TIMESTAMP_LTZ' && this.isWord('WITHOUT')) {
      this.next();
      this.expectWord('TIME');
      this.expectWord('ZONE');
    } else if (name === 'TIMESTAMP' && this.isWord('WITH')) {
      this.next();
      const local = this.peek();
      if (!this.isWord('LOCAL')) {
        throw new FlinkTypeError('TIMESTAMP WITH TIME ZONE is not supported by Flink; use TIMESTAMP_LTZ', local.column);
      }
      this.next();
      this.expectWord('TIME');
      this.expectWord('ZONE');
      name = 'TIMESTAMP_LTZ';
    }
    // Flink's defaults: TIME(0), TIMESTAMP(6), TIMESTAMP_LTZ(6).
    const precision = inRange(p, token.upper === 'TIME' ? 0 : 6, `${name} precision`, 0, MAX_TIME_PRECISION);
    return { kind: 'temporal', name, precision, nullable: true };
  }

  /** ROW<name type, ...> or ROW(name type, ...). */
  private row(): TypeNode {
    const parenthesised = this.isSymbol('(');
    const close = parenthesised ? ')' : '>';
    if (parenthesised) this.next();
    else this.expectSymbol('<');
    if (this.isSymbol(close)) throw new FlinkTypeError('a ROW needs at least one field', this.peek().column);
    const fields: RowField[] = [this.rowField([])];
    while (this.isSymbol(',')) {
      this.next();
      fields.push(this.rowField(fields));
    }
    this.expectSymbol(close);
    return { kind: 'row', fields, nullable: true };
  }

  private rowField(before: readonly RowField[]): RowField {
    const token = this.next();
    if ((token.kind !== 'word' && token.kind !== 'quoted') || token.text === '') {
      throw new FlinkTypeError(`expected a field name, got ${describe(token)}`, token.column);
    }
    if (before.some((field) => field.name === token.text)) {
      throw new FlinkTypeError(`duplicate ROW field "${token.text}"`, token.column);
    }
    const field = { name: token.text, type: this.type() };
    const after = this.peek();
    if (after.kind === 'string') {
      throw new FlinkTypeError('field descriptions in quotes are not supported', after.column);
    }
    return field;
  }

  /** `(n)` or `(n, m)` after a type name; absent ones are left to the caller's defaults. */
  private parameters(type: Token, names: readonly string[]): NumberParameter[] {
    if (!this.isSymbol('(')) return [];
    this.next();
    const values: NumberParameter[] = [];
    for (;;) {
      const token = this.next();
      if (token.kind !== 'number') {
        const what = `${type.upper} ${names[values.length]}`;
        throw new FlinkTypeError(`expected a number for the ${what}, got ${describe(token)}`, token.column);
      }
      // Anything over ten digits is out of every range; keep it from rounding into one.
      values.push({ value: token.text.length > 10 ? Infinity : Number(token.text), column: token.column });
      if (values.length === names.length || !this.isSymbol(',')) break;
      this.next();
    }
    this.expectSymbol(')');
    return values;
  }

  private peek(): Token {
    return this.tokens[this.index]!;
  }

  private next(): Token {
    const token = this.peek();
    if (token.kind !== 'end') this.index += 1;
    return token;
  }

  private isWord(upper: string): boolean {
    const token = this.peek();
    return token.kind === 'word' && token.upper === upper;
  }

  private isSymbol(symbol: string): boolean {
    const token = this.peek();
    return token.kind === 'symbol' && token.text === symbol;
  }

  private expectWord(upper: string): void {
    if (!this.isWord(upper)) this.unexpected(upper);
    this.next();
  }

  private expectSymbol(symbol: string): void {
    if (!this.isSymbol(symbol)) this.unexpected(`"${symbol}"`);
    this.next();
  }

  private unexpected(expected: string): never {
    const token = this.peek();
    throw new FlinkTypeError(`expected ${expected}, got ${describe(token)}`, token.column);
  }
}

interface NumberParameter {
  readonly value: number;
  readonly column: number;
}

function inRange(
  parameter: NumberParameter | undefined,
  fallback: number,
  what: string,
  min: number,
  max: number,
  maxName = String(max),
): number {
  if (!parameter) return fallback;
  if (parameter.value >= min && parameter.value <= max) return parameter.value;
  const got = Number.isFinite(parameter.value) ? String(parameter.value) : 'a larger number';
  throw new FlinkTypeError(`${what} must be from ${min} to ${maxName}, got ${got}`, parameter.column);
}
