/** A place in SQL text as users see it: both line and column count from 1. */
export interface SqlPosition {
  readonly line: number;
  readonly column: number;
}

/**
 * The parts of an antlr token that positions need. Declared here rather than imported
 * because antlr4ng is dt-sql-parser's dependency, not Weir's.
 */
export interface TokenLike {
  /** From 1. */
  readonly line: number;
  /** From 0, in characters of the token's line. */
  readonly column: number;
  readonly text: string | null | undefined;
}

export function tokenPosition(token: TokenLike): SqlPosition {
  return { line: token.line, column: token.column + 1 };
}

/**
 * Where the character `offset` UTF-16 units into a token's text sits. Used to point
 * inside a multi-line string or comment; token start/stop indexes count code points,
 * so they are not mixed with JavaScript string offsets.
 */
export function positionInToken(token: TokenLike, offset: number): SqlPosition {
  const before = (token.text ?? '').slice(0, offset);
  const lastBreak = before.lastIndexOf('\n');
  if (lastBreak < 0) return { line: token.line, column: token.column + offset + 1 };
  const breaks = before.split('\n').length - 1;
  return { line: token.line + breaks, column: offset - lastBreak };
}

/** Where the character `offset` UTF-16 units into `text` sits. */
export function positionAt(text: string, offset: number): SqlPosition {
  return positionInToken({ line: 1, column: 0, text }, offset);
}

/** A rejection found in SQL text, before it is tied to an input path. */
export interface SqlProblem {
  readonly message: string;
  readonly position: SqlPosition;
}
