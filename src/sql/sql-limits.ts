import { ValidationError } from '../platform/errors.js';
import { positionAt } from './sql-position.js';
import type { Path } from './sql-statement.js';

/** Longest SQL text checked, in UTF-16 units (JavaScript string length). */
export const MAX_SQL_LENGTH = 64 * 1024;

/**
 * Deepest nesting of parentheses and CASE expressions checked. The parser's time grows
 * steeply with depth on shapes it has not seen (nested IF( 32 deep: seconds), while
 * pipelines people write stay under ten; the check's time limit covers what is left.
 */
export const MAX_SQL_NESTING = 32;

/**
 * Refuses SQL too long or too deeply nested to parse, in one linear pass and before
 * the parser sees it. Throws ValidationError naming the limit.
 */
export function checkSqlLimits(sql: string, path: Path): void {
  if (sql.length > MAX_SQL_LENGTH) {
    throw ValidationError.of(path, `must be at most ${MAX_SQL_LENGTH} characters (got ${sql.length})`);
  }
  const tooDeep = deeperThan(sql, MAX_SQL_NESTING);
  if (tooDeep !== undefined) {
    throw ValidationError.of(
      path,
      `The SQL nests parentheses and CASE expressions more than ${MAX_SQL_NESTING} deep (the nesting limit is ${MAX_SQL_NESTING})`,
      positionAt(sql, tooDeep),
    );
  }
}

/**
 * Where `sql` first opens a parenthesis or CASE at depth `limit` + 1, or undefined.
 * What counts as code follows dt-sql-parser's Flink lexer, the reader this protects:
 * quotes ('', "", ``) with backslash escapes and doubled quotes, `--` and `#` comments
 * to the end of the line, and comments in slash-star; an unterminated quote or comment
 * is read as code, as that lexer reads it. Where this pass misreads, the check's time
 * limit still holds.
 */
export function deeperThan(sql: string, limit: number): number | undefined {
  let depth = 0;
  let i = 0;
  while (i < sql.length) {
    const char = sql[i]!;
    const skipTo = char === "'" || char === '"' || char === '`' ? quoteEnd(sql, i) : commentEnd(sql, i);
    if (skipTo !== undefined) {
      i = skipTo;
    } else if (isWordChar(char)) {
      const end = wordEnd(sql, i);
      const word = end - i === 4 || end - i === 3 ? sql.slice(i, end).toUpperCase() : '';
      if (word === 'CASE' && ++depth > limit) return i;
      if (word === 'END') depth = Math.max(0, depth - 1);
      i = end;
    } else {
      if (char === '(' && ++depth > limit) return i;
      if (char === ')') depth = Math.max(0, depth - 1);
      i += 1;
    }
  }
  return undefined;
}

/** The index after the quoted text that starts at `start`, or undefined when it never ends. */
function quoteEnd(sql: string, start: number): number | undefined {
  const quote = sql[start];
  for (let i = start + 1; i < sql.length; i += 1) {
    if (sql[i] === '\\') {
      i += 1;
    } else if (sql[i] === quote) {
      if (sql[i + 1] !== quote) return i + 1;
      i += 1;
    }
  }
  return undefined;
}

/** The index after the comment that starts at `start`, or undefined when none starts there. */
function commentEnd(sql: string, start: number): number | undefined {
  if (sql.startsWith('/*', start)) {
    const close = sql.indexOf('*/', start + 2);
    return close < 0 ? undefined : close + 2;
  }
  if (!sql.startsWith('--', start) && sql[start] !== '#') return undefined;
  // The lexer's line comment ends with \n, \r\n or the end of the text; before a lone \r it is no comment.
  const lineBreak = /[\r\n]/g;
  lineBreak.lastIndex = start;
  const found = lineBreak.exec(sql);
  if (!found) return sql.length;
  if (found[0] === '\n') return found.index + 1;
  return sql[found.index + 1] === '\n' ? found.index + 2 : undefined;
}

function isWordChar(char: string): boolean {
  return /[A-Za-z0-9_$]/.test(char);
}

function wordEnd(sql: string, start: number): number {
  let end = start + 1;
  while (end < sql.length && isWordChar(sql[end]!)) end += 1;
  return end;
}
