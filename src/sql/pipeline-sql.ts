import { FlinkSQL } from 'dt-sql-parser';
import type { ParseError } from 'dt-sql-parser';
import { FlinkSqlParser } from 'dt-sql-parser/dist/lib/flink/FlinkSqlParser.js';
import type {
  InsertSimpleStatementContext,
  QueryStatementContext,
  SqlStatementContext,
} from 'dt-sql-parser/dist/lib/flink/FlinkSqlParser.js';
import { ValidationError } from '../platform/errors.js';
import { DEFAULT_CHANNEL, findLexicalProblem } from './lexical-safety.js';
import type { LexedToken } from './lexical-safety.js';
import { tokenPosition } from './sql-position.js';
import type { SqlPosition, SqlProblem, TokenLike } from './sql-position.js';
import { collectTableReferences, tableReference } from './table-references.js';
import type { TableReference } from './table-references.js';

export interface PipelineSqlAnalysis {
  /** The stream the pipeline writes, by bare name as Flink resolves it (case kept, backticks gone). */
  readonly output: string;
  /** The streams it reads, each once, in order of first appearance. */
  readonly inputs: readonly string[];
}

const SHAPE = 'a pipeline is a single INSERT INTO <stream> SELECT ... statement';
const START: SqlPosition = { line: 1, column: 1 };

// Parsing keeps no state between calls (`parse` and `createLexer` bypass the caches).
const flink = new FlinkSQL();

/**
 * Checks a pipeline's Flink SQL against the account's streams and names the streams it
 * writes and reads. Accounts see only their own streams, by bare name, so anything
 * that could reach past them (qualified names, DDL, SET, hints that override connector
 * options) is rejected. Throws ValidationError with a 1-based line and column.
 */
export function analyzePipelineSql(
  sql: string,
  knownStreams: ReadonlySet<string>,
  path: Path = ['sql'],
): PipelineSqlAnalysis {
  if (sql.trim() === '') reject(path, `The SQL is empty: ${SHAPE}`, START);

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
  if (!statement) reject(path, `The SQL has only comments: ${SHAPE}`, START);
  if (second) reject(path, `Only one statement is allowed: ${SHAPE}`, startOf(second));

  const { insert, query } = insertSelect(statement, path);
  const output = streamName(tableReference(insert.tablePath()), knownStreams, path);
  const inputs: string[] = [];
  for (const reference of collectTableReferences(query)) {
    const name = streamName(reference, knownStreams, path);
    if (name === output) {
      const message = `Stream "${name}" is this pipeline's output, so the pipeline cannot also read it`;
      reject(path, message, reference.position);
    }
    if (!inputs.includes(name)) inputs.push(name);
  }
  return { output, inputs };
}

type Path = readonly (string | number)[];

function reject(path: Path, message: string, position: SqlPosition): never {
  throw ValidationError.of(path, message, position);
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

/** The INSERT INTO and its query, or a rejection saying what the statement is instead. */
function insertSelect(
  statement: SqlStatementContext,
  path: Path,
): { insert: InsertSimpleStatementContext; query: QueryStatementContext } {
  const insertStatement = statement.dmlStatement()?.insertStatement();
  if (!insertStatement) return reject(path, notAnInsertMessage(statement), startOf(statement));
  const insert = insertStatement.insertSimpleStatement();
  if (!insert) return reject(path, `STATEMENT SET is not allowed: ${SHAPE}`, startOf(statement));
  const execute = insertStatement.KW_EXECUTE();
  if (execute) return reject(path, `EXECUTE is not allowed: ${SHAPE}`, tokenPosition(execute.symbol));
  const overwrite = insert.KW_OVERWRITE();
  if (overwrite) {
    return reject(path, 'INSERT OVERWRITE is not supported on streams: use INSERT INTO', tokenPosition(overwrite.symbol));
  }
  const query = insert.queryStatement();
  const values = insert.valuesDefinition() ?? (query && valuesOnly(query));
  if (values || !query) {
    const position = values ? startOf(values) : startOf(insert);
    const message = 'INSERT ... VALUES is not allowed: a pipeline reads streams with INSERT INTO <stream> SELECT ...';
    return reject(path, message, position);
  }
  return { insert, query };
}

/** `VALUES ...`, possibly in parentheses: constant rows rather than a query of streams. */
function valuesOnly(query: QueryStatementContext): { start: TokenLike | null } | null {
  const values = query.valuesClause();
  if (values) return values;
  const [inner, other] = query.queryStatement();
  return inner && !other && query.LR_BRACKET() ? valuesOnly(inner) : null;
}

function notAnInsertMessage(statement: SqlStatementContext): string {
  const keyword = statement.start?.text?.toUpperCase() ?? 'This';
  const dml = statement.dmlStatement();
  if (dml?.queryStatement()) {
    return `A query on its own does not write to a stream: ${SHAPE}`;
  }
  const reason = statement.ddlStatement()
    ? 'streams, views and functions are managed through the Weir API'
    : statement.setStatement() || statement.resetStatement()
      ? 'job configuration is managed by Weir'
      : statement.jarStatement() || statement.dtAddStatement()
        ? 'pipelines cannot load code or files'
        : statement.useStatement()
          ? "streams are always resolved in the account's own namespace"
          : undefined;
  return `${keyword} statements are not allowed${reason ? ` (${reason})` : ''}: ${SHAPE}`;
}

/**
 * The stream a reference names. Flink resolves `db.t` and `catalog.db.t` outside the
 * account's namespace, so only a bare name can be one of the account's streams.
 */
function streamName(reference: TableReference, knownStreams: ReadonlySet<string>, path: Path): string {
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

function startOf(node: { start: TokenLike | null }): SqlPosition {
  return node.start ? tokenPosition(node.start) : START;
}

function samePosition(a: SqlPosition, b: SqlPosition): boolean {
  return a.line === b.line && a.column === b.column;
}
