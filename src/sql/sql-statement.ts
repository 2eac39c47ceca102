// The Flink dialect alone: the package's index loads every dialect's parser (seconds at start-up).
import { FlinkSQL } from 'dt-sql-parser/dist/parser/flink/index.js';
import type { ParseError } from 'dt-sql-parser';
import { FlinkSqlParser } from 'dt-sql-parser/dist/lib/flink/FlinkSqlParser.js';
import type { SqlStatementContext } from 'dt-sql-parser/dist/lib/flink/FlinkSqlParser.js';
import { ValidationError } from '../platform/errors.js';
import { DEFAULT_CHANNEL, findLexicalProblem } from './lexical-safety.js';
import type { LexedToken } from './lexical-safety.js';
import { tokenPosition } from './sql-position.js';
import type { SqlPosition, SqlProblem, TokenLike } from './sql-position.js';
import type { TableReference } from './table-references.js';

/**
 * What every sandboxed SQL check shares (pipelines, previews): one statement, lexically
 * unambiguous between dt-sql-parser and Flink, tables only by the account's bare
 * stream names. Each check adds the statement shape it accepts.
 */

export type Path = readonly (string | number)[];

export const START: SqlPosition = { line: 1, column: 1 };

// Parsing keeps no state between calls (`parse` and `createLexer` bypass the caches).
const flink = new FlinkSQL();

export function reject(path: Path, message: string, position: SqlPosition): never {
  throw ValidationError.of(path, message, position);
}

/** The one statement of `sql`, or a rejection; `shape` says what the caller accepts. */
export function parseSingleStatement(sql: string, path: Path, shape: string): SqlStatementContext {
  if (sql.trim() === '') reject(path, `The SQL is empty: ${shape}`, START);

  // Lexer errors surface again, with the parser's, from `parse` below.
  const tokens: LexedToken[] = flink.createLexer(sql, () => {}).getAllTokens();
  const lexical = findLexicalProblem(sql, tokens);
  if (lexical) reject(path, lexical.message, lexical.position);

  const errors: ParseError[] = [];
  const program = flink.parse(sql, (error) => errors.push(error));
  const syntax = syntaxProblem(errors, tokens);
  if (syntax) reject(path, syntax.message, syntax.position);

  const statements = program.singleStatement().flatMap((single) => single.sqlStatement() ?? []);
  const [statement, second] = statements;
  if (!statement) reject(path, `The SQL has only comments: ${shape}`, START);
  if (second) reject(path, `Only one statement is allowed: ${shape}`, startOf(second));
  return statement;
}

function syntaxProblem(errors: readonly ParseError[], tokens: readonly LexedToken[]): SqlProblem | undefined {
  // Lexer errors are reported before the parser's; the user wants the first in the text.
  const first = [...errors].sort((a, b) => a.startLine - b.startLine || a.startColumn - b.startColumn)[0];
  if (!first) return undefined;
  const position = { line: first.startLine, column: first.startColumn };
  const significant = tokens.filter((token) => token.channel === DEFAULT_CHANNEL);
  const offending = significant.find((token) => samePosition(tokenPosition(token), position));
  if (significant[0]?.type === FlinkSqlParser.KW_WITH && offending?.type === FlinkSqlParser.KW_INSERT) {
    return {
      message: 'Flink does not accept WITH before INSERT INTO: write INSERT INTO <stream> WITH name AS (...) SELECT ...',
      position,
    };
  }
  return { message: `Syntax error: ${first.message}`, position };
}

/** Why a statement that is neither a query nor an INSERT is refused, if it is a known kind. */
export function forbiddenStatementReason(statement: SqlStatementContext): string | undefined {
  return statement.ddlStatement()
    ? 'streams, views and functions are managed through the Weir API'
    : statement.setStatement() || statement.resetStatement()
      ? 'job configuration is managed by Weir'
      : statement.jarStatement() || statement.dtAddStatement()
        ? 'SQL cannot load code or files'
        : statement.useStatement()
          ? "streams are always resolved in the account's own namespace"
          : undefined;
}

/**
 * The stream a reference names. Flink resolves `db.t` and `catalog.db.t` outside the
 * account's namespace, so only a bare name can be one of the account's streams.
 */
export function streamName(reference: TableReference, knownStreams: ReadonlySet<string>, path: Path): string {
  const [name, ...rest] = reference.parts;
  if (name === undefined || rest.length > 0) {
    return reject(
      path,
      `Unknown stream "${reference.text}": refer to streams by bare name, without catalog or database`,
      reference.position,
    );
  }
  if (knownStreams.has(name)) return name;
  return reject(path, `Unknown stream "${name}": ${unknownHint(name, knownStreams)}`, reference.position);
}

function unknownHint(name: string, knownStreams: ReadonlySet<string>): string {
  if (/^['"]/.test(name)) return 'write names bare or in `backticks`, not in quotes';
  const lower = name.toLowerCase();
  const differentCase = [...knownStreams].find((known) => known.toLowerCase() === lower);
  if (differentCase) return `did you mean "${differentCase}"? Stream names are case-sensitive`;
  return 'this account has no stream with that name';
}

export function startOf(node: { start: TokenLike | null }): SqlPosition {
  return node.start ? tokenPosition(node.start) : START;
}

function samePosition(a: SqlPosition, b: SqlPosition): boolean {
  return a.line === b.line && a.column === b.column;
}
