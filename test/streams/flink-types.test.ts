import { describe, expect, it } from 'vitest';
import { FlinkTypeError, isCompatibleWidening, isValidIdentifier, parseFlinkType } from '../../src/streams/flink-types.js';

/** The error `text` is rejected with. */
function typeError(text: string): FlinkTypeError {
  let caught: unknown;
  try {
    parseFlinkType(text);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(FlinkTypeError);
  return caught as FlinkTypeError;
}

describe('parseFlinkType: canonical spelling', () => {
  it.each([
    ['BOOLEAN', 'BOOLEAN'],
    ['tinyint', 'TINYINT'],
    ['SmallInt', 'SMALLINT'],
    ['INT', 'INT'],
    ['integer', 'INT'],
    ['BIGINT', 'BIGINT'],
    ['FLOAT', 'FLOAT'],
    ['double', 'DOUBLE'],
    ['DOUBLE PRECISION', 'DOUBLE'],
    ['DATE', 'DATE'],
    ['STRING', 'STRING'],
    ['varchar(10)', 'VARCHAR(10)'],
    ['VARCHAR', 'VARCHAR(1)'],
    ['VARCHAR(2147483647)', 'STRING'],
    ['char(3)', 'CHAR(3)'],
    ['CHAR', 'CHAR(1)'],
    ['BYTES', 'BYTES'],
    ['binary(16)', 'BINARY(16)'],
    ['VARBINARY(8)', 'VARBINARY(8)'],
    ['VARBINARY(2147483647)', 'BYTES'],
    ['decimal(10,2)', 'DECIMAL(10, 2)'],
    ['DECIMAL( 38 , 0 )', 'DECIMAL(38, 0)'],
    ['DECIMAL', 'DECIMAL(10, 0)'],
    ['DECIMAL(5)', 'DECIMAL(5, 0)'],
    ['numeric(4, 4)', 'DECIMAL(4, 4)'],
    ['DEC(1, 0)', 'DECIMAL(1, 0)'],
    ['TIME', 'TIME(0)'],
    ['time(3) without time zone', 'TIME(3)'],
    ['TIMESTAMP', 'TIMESTAMP(6)'],
    ['timestamp(3)', 'TIMESTAMP(3)'],
    ['TIMESTAMP(0) WITHOUT TIME ZONE', 'TIMESTAMP(0)'],
    ['TIMESTAMP(3) WITH LOCAL TIME ZONE', 'TIMESTAMP_LTZ(3)'],
    ['timestamp with local time zone', 'TIMESTAMP_LTZ(6)'],
    ['TIMESTAMP_LTZ(9)', 'TIMESTAMP_LTZ(9)'],
    ['TIMESTAMP_LTZ', 'TIMESTAMP_LTZ(6)'],
  ])('spells %s as %s', (text, type) => {
    expect(parseFlinkType(text)).toEqual({ type, nullable: true });
  });

  it.each([
    ['array<int>', 'ARRAY<INT>'],
    ['INT ARRAY', 'ARRAY<INT>'],
    ['ARRAY<ARRAY<STRING>>', 'ARRAY<ARRAY<STRING>>'],
    ['multiset<varchar(3)>', 'MULTISET<VARCHAR(3)>'],
    ['STRING MULTISET', 'MULTISET<STRING>'],
    ['map<string,bigint>', 'MAP<STRING, BIGINT>'],
    ['MAP<STRING, MAP<INT, ARRAY<DOUBLE>>>', 'MAP<STRING, MAP<INT, ARRAY<DOUBLE>>>'],
    ['ROW<a INT, b STRING>', 'ROW<a INT, b STRING>'],
    ['row(a int, b string)', 'ROW<a INT, b STRING>'],
    ['ROW<Amount DECIMAL(10,2), tags ARRAY<STRING>>', 'ROW<Amount DECIMAL(10, 2), tags ARRAY<STRING>>'],
    ['ROW<`my field` INT, `a``b` INT, `plain` INT>', 'ROW<`my field` INT, `a``b` INT, plain INT>'],
    ['ROW<`value` INT, `date` DATE>', 'ROW<`value` INT, `date` DATE>'],
    ['ROW<inner ROW<x INT>>', 'ROW<inner ROW<x INT>>'],
  ])('spells %s as %s', (text, type) => {
    expect(parseFlinkType(text)).toEqual({ type, nullable: true });
  });

  it('reads NOT NULL at the top level into nullable', () => {
    expect(parseFlinkType('BIGINT NOT NULL')).toEqual({ type: 'BIGINT', nullable: false });
    expect(parseFlinkType('varchar(5) not null')).toEqual({ type: 'VARCHAR(5)', nullable: false });
    expect(parseFlinkType('ROW<a INT> NOT NULL')).toEqual({ type: 'ROW<a INT>', nullable: false });
    expect(parseFlinkType('INT NULL')).toEqual({ type: 'INT', nullable: true });
  });

  it('keeps NOT NULL inside nested types', () => {
    expect(parseFlinkType('ARRAY<INT NOT NULL>')).toEqual({ type: 'ARRAY<INT NOT NULL>', nullable: true });
    expect(parseFlinkType('MAP<STRING NOT NULL, BIGINT> NOT NULL')).toEqual({
      type: 'MAP<STRING NOT NULL, BIGINT>',
      nullable: false,
    });
    expect(parseFlinkType('ROW(id BIGINT NOT NULL, name STRING)').type).toBe('ROW<id BIGINT NOT NULL, name STRING>');
    expect(parseFlinkType('INT NOT NULL ARRAY')).toEqual({ type: 'ARRAY<INT NOT NULL>', nullable: true });
  });

  it('ignores surrounding and repeated whitespace', () => {
    expect(parseFlinkType('  decimal (\t12 ,\n3 )   not   null ')).toEqual({ type: 'DECIMAL(12, 3)', nullable: false });
  });

  it('spells its own output the same way again', () => {
    const texts = ['ROW<`value` INT, `a b` ARRAY<STRING NOT NULL>>', 'MAP<STRING, DECIMAL(38, 18)>', 'TIMESTAMP_LTZ(3)'];
    for (const text of texts) {
      const once = parseFlinkType(text).type;
      expect(parseFlinkType(once).type).toBe(once);
    }
  });
});

describe('parseFlinkType: rejections', () => {
  it.each([
    ['DECIMAL(0, 0)', 'DECIMAL precision must be from 1 to 38, got 0', 9],
    ['DECIMAL(39, 2)', 'DECIMAL precision must be from 1 to 38, got 39', 9],
    ['DECIMAL(10, 11)', 'DECIMAL scale must be from 0 to the precision 10, got 11', 13],
    ['TIMESTAMP(10)', 'TIMESTAMP precision must be from 0 to 9, got 10', 11],
    ['TIMESTAMP(12) WITH LOCAL TIME ZONE', 'TIMESTAMP_LTZ precision must be from 0 to 9, got 12', 11],
    ['TIMESTAMP_LTZ(10)', 'TIMESTAMP_LTZ precision must be from 0 to 9, got 10', 15],
    ['TIME(10)', 'TIME precision must be from 0 to 9, got 10', 6],
    ['VARCHAR(0)', 'VARCHAR length must be from 1 to 2147483647, got 0', 9],
    ['CHAR(0)', 'CHAR length must be from 1 to 2147483647, got 0', 6],
    ['BINARY(0)', 'BINARY length must be from 1 to 2147483647, got 0', 8],
    ['VARCHAR(2147483648)', 'VARCHAR length must be from 1 to 2147483647, got 2147483648', 9],
    ['VARCHAR(99999999999999999999)', 'VARCHAR length must be from 1 to 2147483647, got a larger number', 9],
  ])('rejects the out-of-range %s', (text, problem, column) => {
    const error = typeError(text);
    expect(error).toMatchObject({ problem, column, name: 'FlinkTypeError' });
    expect(error.message).toBe(`${problem} (at column ${column})`);
  });

  it.each([
    ['', 'the type is empty', 1],
    ['   ', 'the type is empty', 1],
    ['VARCHAR2(10)', 'unknown type "VARCHAR2"', 1],
    ['ARRAY<FOO>', 'unknown type "FOO"', 7],
    ['ARRAY<INT', 'expected ">", got the end of the type', 10],
    ['ARRAY INT', 'expected "<", got "INT"', 7],
    ['MAP<STRING>', 'expected ",", got ">"', 11],
    ['INT INT', 'unexpected "INT" after the type', 5],
    ['DECIMAL(10, 2, 1)', 'expected ")", got ","', 14],
    ['DECIMAL(a)', 'expected a number for the DECIMAL precision, got "a"', 9],
    ['VARCHAR(-1)', 'unexpected character "-"', 9],
    ['INT NOT', 'expected NULL, got the end of the type', 8],
    ['ROW<>', 'a ROW needs at least one field', 5],
    ['ROW<a INT, a STRING>', 'duplicate ROW field "a"', 12],
    ['ROW<a INT,>', 'expected a field name, got ">"', 11],
    ['ROW<`` INT>', 'expected a field name, got ""', 5],
    ['ROW<`a INT>', 'unterminated `quoted name`', 5],
    ["ROW<a INT 'the a'>", 'field descriptions in quotes are not supported', 11],
    ['ROW(a INT>', 'expected ")", got ">"', 10],
    ['TIMESTAMP WITH TIME ZONE', 'TIMESTAMP WITH TIME ZONE is not supported by Flink; use TIMESTAMP_LTZ', 16],
    ['INTERVAL DAY', 'INTERVAL types are not supported for stream fields', 1],
    ["RAW('java.lang.Object', 'x')", 'RAW types are not supported for stream fields', 1],
    ['<INT>', 'expected a type name, got "<"', 1],
    ["'INT'", "expected a type name, got the string 'INT'", 1],
    ["ROW<a INT 'the a>", "unterminated 'string'", 11],
  ])('rejects %j', (text, problem, column) => {
    expect(typeError(text)).toMatchObject({ problem, column });
  });

  it('refuses absurd nesting instead of overflowing the stack', () => {
    const deep = `${'ARRAY<'.repeat(40)}INT${'>'.repeat(40)}`;
    expect(typeError(deep).problem).toBe('types nest deeper than 32 levels');
    const fine = `${'ARRAY<'.repeat(31)}INT${'>'.repeat(31)}`;
    expect(parseFlinkType(fine).type).toBe(fine);
  });
});

describe('isCompatibleWidening', () => {
  it.each([
    ['INT', 'INT'],
    ['ROW<a INT>', 'row(a integer)'],
    ['TINYINT', 'SMALLINT'],
    ['TINYINT', 'BIGINT'],
    ['SMALLINT', 'INT'],
    ['INT', 'BIGINT'],
    ['FLOAT', 'DOUBLE'],
    ['VARCHAR(10)', 'VARCHAR(10)'],
    ['VARCHAR(10)', 'VARCHAR(20)'],
    ['VARCHAR(10)', 'STRING'],
    ['CHAR(5)', 'STRING'],
    ['DECIMAL(10, 2)', 'DECIMAL(12, 2)'],
    ['DECIMAL(10, 2)', 'DECIMAL(10, 2)'],
    ['TIMESTAMP(3) WITH LOCAL TIME ZONE', 'TIMESTAMP_LTZ(3)'],
    ['INT NOT NULL', 'BIGINT'],
  ])('allows %s -> %s', (from, to) => {
    expect(isCompatibleWidening(from, to)).toBe(true);
  });

  it.each([
    ['BIGINT', 'INT'],
    ['INT', 'SMALLINT'],
    ['DOUBLE', 'FLOAT'],
    ['INT', 'DOUBLE'],
    ['INT', 'DECIMAL(10, 0)'],
    ['INT', 'STRING'],
    ['STRING', 'VARCHAR(10)'],
    ['VARCHAR(20)', 'VARCHAR(10)'],
    ['CHAR(5)', 'CHAR(6)'],
    ['CHAR(5)', 'VARCHAR(10)'],
    ['BINARY(4)', 'BYTES'],
    ['DECIMAL(10, 2)', 'DECIMAL(9, 2)'],
    ['DECIMAL(10, 2)', 'DECIMAL(12, 3)'],
    ['TIMESTAMP(3)', 'TIMESTAMP(6)'],
    ['TIMESTAMP(3)', 'TIMESTAMP_LTZ(3)'],
    ['ARRAY<INT>', 'ARRAY<BIGINT>'],
    ['ROW<a INT>', 'ROW<a INT, b INT>'],
    ['ARRAY<INT NOT NULL>', 'ARRAY<INT>'],
    ['BOOLEAN', 'TINYINT'],
    ['not a type', 'INT'],
    ['INT', 'not a type'],
  ])('refuses %s -> %s', (from, to) => {
    expect(isCompatibleWidening(from, to)).toBe(false);
  });
});

describe('isValidIdentifier', () => {
  it.each(['a', 'orders', '_private', 'Orders_2024', 'x'.repeat(128)])('accepts %s', (name) => {
    expect(isValidIdentifier(name)).toBe(true);
  });

  it.each(['', '1orders', 'my-stream', 'my stream', 'a.b', '`a`', 'naïve', 'x'.repeat(129), 'a\n'])(
    'rejects %j',
    (name) => {
      expect(isValidIdentifier(name)).toBe(false);
    },
  );
});
