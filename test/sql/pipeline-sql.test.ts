import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/platform/errors.js';
import type { ValidationProblem } from '../../src/platform/errors.js';
import { analyzePipelineSql } from '../../src/sql/pipeline-sql.js';

const STREAMS: ReadonlySet<string> = new Set(['orders', 'customers', 'rates', 'enriched', 'big_orders', 'Clicks']);

function analyze(sql: string, known: ReadonlySet<string> = STREAMS) {
  return analyzePipelineSql(sql, known);
}

/** The single problem of the ValidationError that `sql` is rejected with. */
function rejection(sql: string, known: ReadonlySet<string> = STREAMS): ValidationProblem {
  let caught: unknown;
  try {
    analyzePipelineSql(sql, known);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ValidationError);
  const error = caught as ValidationError;
  expect(error.code).toBe('VALIDATION');
  expect(error.problems).toHaveLength(1);
  return error.problems[0]!;
}

describe('analyzePipelineSql: accepted pipelines', () => {
  it('reads a simple filter and transform', () => {
    const sql = `INSERT INTO big_orders
      SELECT id, UPPER(customer_id) AS customer, CAST(amount AS DECIMAL(10, 2)) AS amount
      FROM orders
      WHERE amount > 100 AND status <> 'cancelled'`;
    expect(analyze(sql)).toEqual({ output: 'big_orders', inputs: ['orders'] });
  });

  it('finds both sides of a join, once each and in order', () => {
    const sql = `INSERT INTO enriched
      SELECT o.id, c.name FROM orders AS o
      JOIN customers c ON o.customer_id = c.id
      LEFT JOIN orders o2 ON o.id = o2.parent_id`;
    expect(analyze(sql)).toEqual({ output: 'enriched', inputs: ['orders', 'customers'] });
  });

  it('finds the versioned table of a temporal join', () => {
    const sql = `INSERT INTO enriched
      SELECT o.id, o.amount * r.rate FROM orders AS o
      JOIN rates FOR SYSTEM_TIME AS OF o.order_time AS r ON o.currency = r.currency`;
    expect(analyze(sql).inputs).toEqual(['orders', 'rates']);
  });

  it('aggregates with GROUP BY and HAVING', () => {
    const sql = 'INSERT INTO enriched SELECT customer_id, COUNT(*) AS n FROM orders GROUP BY customer_id HAVING COUNT(*) > 1';
    expect(analyze(sql)).toEqual({ output: 'enriched', inputs: ['orders'] });
  });

  it('finds the table of a window table-valued function', () => {
    const sql = `INSERT INTO enriched
      SELECT window_start, window_end, SUM(amount)
      FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(order_time), INTERVAL '1' MINUTE))
      GROUP BY window_start, window_end`;
    expect(analyze(sql).inputs).toEqual(['orders']);
    const named = `INSERT INTO enriched SELECT * FROM TABLE(
      HOP(DATA => TABLE customers, TIMECOL => DESCRIPTOR(ts), SLIDE => INTERVAL '1' MINUTE, SIZE => INTERVAL '5' MINUTE))`;
    expect(analyze(named).inputs).toEqual(['customers']);
  });

  it('does not take a group window time column for a table', () => {
    const sql = "INSERT INTO enriched SELECT COUNT(*) FROM orders GROUP BY TUMBLE(order_time, INTERVAL '1' MINUTE)";
    expect(analyze(sql).inputs).toEqual(['orders']);
  });

  it('finds tables in subqueries and set operations', () => {
    const sql = `INSERT INTO enriched
      SELECT id FROM (SELECT id FROM orders WHERE amount > 1) AS t
      WHERE id IN (SELECT order_id FROM rates) AND EXISTS (SELECT 1 FROM customers)
      UNION ALL SELECT id FROM Clicks`;
    expect(analyze(sql).inputs).toEqual(['orders', 'rates', 'customers', 'Clicks']);
  });

  it('does not count CTE names as sources', () => {
    const sql = `INSERT INTO enriched
      WITH big AS (SELECT * FROM orders WHERE amount > 100),
           named AS (SELECT b.*, c.name FROM big b JOIN customers c ON b.customer_id = c.id)
      SELECT * FROM named`;
    expect(analyze(sql)).toEqual({ output: 'enriched', inputs: ['orders', 'customers'] });
  });

  it('keeps a leading CTE in scope across UNION', () => {
    const sql = `INSERT INTO enriched
      WITH x AS (SELECT id FROM orders)
      SELECT id FROM x UNION ALL SELECT id FROM x`;
    expect(analyze(sql).inputs).toEqual(['orders']);
  });

  it('reads the real table when a CTE shadows it in its own body', () => {
    const sql = 'INSERT INTO enriched WITH orders AS (SELECT * FROM orders WHERE amount > 0) SELECT * FROM orders';
    expect(analyze(sql).inputs).toEqual(['orders']);
  });

  it('resolves backticked names and keeps case', () => {
    const sql = 'INSERT INTO `enriched` SELECT `order id`, `select` FROM `orders` JOIN Clicks ON true';
    expect(analyze(sql)).toEqual({ output: 'enriched', inputs: ['orders', 'Clicks'] });
    expect(analyze('INSERT INTO `odd``name` SELECT * FROM orders', new Set(['odd`name', 'orders'])).output).toBe(
      'odd`name',
    );
  });

  it('allows comments, a trailing semicolon, table functions and plain subquery aliases', () => {
    const sql = `-- enrich orders
      INSERT INTO enriched /* the output */
      SELECT o.id, w.word FROM orders AS o
      LEFT JOIN LATERAL TABLE(split_words(o.note)) AS w(word) ON TRUE
      WHERE REGEXP(o.note, '\\d+') AND o.note <> 'it''s';`;
    expect(analyze(sql)).toEqual({ output: 'enriched', inputs: ['orders'] });
  });

  it('reports problems under the given path', () => {
    let caught: unknown;
    try {
      analyzePipelineSql('SELECT 1', STREAMS, ['input', 'sql']);
    } catch (error) {
      caught = error;
    }
    expect((caught as ValidationError).problems[0]?.path).toEqual(['input', 'sql']);
    expect(rejection('SELECT 1').path).toEqual(['sql']);
  });
});

