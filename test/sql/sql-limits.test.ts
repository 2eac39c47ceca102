import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/platform/errors.js';
import { checkSqlLimits, deeperThan, MAX_SQL_LENGTH, MAX_SQL_NESTING } from '../../src/sql/sql-limits.js';

const nested = (open: string, close: string, depth: number) => open.repeat(depth) + '1' + close.repeat(depth);

function refusal(sql: string) {
  let caught: unknown;
  try {
    checkSqlLimits(sql, ['input', 'sql']);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ValidationError);
  return (caught as ValidationError).problems[0]!;
}

describe('SQL limits, checked before parsing', () => {
  it(`allows ${MAX_SQL_NESTING} levels of nesting and refuses one more, pointing at it`, () => {
    expect(() => checkSqlLimits(`SELECT ${nested('ABS(', ')', MAX_SQL_NESTING)} FROM t`, ['sql'])).not.toThrow();
    const sql = `SELECT\n  ${nested('ABS(', ')', MAX_SQL_NESTING + 1)} FROM t`;
    const problem = refusal(sql);
    expect(problem.message).toMatch(new RegExp(`nesting limit is ${MAX_SQL_NESTING}`));
    expect(problem.path).toEqual(['input', 'sql']);
    expect({ line: problem.line, column: problem.column }).toEqual({ line: 2, column: 3 + 4 * MAX_SQL_NESTING + 3 });
  });

  it('counts CASE ... END as a level, and only the keywords', () => {
    expect(deeperThan(nested('CASE WHEN x THEN ', ' END', 3), 3)).toBeUndefined();
    expect(deeperThan(nested('case when x then ', ' end', 4), 3)).toBe(3 * 'case when x then '.length);
    expect(deeperThan('SELECT case_id, end_time, (((1))) FROM t', 3)).toBeUndefined();
    expect(deeperThan('SELECT CASE WHEN (((a))) THEN 1 END FROM t', 3)).toBe('SELECT CASE WHEN ((('.length - 1);
  });

  it('does not count parentheses in strings, quoted names or comments', () => {
    const deep = '('.repeat(40);
    for (const hidden of [`'${deep}'`, `'it''s ${deep}'`, `'\\' ${deep}'`, `\`${deep}\``, `"${deep}"`, `-- ${deep}\n`, `# ${deep}\r\n`, `/* ${deep} */`]) {
      expect(deeperThan(`SELECT ${hidden} 1 FROM t`, 3), hidden).toBeUndefined();
    }
  });

  it('counts them where the parser reads code: after an unterminated quote or comment, and in a "comment" the parser does not end', () => {
    const deep = '('.repeat(5);
    for (const code of [`'${deep}`, `/* ${deep}`, `-- ${deep}\r ${deep}`]) {
      expect(deeperThan(`SELECT ${code}`, 3), code).toBeDefined();
    }
  });

  it(`refuses more than ${MAX_SQL_LENGTH} characters`, () => {
    const sql = `SELECT '${'x'.repeat(MAX_SQL_LENGTH)}' FROM t`;
    expect(refusal(sql).message).toBe(`must be at most ${MAX_SQL_LENGTH} characters (got ${sql.length})`);
  });

  it('allows what real pipelines write', () => {
    const sql = `INSERT INTO totals
      WITH recent AS (SELECT * FROM orders WHERE ts > CURRENT_TIMESTAMP - INTERVAL '1' HOUR)
      SELECT window_start, customer, SUM(CAST(amount AS DECIMAL(10, 2))) AS total,
        CASE WHEN COUNT(*) > 10 THEN 'many' ELSE 'few' END AS how_many
      FROM TABLE(TUMBLE(TABLE recent, DESCRIPTOR(ts), INTERVAL '5' MINUTES))
      WHERE customer IN (SELECT id FROM customers WHERE COALESCE(region, 'eu') = 'eu')
      GROUP BY window_start, window_end, customer`;
    expect(() => checkSqlLimits(sql, ['sql'])).not.toThrow();
  });
});
