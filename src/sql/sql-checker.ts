import type { PipelineSqlAnalysis } from './pipeline-sql.js';
import type { SelectSqlAnalysis } from './select-sql.js';
import type { Path } from './sql-statement.js';

/**
 * The SQL checks as services call them: the answers and ValidationErrors of
 * analyzePipelineSql, analyzeSelectSql and pipelineSelectSql, computed off the event
 * loop (see SqlWorkerPool). Besides them: ValidationError for SQL over the size or
 * nesting limit, SqlTooComplexError for a check stopped at its time limit, and
 * UnavailableError when the checker is saturated or shut down.
 */
export interface SqlChecker {
  analyzePipeline(sql: string, knownStreams: ReadonlySet<string>, path?: Path): Promise<PipelineSqlAnalysis>;
  analyzeSelect(sql: string, knownStreams: ReadonlySet<string>, path?: Path): Promise<SelectSqlAnalysis>;
  pipelineSelect(sql: string, knownStreams: ReadonlySet<string>, path?: Path): Promise<SelectSqlAnalysis>;
  /** Fails what is queued or running and stops every thread. */
  close(): Promise<void>;
}