describe('analyzePipelineSql: rejected text', () => {
  it('rejects empty SQL and SQL with only comments', () => {
    expect(rejection('')).toMatchObject({ message: expect.stringMatching(/empty/), line: 1, column: 1 });
    expect(rejection('  \n\t ').message).toMatch(/empty/);
    expect(rejection('-- nothing here\n/* at all */').message).toMatch(/only comments/);
  });

  it('reports syntax errors at the parser position', () => {
    const sql = 'INSERT INTO enriched\nSELECT *\nFROM orders\nWHERE amount = = 1';
    expect(rejection(sql)).toMatchObject({ message: expect.stringMatching(/^Syntax error: '='/), line: 4, column: 16 });
    expect(rejection('INSERT INTO enriched SELEC * FROM orders')).toMatchObject({ line: 1, column: 22 });
  });

  it('explains that WITH cannot come before INSERT', () => {
    const sql = 'WITH x AS (SELECT * FROM orders)\nINSERT INTO enriched SELECT * FROM x';
    expect(rejection(sql)).toMatchObject({ message: expect.stringMatching(/WITH before INSERT INTO/), line: 2, column: 1 });
  });

  it('rejects scalar subqueries in the select list, which dt-sql-parser 4.5 cannot parse', () => {
    // Valid Flink SQL; kept as a test so that a parser upgrade that fixes it is noticed.
    expect(rejection('INSERT INTO enriched SELECT (SELECT MAX(amount) FROM orders) FROM customers').message).toMatch(
      /^Syntax error/,
    );
  });

  it('rejects more than one statement at the second one', () => {
    const sql = 'INSERT INTO enriched SELECT * FROM orders;\n  INSERT INTO big_orders SELECT * FROM orders;';
    expect(rejection(sql)).toMatchObject({ message: expect.stringMatching(/Only one statement/), line: 2, column: 3 });
  });

  it.each([
    ['CREATE TABLE t (a INT) WITH (\'connector\' = \'datagen\')', /^CREATE statements .*managed through the Weir API/],
    ['CREATE TEMPORARY VIEW v AS SELECT * FROM orders', /^CREATE statements/],
    ['CREATE FUNCTION f AS \'com.example.F\'', /^CREATE statements/],
    ['DROP TABLE orders', /^DROP statements/],
    ['ALTER TABLE orders RENAME TO o', /^ALTER statements/],
    ["SET 'table.exec.state.ttl' = '1 h'", /^SET statements .*job configuration/],
    ['RESET', /^RESET statements/],
    ["ADD JAR '/tmp/evil.jar'", /^ADD statements .*load code/],
    ['USE CATALOG other', /^USE statements .*own namespace/],
    ['USE other_db', /^USE statements/],
    ['SHOW TABLES', /^SHOW statements are not allowed: a pipeline is a single INSERT INTO/],
    ['DESCRIBE orders', /^DESCRIBE statements/],
    ['EXPLAIN INSERT INTO enriched SELECT * FROM orders', /^EXPLAIN statements/],
    ['SELECT * FROM orders', /^A query on its own does not write/],
    ['WITH x AS (SELECT * FROM orders) SELECT * FROM x', /^A query on its own/],
  ])('rejects %s', (sql, message) => {
    expect(rejection(sql)).toMatchObject({ message: expect.stringMatching(message), line: 1, column: 1 });
  });

  it('rejects INSERT ... VALUES', () => {
    expect(rejection("INSERT INTO enriched VALUES (1, 'a'), (2, 'b')")).toMatchObject({
      message: expect.stringMatching(/INSERT \.\.\. VALUES/),
      line: 1,
      column: 22,
    });
    expect(rejection('INSERT INTO enriched (VALUES (1))').message).toMatch(/VALUES/);
  });

  it('rejects statement sets, EXECUTE and INSERT OVERWRITE', () => {
    expect(rejection('EXECUTE STATEMENT SET BEGIN INSERT INTO enriched SELECT * FROM orders; END').message).toMatch(
      /^STATEMENT SET/,
    );
    expect(rejection('BEGIN STATEMENT SET; INSERT INTO enriched SELECT * FROM orders; END').message).toMatch(
      /^STATEMENT SET/,
    );
    expect(rejection('EXECUTE INSERT INTO enriched SELECT * FROM orders')).toMatchObject({
      message: expect.stringMatching(/^EXECUTE/),
      column: 1,
    });
    expect(rejection('INSERT OVERWRITE enriched SELECT * FROM orders')).toMatchObject({
      message: expect.stringMatching(/OVERWRITE/),
      column: 8,
    });
  });
});

