import { forbiddenStatementReason, parseSingleStatement, reject, startOf, streamName } from './sql-statement.js';
import type { Path } from './sql-statement.js';
import { analyzePipelineQuery } from './pipeline-sql.js';
import { collectTableReferences } from './table-references.js';

export interface SelectSqlAnalysis {
  /** The query to run, positions unchanged relative to the text the user wrote. */
  readonly query: string;
  /** The streams it reads, each once, in order of first appearance. */
  readonly inputs: readonly string[];
}

const SHAPE = 'a preview is a single SELECT statement';

/**
 * Checks ad-hoc preview SQL: exactly one query (SELECT, WITH ... SELECT, set operations)
 * over the account's own streams by bare name. Everything the pipeline check rejects
 * (hints, qualified names, lexer disagreements) is rejected here too, and so is every
 * statement that is not a query (INSERT, DDL, SET, ADD JAR, USE, ...).
 */
export function analyzeSelectSql(sql: string, knownStreams: ReadonlySet<string>, path: Path = ['sql']): SelectSqlAnalysis {
  const statement = parseSingleStatement(sql, path, SHAPE);
  const query = statement.dmlStatement()?.queryStatement();
  if (!query) {
    const keyword = statement.start?.text?.toUpperCase() ?? 'This';
    const reason = statement.dmlStatement()?.insertStatement()
      ? 'a preview never writes to a stream'
      : forbiddenStatementReason(statement);
    reject(path, `${keyword} statements are not allowed${reason ? ` (${reason})` : ''}: ${SHAPE}`, startOf(statement));
  }
  const inputs: string[] = [];
  for (const reference of collectTableReferences(query)) {
    const name = streamName(reference, knownStreams, path);
    if (!inputs.includes(name)) inputs.push(name);
  }
  return { query: sql, inputs };
}

/**
 * The SELECT part of a pipeline's INSERT INTO, for a preview that never writes the
 * sink. Text before the query is blanked rather than cut so that Flink's line and
 * column numbers still point into the pipeline's SQL as the user wrote it.
 */
export function pipelineSelectSql(sql: string, knownStreams: ReadonlySet<string>, path: Path = ['sql']): SelectSqlAnalysis {
  const analysis = analyzePipelineQuery(sql, knownStreams, path);
  const codePoints = Array.from(sql);
  const before = codePoints.slice(0, analysis.queryStart).map((char) => (char === '\n' || char === '\r' ? char : ' '));
  return { query: before.join('') + codePoints.slice(analysis.queryStart).join(''), inputs: analysis.inputs };
}
