import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/platform/errors.js';
import { analyzeSelectSql, pipelineSelectSql } from '../../src/sql/select-sql.js';

const OWN: ReadonlySet<string> = new Set(['orders', 'customers']);

function rejection(sql: string) {
  let caught: unknown;
  try {
    analyzeSelectSql(sql, OWN);
  } catch (error) {
    caught = error;
  }
  expect(caught, sql).toBeInstanceOf(ValidationError);
  return (caught as ValidationError).problems[0]!;
}

describe('preview sandbox: SQL rejected before anything reaches Flink', () => {
  // One line each; the topic of another account's stream is `weir.<account>.<stream>`.
  const cases: [string, string, RegExp][] = [
    ['DDL', 'CREATE TABLE t (a INT) WITH (\'connector\' = \'datagen\')', /CREATE statements are not allowed/],
    ['DROP', 'DROP TABLE orders', /DROP statements are not allowed/],
    ['SET', "SET 'table.dynamic-table-options.enabled' = 'true'", /SET statements are not allowed.*configuration/],
    ['RESET', 'RESET', /RESET statements are not allowed/],
    ['ADD JAR', "ADD JAR '/tmp/evil.jar'", /ADD statements are not allowed.*load code/],
    ['CREATE FUNCTION', "CREATE FUNCTION f AS 'com.evil.F'", /CREATE statements are not allowed/],
    ['USE CATALOG', 'USE CATALOG other', /USE statements are not allowed/],
    ['USE database', 'USE other_db', /USE statements are not allowed/],
    ['OPTIONS hint', "SELECT * FROM orders /*+ OPTIONS('topic' = 'weir.other.x') */", /Dynamic table options/],
    ['any hint', 'SELECT /*+ BROADCAST(orders) */ * FROM orders', /hints/],
    ['two statements', 'SELECT * FROM orders; SELECT * FROM customers', /Only one statement/],
    ['INSERT', 'INSERT INTO orders SELECT * FROM customers', /never writes/],
    ['EXPLAIN', 'EXPLAIN SELECT * FROM orders', /not allowed|Syntax/],
    ['another account\'s stream by name', 'SELECT * FROM payments', /Unknown stream "payments"/],
    ['another account\'s topic', 'SELECT * FROM `weir.0a1b2c3d.4e5f`', /Unknown stream/],
    ['qualified name', 'SELECT * FROM default_catalog.default_database.orders', /bare name/],
    ['other catalog', 'SELECT * FROM hive.db.orders', /bare name/],
    ['in a subquery', 'SELECT * FROM orders WHERE id IN (SELECT id FROM payments)', /Unknown stream "payments"/],
    ['in a join', 'SELECT * FROM orders o JOIN secret s ON o.id = s.id', /Unknown stream "secret"/],
    ['empty', '  ', /empty/],
  ];
  it.each(cases)('%s', (_name, sql, message) => {
    expect(rejection(sql).message).toMatch(message);
  });
});

describe('preview SQL accepted', () => {
  it('reads own streams, joins, CTEs and aggregates', () => {
    expect(analyzeSelectSql('SELECT id FROM orders WHERE amount > 5', OWN).inputs).toEqual(['orders']);
    expect(
      analyzeSelectSql('WITH o AS (SELECT * FROM orders) SELECT c.name, COUNT(*) FROM o JOIN customers c ON o.c = c.id GROUP BY c.name', OWN)
        .inputs,
    ).toEqual(['orders', 'customers']);
  });

  it("previews a pipeline's SELECT with positions kept", () => {
    const sql = 'INSERT INTO customers\nSELECT id,\n  amount FROM orders';
    const { query, inputs } = pipelineSelectSql(sql, OWN);
    expect(inputs).toEqual(['orders']);
    expect(query).toBe('                     \nSELECT id,\n  amount FROM orders');
    expect(query.split('\n').length).toBe(3);
  });
});