describe('analyzePipelineSql: streams', () => {
  it('rejects an unknown output stream at its name', () => {
    expect(rejection('INSERT INTO nowhere SELECT * FROM orders')).toMatchObject({
      message: 'Unknown stream "nowhere": this account has no stream with that name',
      line: 1,
      column: 13,
    });
  });

  it('rejects an unknown source stream at its name, in multi-line SQL', () => {
    const sql = 'INSERT INTO enriched\nSELECT o.id\nFROM orders o\n  JOIN secret s ON o.id = s.id';
    expect(rejection(sql)).toMatchObject({ message: expect.stringMatching(/^Unknown stream "secret"/), line: 4, column: 8 });
  });

  it('finds unknown streams hidden in subqueries', () => {
    const sql = 'INSERT INTO enriched SELECT * FROM orders WHERE id IN (\n SELECT id FROM secret)';
    expect(rejection(sql)).toMatchObject({ message: expect.stringMatching(/"secret"/), line: 2, column: 17 });
  });

  it('does not let a CTE name escape its parentheses', () => {
    const sql = `INSERT INTO enriched
      SELECT * FROM (WITH x AS (SELECT * FROM orders) SELECT * FROM x)
      UNION ALL SELECT * FROM x`;
    expect(rejection(sql).message).toMatch(/^Unknown stream "x"/);
  });

  it('rejects qualified names, which reach outside the account', () => {
    expect(rejection('INSERT INTO enriched SELECT * FROM other_db.orders')).toMatchObject({
      message: expect.stringMatching(/^Unknown stream "other_db.orders": refer to streams by bare name/),
      column: 36,
    });
    expect(rejection('INSERT INTO enriched SELECT * FROM cat.`db`.orders').message).toMatch(/"cat.`db`.orders"/);
    expect(rejection('INSERT INTO default_catalog.default_database.enriched SELECT * FROM orders').column).toBe(13);
  });

  it('hints at case when a name differs only by case', () => {
    expect(rejection('INSERT INTO enriched SELECT * FROM clicks').message).toBe(
      'Unknown stream "clicks": did you mean "Clicks"? Stream names are case-sensitive',
    );
  });

  it('rejects quoted strings used as names', () => {
    expect(rejection("INSERT INTO enriched SELECT * FROM 'orders'").message).toMatch(/in `backticks`, not in quotes/);
  });

  it('rejects a pipeline that reads its own output', () => {
    expect(rejection('INSERT INTO enriched SELECT * FROM orders JOIN enriched ON true')).toMatchObject({
      message: 'Stream "enriched" is this pipeline\'s output, so the pipeline cannot also read it',
      column: 48,
    });
    const viaCte = 'INSERT INTO enriched WITH e AS (SELECT * FROM `enriched`) SELECT * FROM e';
    expect(rejection(viaCte).message).toMatch(/"enriched" is this pipeline's output/);
  });
});

describe('analyzePipelineSql: hints and lexical traps', () => {
  it('rejects dynamic table options', () => {
    const sql = "INSERT INTO enriched\nSELECT * FROM orders /*+ OPTIONS('scan.startup.mode' = 'earliest-offset') */";
    expect(rejection(sql)).toMatchObject({ message: expect.stringMatching(/^Dynamic table options/), line: 2, column: 22 });
  });

  it('rejects any other hint but allows plain comments', () => {
    const sql = 'INSERT INTO enriched SELECT /*+ BROADCAST(c) */ * FROM orders o JOIN customers c ON true';
    expect(rejection(sql)).toMatchObject({ message: expect.stringMatching(/^SQL hints/), column: 29 });
    expect(analyze('INSERT INTO enriched SELECT /* + not a hint */ * FROM orders').inputs).toEqual(['orders']);
  });

  it('rejects backslash-escaped quotes, which Flink reads differently', () => {
    // To dt-sql-parser this reads `orders`; to Flink it reads `secret`.
    const sql = "INSERT INTO enriched SELECT 'x\\' FROM secret -- ' AS c FROM orders";
    expect(rejection(sql)).toMatchObject({ message: expect.stringMatching(/no backslash escapes in strings/), column: 31 });
    const name = 'INSERT INTO enriched SELECT `x\\` FROM secret -- ` AS c FROM orders';
    expect(rejection(name).message).toMatch(/no backslash escapes in names in backticks/);
  });

  it('points into a multi-line string at the backslash', () => {
    const sql = "INSERT INTO enriched SELECT 'a\nbc\\' FROM secret -- '\nFROM orders";
    expect(rejection(sql)).toMatchObject({ line: 2, column: 3 });
  });

  it('rejects double quotes', () => {
    expect(rejection('INSERT INTO enriched SELECT * FROM orders WHERE status = "open"')).toMatchObject({
      message: expect.stringMatching(/^Double quotes/),
      column: 58,
    });
  });

  it('rejects comments that only one of the two lexers sees', () => {
    expect(rejection('INSERT INTO enriched SELECT * FROM orders # all of them').message).toMatch(/"#" does not start/);
    expect(rejection('INSERT INTO enriched SELECT * FROM orders // all').message).toMatch(/"\/\/"/);
    expect(rejection('INSERT INTO enriched SELECT * FROM orders -- x\r, secret')).toMatchObject({
      message: expect.stringMatching(/carriage return/),
      column: 47,
    });
    expect(analyze('INSERT INTO enriched\r\nSELECT 4 / 2 FROM orders').inputs).toEqual(['orders']);
  });
});
