import { FlinkSqlParser } from 'dt-sql-parser/dist/lib/flink/FlinkSqlParser.js';
import { positionAt, positionInToken, tokenPosition } from './sql-position.js';
import type { SqlProblem, TokenLike } from './sql-position.js';

/** A token from dt-sql-parser's Flink lexer, hidden-channel ones (comments) included. */
export interface LexedToken extends TokenLike {
  readonly type: number;
  /** DEFAULT_CHANNEL for tokens the parser sees, another for whitespace and comments. */
  readonly channel: number;
}

/** antlr's Token.DEFAULT_CHANNEL. */
export const DEFAULT_CHANNEL = 0;

/**
 * dt-sql-parser's lexer and Flink's (Calcite's) disagree on a few rules. Where they do,
 * a text this checker reads as harmless can read other tables in Flink: for example
 * `SELECT 'x\' FROM secret -- ' AS c FROM a` is one string and a read of `a` to
 * dt-sql-parser, which honours backslash escapes, but reads `secret` in Flink, which
 * does not. So every disagreement is rejected instead of guessed at.
 */
export function findLexicalProblem(sql: string, tokens: readonly LexedToken[]): SqlProblem | undefined {
  const loneCarriageReturn = /\r(?!\n)/.exec(sql);
  if (loneCarriageReturn) {
    // Calcite ends a `--` comment at a bare \r; dt-sql-parser does not.
    return {
      message: 'A carriage return without a line feed is not allowed; use \\n or \\r\\n line breaks',
      position: positionAt(sql, loneCarriageReturn.index),
    };
  }
  for (const [index, token] of tokens.entries()) {
    const problem = problemInToken(token, tokens[index + 1]);
    if (problem) return problem;
  }
  return undefined;
}

function problemInToken(token: LexedToken, next: LexedToken | undefined): SqlProblem | undefined {
  const text = token.text ?? '';
  const position = tokenPosition(token);
  switch (token.type) {
    case FlinkSqlParser.BRACKETED_COMMENT:
      if (!text.startsWith('/*+')) return undefined;
      return {
        message: /\bOPTIONS\s*\(/i.test(text)
          ? 'Dynamic table options (/*+ OPTIONS(...) */) are not allowed: connector settings of streams are managed by Weir'
          : 'SQL hints (/*+ ... */) are not allowed in pipelines',
        position,
      };
    case FlinkSqlParser.LINE_COMMENT:
      if (!text.startsWith('#')) return undefined;
      return { message: '"#" does not start a comment in Flink SQL; use "--"', position };
    case FlinkSqlParser.SLASH_SIGN:
      if (!next?.text?.startsWith('/')) return undefined;
      return {
        message: 'Use "--" for comments: Flink reads "//" as a comment, Weir\'s SQL checker does not',
        position,
      };
    case FlinkSqlParser.STRING_LITERAL:
      return problemInQuoted(token, text);
    default:
      return undefined;
  }
}

function problemInQuoted(token: LexedToken, text: string): SqlProblem | undefined {
  const quote = text[0];
  if (quote === '"') {
    return {
      message: "Double quotes are not valid in Flink SQL: write text in 'single quotes' and names in `backticks`",
      position: tokenPosition(token),
    };
  }
  const backslash = escapedQuoteIndex(text);
  if (backslash === undefined) return undefined;
  const what = quote === '`' ? 'names in backticks' : 'strings';
  return {
    message:
      `Flink SQL has no backslash escapes in ${what}: "\\${quote}" does not escape the ${quote}. ` +
      `Write ${quote}${quote} for a ${quote} inside it`,
    position: positionInToken(token, backslash),
  };
}

/**
 * dt-sql-parser reads `\x` inside quotes as an escaped pair, Calcite reads two plain
 * characters. The readings only differ when x is the quote itself, so the index of the
 * first backslash that dt-sql-parser pairs with a quote is where they part ways.
 */
function escapedQuoteIndex(text: string): number | undefined {
  const quote = text[0];
  for (let i = 1; i < text.length - 1; i += 1) {
    if (text[i] === '\\') {
      if (text[i + 1] === quote) return i;
      i += 1;
    } else if (text[i] === quote) {
      i += 1; // the first of a doubled quote: skip its twin
    }
  }
  return undefined;
}
