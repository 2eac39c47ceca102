import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { SqlTooComplexError, UnavailableError, ValidationError } from '../../src/platform/errors.js';
import { createLogger } from '../../src/platform/logger.js';
import { analyzePipelineSql } from '../../src/sql/pipeline-sql.js';
import { analyzeSelectSql, pipelineSelectSql } from '../../src/sql/select-sql.js';
import { SqlWorkerPool, type SqlWorkerPoolOptions } from '../../src/sql/sql-worker-pool.js';
import { waitFor } from '../helpers/wait-for.js';

const KNOWN: ReadonlySet<string> = new Set(['orders', 'customers', 'big']);
/**
 * Passes the nesting limit yet keeps the parser busy for seconds (about 10 s on a
 * loaded CI machine, 20 times the limits set below): each unary minus is a level of
 * the parser's recursion that no parenthesis shows.
 */
const SLOW = `INSERT INTO big SELECT ${'- '.repeat(1000)}1 FROM orders`;
const QUICK = 'INSERT INTO big SELECT id FROM orders';

const pools: SqlWorkerPool[] = [];
function pool(options: Partial<SqlWorkerPoolOptions> = {}): SqlWorkerPool {
  const created = new SqlWorkerPool({ size: 1, timeLimitMs: 30_000, logger: createLogger('silent'), ...options });
  pools.push(created);
  return created;
}
afterEach(async () => {
  for (const created of pools.splice(0)) {
    await created.close();
    expect(created.stats().workers).toBe(0);
  }
});

/** Worker start-up takes seconds on a loaded machine; a check is running once one is busy. */
const busy = (checker: SqlWorkerPool) => waitFor('a worker to be checking', async () => checker.stats().busy === 1 || undefined, 25_000, 20);

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail('expected the check to fail'),
    (error: unknown) => error,
  );
}

/** The in-thread check's ValidationError, or its answer. */
function direct(run: () => unknown): unknown {
  try {
    return run();
  } catch (error) {
    return error instanceof ValidationError ? { problems: error.problems, message: error.message } : error;
  }
}

async function viaPool(promise: Promise<unknown>): Promise<unknown> {
  try {
    return await promise;
  } catch (error) {
    return error instanceof ValidationError ? { problems: error.problems, message: error.message } : error;
  }
}

describe('SQL worker pool', () => {
  it('answers exactly as the checks on the calling thread do, line and column included', async () => {
    const checker = pool();
    const pipelines = [QUICK, 'INSERT INTO big SELECT * FROM secret', 'INSERT INTO big\nSELECT id FROM orders /*+ OPTIONS() */', 'DROP TABLE orders', 'INSERT INTO big SELECT FROM'];
    for (const sql of pipelines) {
      expect(await viaPool(checker.analyzePipeline(sql, KNOWN, ['input', 'sql'])), sql).toEqual(direct(() => analyzePipelineSql(sql, KNOWN, ['input', 'sql'])));
      expect(await viaPool(checker.pipelineSelect(sql, KNOWN, ['input', 'pipelineId'])), sql).toEqual(direct(() => pipelineSelectSql(sql, KNOWN, ['input', 'pipelineId'])));
    }
    for (const sql of ['SELECT * FROM orders JOIN customers ON orders.c = customers.id', "SELECT 'a\\' FROM secret -- ' FROM orders", 'SET x = 1', '']) {
      expect(await viaPool(checker.analyzeSelect(sql, KNOWN)), sql).toEqual(direct(() => analyzeSelectSql(sql, KNOWN)));
    }
    expect(checker.stats()).toMatchObject({ workers: 1, started: 1, cut: 0 });
  });

  it('refuses SQL over the size or nesting limit on the calling thread, without starting a worker', async () => {
    const checker = pool();
    const deep = `INSERT INTO big SELECT ${'ABS('.repeat(200)}1${')'.repeat(200)} FROM orders`;
    const error = await failure(checker.analyzePipeline(deep, KNOWN, ['input', 'sql']));
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).message).toMatch(/nesting limit is 32/);
    expect(await failure(checker.analyzeSelect(`SELECT '${'x'.repeat(70_000)}'`, KNOWN))).toBeInstanceOf(ValidationError);
    expect(checker.stats().started).toBe(0);
  });

  it('cuts a check past its time limit, replaces its worker, and the next check works', async () => {
    const checker = pool({ timeLimitMs: 500 });
    expect(await checker.analyzePipeline(QUICK, KNOWN)).toEqual({ output: 'big', inputs: ['orders'] });
    const [first] = checker.threadIds();

    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const started = performance.now();
    const error = await failure(checker.analyzePipeline(SLOW, KNOWN, ['input', 'sql']));
    const took = performance.now() - started;
    delay.disable();

    expect(error).toBeInstanceOf(SqlTooComplexError);
    expect((error as SqlTooComplexError).code).toBe('SQL_TOO_COMPLEX');
    expect((error as SqlTooComplexError).message).toBe('input.sql: The SQL took longer than 500 ms to check and was stopped; simplify it (fewer nested expressions or subqueries)');
    expect(took).toBeGreaterThanOrEqual(495);
    expect(took).toBeLessThan(2000);
    // The parse ran elsewhere: this thread's timers kept their time all along.
    expect(delay.max / 1e6).toBeLessThan(100);

    const stats = checker.stats();
    expect(stats).toMatchObject({ cut: 1, started: 2, workers: 1 });
    expect(checker.threadIds()).not.toContain(first);
    expect(await checker.analyzePipeline(QUICK, KNOWN)).toEqual({ output: 'big', inputs: ['orders'] });
    expect(checker.stats()).toMatchObject({ cut: 1, started: 2 });
  });

  it('runs checks side by side on its workers, and a slow one delays no other', async () => {
    const checker = pool({ size: 2 });
    await checker.warm();
    const slow = failure(checker.analyzePipeline(SLOW, KNOWN));
    await busy(checker);
    expect(await checker.analyzePipeline(QUICK, KNOWN)).toEqual({ output: 'big', inputs: ['orders'] });
    expect(checker.stats().busy).toBe(1);
    await checker.close();
    expect(await slow).toBeInstanceOf(UnavailableError);
  });

  it('refuses checks beyond its queue, and close() fails what waits and stops its threads', async () => {
    const checker = pool({ maxQueued: 1 });
    const running = failure(checker.analyzePipeline(SLOW, KNOWN));
    await busy(checker);
    const queued = failure(checker.analyzePipeline(QUICK, KNOWN));
    const refused = await failure(checker.analyzePipeline(QUICK, KNOWN));
    expect(refused).toBeInstanceOf(UnavailableError);
    expect((refused as UnavailableError).message).toMatch(/busy/);
    await checker.close();
    expect(await running).toBeInstanceOf(UnavailableError);
    expect(await queued).toBeInstanceOf(UnavailableError);
    expect(checker.stats()).toMatchObject({ workers: 0, busy: 0, queued: 0 });
    expect(await failure(checker.analyzePipeline(QUICK, KNOWN))).toBeInstanceOf(UnavailableError);
  });
});
