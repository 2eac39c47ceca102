import type {
  InsertSimpleStatementContext,
  QueryStatementContext,
  SqlStatementContext,
} from 'dt-sql-parser/dist/lib/flink/FlinkSqlParser.js';
import { tokenPosition } from './sql-position.js';
import type { TokenLike } from './sql-position.js';
import { forbiddenStatementReason, parseSingleStatement, reject, startOf, streamName } from './sql-statement.js';
import type { Path } from './sql-statement.js';
import { collectTableReferences, tableReference } from './table-references.js';

export interface PipelineSqlAnalysis {
  /** The stream the pipeline writes, by bare name as Flink resolves it (case kept, backticks gone). */
  readonly output: string;
  /** The streams it reads, each once, in order of first appearance. */
  readonly inputs: readonly string[];
}

/** The analysis plus where the pipeline's query (its SELECT part) starts. */
export interface PipelineQueryAnalysis extends PipelineSqlAnalysis {
  /** Index of the query's first character, in code points of the SQL text. */
  readonly queryStart: number;
}

const SHAPE = 'a pipeline is a single INSERT INTO <stream> SELECT ... statement';

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
  const { output, inputs } = analyzePipelineQuery(sql, knownStreams, path);
  return { output, inputs };
}

export function analyzePipelineQuery(
  sql: string,
  knownStreams: ReadonlySet<string>,
  path: Path = ['sql'],
): PipelineQueryAnalysis {
  const statement = parseSingleStatement(sql, path, SHAPE);
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
  return { output, inputs, queryStart: query.start?.start ?? 0 };
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
  const reason = forbiddenStatementReason(statement);
  return `${keyword} statements are not allowed${reason ? ` (${reason})` : ''}: ${SHAPE}`;
}
