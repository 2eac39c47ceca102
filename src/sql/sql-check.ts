import { ValidationError } from '../platform/errors.js';
import type { ValidationProblem } from '../platform/errors.js';
import { analyzePipelineSql } from './pipeline-sql.js';
import type { PipelineSqlAnalysis } from './pipeline-sql.js';
import { analyzeSelectSql, pipelineSelectSql } from './select-sql.js';
import type { SelectSqlAnalysis } from './select-sql.js';
import type { Path } from './sql-statement.js';

/** The checks a worker runs, each with what it answers. */
export interface SqlChecks {
  /** analyzePipelineSql: a pipeline's INSERT INTO ... SELECT. */
  readonly pipeline: PipelineSqlAnalysis;
  /** analyzeSelectSql: ad-hoc preview SQL. */
  readonly select: SelectSqlAnalysis;
  /** pipelineSelectSql: the SELECT part of a pipeline, for its preview. */
  readonly pipelineSelect: SelectSqlAnalysis;
}

export type SqlCheckKind = keyof SqlChecks;

/** A check as it crosses to a worker (structured-cloned: plain data only). */
export interface SqlCheckRequest<K extends SqlCheckKind = SqlCheckKind> {
  readonly kind: K;
  readonly sql: string;
  readonly knownStreams: readonly string[];
  readonly path: Path;
}

/** A check's answer as it crosses back: a ValidationError travels as its problems. */
export type SqlCheckOutcome<K extends SqlCheckKind = SqlCheckKind> =
  | { readonly ok: true; readonly value: SqlChecks[K] }
  | { readonly ok: false; readonly problems: readonly ValidationProblem[] }
  /** The parser ran out of stack (a long chain of operators, e.g. `- - - ... 1`). */
  | { readonly ok: false; readonly stackExhausted: true }
  | { readonly ok: false; readonly unexpected: string };

/** Runs one check where it is called (in a worker, see sql-check-worker.ts). */
export function runSqlCheck<K extends SqlCheckKind>(request: SqlCheckRequest<K>): SqlCheckOutcome<K> {
  const known = new Set(request.knownStreams);
  try {
    const value = CHECKS[request.kind](request.sql, known, request.path) as SqlChecks[K];
    return { ok: true, value };
  } catch (error) {
    if (error instanceof ValidationError) return { ok: false, problems: error.problems };
    if (error instanceof RangeError && /call stack/i.test(error.message)) return { ok: false, stackExhausted: true };
    return { ok: false, unexpected: error instanceof Error ? (error.stack ?? error.message) : String(error) };
  }
}

const CHECKS: { readonly [K in SqlCheckKind]: (sql: string, known: ReadonlySet<string>, path: Path) => SqlChecks[K] } = {
  pipeline: analyzePipelineSql,
  select: analyzeSelectSql,
  pipelineSelect: pipelineSelectSql,
};
