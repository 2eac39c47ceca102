import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/platform/errors.js';
import { MAX_BYTES_PER_CALL, MAX_RECORDS_PER_CALL, validateRecords } from '../../src/streams/record-validation.js';
import type { StreamField } from '../../src/streams/stream.table.js';
import { parseStoredJson } from '../../src/streams/stored-json.js';

const field = (name: string, type: string, nullable = true): StreamField => ({ name, type, nullable });

/** The JSON text one value of `type` is written as. */
function written(type: string, value: unknown): string {
  const [text] = validateRecords([field('v', type)], [{ v: value }]);
  return text!.slice('{"v":'.length, -1);
}

/** The problem one value of `type` is rejected with. */
function rejected(type: string, value: unknown, nullable = true): ValidationError {
  let caught: unknown;
  try {
    validateRecords([field('v', type, nullable)], [{ v: value }]);
  } catch (error) {
    caught = error;
  }
  expect(caught, `${type} should reject ${JSON.stringify(value)}`).toBeInstanceOf(ValidationError);
  return caught as ValidationError;
}

const message = (type: string, value: unknown, nullable = true) => rejected(type, value, nullable).problems[0]!.message;

const orders = [field('order_id', 'BIGINT', false), field('customer', 'STRING'), field('amount', 'DECIMAL(10, 2)')];

describe('validateRecords: records', () => {
  it('writes every field in schema order, missing nullable fields as null', () => {
    expect(validateRecords(orders, [{ amount: '12.5', order_id: 1 }, { order_id: 2, customer: 'Ann', amount: null }])).toEqual([
      '{"order_id":1,"customer":null,"amount":12.50}',
      '{"order_id":2,"customer":"Ann","amount":null}',
    ]);
  });

  it('accepts an empty batch', () => {
    expect(validateRecords(orders, [])).toEqual([]);
  });

  it('names the index and field of the first bad record, and only that one', () => {
    const records = [
      { order_id: 1, amount: '1.00' },
      { order_id: 2, amount: 2 },
      { order_id: 3, amount: 3.5 },
      { order_id: 4, amount: 1.234 },
      { order_id: 'five', amount: 'x' },
    ];
    const error = (() => {
      try {
        validateRecords(orders, records);
      } catch (caught) {
        return caught as ValidationError;
      }
      throw new Error('expected a ValidationError');
    })();
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.code).toBe('VALIDATION');
    expect(error.problems).toEqual([
      { path: ['records', 3, 'amount'], message: 'record 3, field amount: DECIMAL(10, 2) allows 2 decimals, got 1.234' },
    ]);
    expect(error.details).toMatchObject({ field: ['records', 3, 'amount'] });
  });

  it('uses the path it is given', () => {
    const error = rejectedWith(() => validateRecords(orders, [{ order_id: null }], ['input', 'rows']));
    expect(error.problems[0]!.path).toEqual(['input', 'rows', 0, 'order_id']);
  });

  it('rejects records that are not JSON objects', () => {
    for (const record of [null, 1, 'x', [1, 2], true]) {
      const error = rejectedWith(() => validateRecords(orders, [{ order_id: 1 }, record]));
      expect(error.problems[0]!.path).toEqual(['records', 1]);
      expect(error.problems[0]!.message).toMatch(/^record 1: a record must be a JSON object/);
    }
  });

  it('rejects unknown fields, naming the known ones', () => {
    const error = rejectedWith(() => validateRecords(orders, [{ order_id: 1, amout: '1.00' }]));
    expect(error.problems[0]).toEqual({
      path: ['records', 0, 'amout'],
      message: 'record 0, field amout: not a field here (the fields are: order_id, customer, amount)',
    });
  });

  it('matches field names exactly (Flink reads JSON keys case-sensitively)', () => {
    expect(rejectedWith(() => validateRecords(orders, [{ ORDER_ID: 1 }])).problems[0]!.path).toEqual(['records', 0, 'ORDER_ID']);
  });

  it('rejects a missing or null NOT NULL field', () => {
    expect(rejectedWith(() => validateRecords(orders, [{ customer: 'x' }])).problems[0]).toEqual({
      path: ['records', 0, 'order_id'],
      message: 'record 0, field order_id: missing, and BIGINT NOT NULL needs a value',
    });
    expect(rejectedWith(() => validateRecords(orders, [{ order_id: null }])).problems[0]!.message).toBe(
      'record 0, field order_id: BIGINT NOT NULL cannot be null',
    );
  });

  it(`accepts at most ${MAX_RECORDS_PER_CALL} records`, () => {
    const many = Array.from({ length: MAX_RECORDS_PER_CALL }, (_, i) => ({ order_id: i }));
    expect(validateRecords(orders, many)).toHaveLength(MAX_RECORDS_PER_CALL);
    const error = rejectedWith(() => validateRecords(orders, [...many, { order_id: 0 }]));
    expect(error.problems[0]).toEqual({ path: ['records'], message: `at most ${MAX_RECORDS_PER_CALL} records per call, got ${MAX_RECORDS_PER_CALL + 1}` });
  });

  it('accepts at most 1 MiB of JSON per call, naming the record that goes past it', () => {
    const big = 'x'.repeat(300 * 1024);
    const error = rejectedWith(() => validateRecords(orders, [1, 2, 3, 4].map((i) => ({ order_id: i, customer: big }))));
    expect(error.problems[0]!.path).toEqual(['records', 3]);
    expect(error.problems[0]!.message).toContain(`at most ${MAX_BYTES_PER_CALL} bytes`);
  });

  it('writes text that parses back to the same values', () => {
    const fields = [field('id', 'BIGINT'), field('tags', 'ARRAY<STRING>'), field('at', 'TIMESTAMP(3)')];
    const [text] = validateRecords(fields, [{ id: '9223372036854775807', tags: ['a', 'b"c'], at: '2024-05-01T12:30:00.1' }]);
    expect(parseStoredJson(text!)).toEqual({ id: '9223372036854775807', tags: ['a', 'b"c'], at: '2024-05-01 12:30:00.100' });
  });
});

describe('validateRecords: scalar types', () => {
  it('BOOLEAN', () => {
    expect(written('BOOLEAN', true)).toBe('true');
    expect(written('BOOLEAN', false)).toBe('false');
    expect(message('BOOLEAN', 'true')).toBe('record 0, field v: BOOLEAN needs true or false, got the string "true"');
    expect(message('BOOLEAN', 1)).toMatch(/BOOLEAN needs true or false, got 1$/);
  });

  it.each([
    ['TINYINT', -128, 127],
    ['SMALLINT', -32768, 32767],
    ['INT', -2147483648, 2147483647],
  ])('%s within its range', (type, min, max) => {
    expect(written(type, min)).toBe(String(min));
    expect(written(type, max)).toBe(String(max));
    expect(message(type, max + 1)).toBe(`record 0, field v: ${type} needs an integer from ${min} to ${max}, got ${max + 1}`);
    expect(message(type, min - 1)).toMatch(/needs an integer/);
    expect(message(type, 1.5)).toMatch(/needs an integer/);
    expect(message(type, '1')).toMatch(/needs an integer/);
  });

  it('BIGINT: safe numbers, or strings of digits within 64 bits', () => {
    expect(written('BIGINT', 42)).toBe('42');
    expect(written('BIGINT', -9007199254740991)).toBe('-9007199254740991');
    expect(written('BIGINT', '9223372036854775807')).toBe('9223372036854775807');
    expect(written('BIGINT', '-9223372036854775808')).toBe('-9223372036854775808');
    expect(written('BIGINT', '007')).toBe('7');
    expect(message('BIGINT', '9223372036854775808')).toMatch(/within 64 bits/);
    expect(message('BIGINT', 2 ** 60)).toMatch(/must be sent as strings \(JSON numbers lose precision\)/);
    expect(message('BIGINT', 1.5)).toMatch(/BIGINT needs an integer/);
    expect(message('BIGINT', '1.0')).toMatch(/BIGINT needs an integer/);
    expect(message('BIGINT', '')).toMatch(/BIGINT needs an integer/);
  });

  it('FLOAT and DOUBLE: finite numbers, and the three special values as strings', () => {
    expect(written('DOUBLE', 1.5)).toBe('1.5');
    expect(written('DOUBLE', 1e300)).toBe('1e+300');
    expect(written('DOUBLE', 'NaN')).toBe('"NaN"');
    expect(written('FLOAT', '-Infinity')).toBe('"-Infinity"');
    expect(written('FLOAT', 3.4e38)).toBe('3.4e+38');
    expect(message('FLOAT', 1e39)).toMatch(/FLOAT holds at most/);
    expect(message('DOUBLE', '1.5')).toMatch(/DOUBLE needs a number/);
  });

  it('DECIMAL(p, s): numbers and strings, never rounded', () => {
    expect(written('DECIMAL(10, 2)', 12.5)).toBe('12.50');
    expect(written('DECIMAL(10, 2)', '12.5')).toBe('12.50');
    expect(written('DECIMAL(10, 2)', '-0.01')).toBe('-0.01');
    expect(written('DECIMAL(10, 2)', '-0.00')).toBe('0.00');
    expect(written('DECIMAL(10, 2)', '1.230')).toBe('1.23');
    expect(written('DECIMAL(10, 2)', '99999999.99')).toBe('99999999.99');
    expect(written('DECIMAL(10, 2)', '1.5e3')).toBe('1500.00');
    expect(written('DECIMAL(10, 0)', 7)).toBe('7');
    expect(written('DECIMAL(3, 3)', '.125')).toBe('0.125');
    expect(written('DECIMAL(38, 2)', '123456789012345678901234567890123456.78')).toBe('123456789012345678901234567890123456.78');
    expect(message('DECIMAL(10, 2)', '1.234')).toBe('record 0, field v: DECIMAL(10, 2) allows 2 decimals, got "1.234"');
    expect(message('DECIMAL(10, 1)', 0.25)).toBe('record 0, field v: DECIMAL(10, 1) allows 1 decimal, got 0.25');
    expect(message('DECIMAL(10, 2)', '123456789')).toBe(
      'record 0, field v: DECIMAL(10, 2) allows 8 digits before the decimal point, got "123456789"',
    );
    expect(message('DECIMAL(10, 2)', 0.1 + 0.2)).toMatch(/allows 2 decimals, got 0.30000000000000004/);
    expect(message('DECIMAL(38, 2)', 1234567890123456.5)).toMatch(/more than 15 significant digits lose precision in JSON; send the value as a string/);
    expect(message('DECIMAL(10, 2)', 'abc')).toMatch(/DECIMAL\(10, 2\) needs a decimal number/);
    expect(message('DECIMAL(10, 2)', true)).toMatch(/needs a number or a decimal string/);
  });

  it('CHAR, VARCHAR and STRING: strings within the length, in characters', () => {
    expect(written('STRING', 'héllo "q"')).toBe('"héllo \\"q\\""');
    expect(written('VARCHAR(3)', 'a😀b')).toBe('"a😀b"');
    expect(written('CHAR(2)', 'ab')).toBe('"ab"');
    expect(message('VARCHAR(3)', 'abcd')).toBe('record 0, field v: VARCHAR(3) allows at most 3 characters, got 4');
    expect(message('STRING', 5)).toBe('record 0, field v: STRING needs a string, got 5');
  });

  it('BINARY, VARBINARY and BYTES: base64 within the length', () => {
    expect(written('BYTES', 'AQID')).toBe('"AQID"');
    expect(written('BYTES', '-_8')).toBe('"+/8="');
    expect(written('VARBINARY(3)', 'AQID')).toBe('"AQID"');
    expect(message('VARBINARY(2)', 'AQID')).toBe('record 0, field v: VARBINARY(2) allows at most 2 bytes, got 3');
    expect(message('BYTES', 'not base64!')).toMatch(/BYTES needs base64 text/);
    expect(message('BYTES', 'A')).toMatch(/BYTES needs base64 text/);
  });

  it('DATE', () => {
    expect(written('DATE', '2024-02-29')).toBe('"2024-02-29"');
    expect(message('DATE', '2023-02-29')).toBe(`record 0, field v: DATE needs 'YYYY-MM-DD', got the string "2023-02-29"`);
    expect(message('DATE', '2024-1-5')).toMatch(/DATE needs/);
    expect(message('DATE', 20240105)).toMatch(/DATE needs/);
  });

  it('TIME(p): whole seconds, as Flink 1.20 reads TIME', () => {
    expect(written('TIME(0)', '12:30:05')).toBe('"12:30:05"');
    expect(written('TIME(0)', '12:30')).toBe('"12:30:00"');
    expect(written('TIME(3)', '23:59:59.000')).toBe('"23:59:59"');
    expect(message('TIME(3)', '12:30:05.5')).toBe(
      `record 0, field v: TIME(3): Flink's json format reads TIME to the whole second, so fractions are refused, got "12:30:05.5"`,
    );
    expect(message('TIME(0)', '24:00:00')).toMatch(/TIME\(0\) needs 'HH:MM:SS'/);
  });

  it('TIMESTAMP(p): SQL form written, ISO "T" accepted, no zone', () => {
    expect(written('TIMESTAMP(3)', '2024-05-01 12:30:00')).toBe('"2024-05-01 12:30:00.000"');
    expect(written('TIMESTAMP(3)', '2024-05-01T12:30:00.123')).toBe('"2024-05-01 12:30:00.123"');
    expect(written('TIMESTAMP(3)', '2024-05-01T12:30')).toBe('"2024-05-01 12:30:00.000"');
    expect(written('TIMESTAMP(6)', '2024-05-01 12:30:00.123456')).toBe('"2024-05-01 12:30:00.123456"');
    expect(written('TIMESTAMP(0)', '0001-01-01 00:00:00')).toBe('"0001-01-01 00:00:00"');
    expect(message('TIMESTAMP(3)', '2024-05-01 12:30:00.1234')).toBe(
      'record 0, field v: TIMESTAMP(3) allows 3 fractional second digits, got "2024-05-01 12:30:00.1234"',
    );
    expect(message('TIMESTAMP(3)', '2024-05-01T12:30:00Z')).toMatch(/TIMESTAMP\(3\) has no time zone; drop "Z" \(or make the field TIMESTAMP_LTZ\)/);
    expect(message('TIMESTAMP(3)', '2024-13-01 00:00:00')).toMatch(/TIMESTAMP\(3\) needs 'YYYY-MM-DD HH:MM:SS'/);
    expect(message('TIMESTAMP(3)', 1714566600000)).toMatch(/TIMESTAMP\(3\) needs/);
  });

  it('TIMESTAMP_LTZ(p): instants with a zone or epoch milliseconds, written in UTC', () => {
    expect(written('TIMESTAMP_LTZ(3)', '2024-05-01T12:30:00.123Z')).toBe('"2024-05-01 12:30:00.123Z"');
    expect(written('TIMESTAMP_LTZ(3)', '2024-05-01T01:30:00+02:00')).toBe('"2024-04-30 23:30:00.000Z"');
    expect(written('TIMESTAMP_LTZ(3)', '2024-05-01 12:30:00-0130')).toBe('"2024-05-01 14:00:00.000Z"');
    expect(written('TIMESTAMP_LTZ(3)', 1714566600123)).toBe('"2024-05-01 12:30:00.123Z"');
    expect(written('TIMESTAMP_LTZ(3)', -1)).toBe('"1969-12-31 23:59:59.999Z"');
    expect(written('TIMESTAMP_LTZ(9)', '2024-05-01T12:30:00.123456789Z')).toBe('"2024-05-01 12:30:00.123456789Z"');
    expect(written('TIMESTAMP_LTZ(0)', 1714566600000)).toBe('"2024-05-01 12:30:00Z"');
    expect(message('TIMESTAMP_LTZ(0)', 1714566600001)).toBe(
      'record 0, field v: TIMESTAMP_LTZ(0) allows 0 fractional second digits, got 1714566600001',
    );
    expect(message('TIMESTAMP_LTZ(3)', '2024-05-01 12:30:00')).toMatch(/has no zone/);
    expect(message('TIMESTAMP_LTZ(3)', 1.5)).toMatch(/epoch milliseconds, got 1.5/);
  });
});

describe('validateRecords: nested types', () => {
  it('ARRAY, with the element index in the message', () => {
    expect(written('ARRAY<INT>', [1, 2, null])).toBe('[1,2,null]');
    expect(message('ARRAY<INT NOT NULL>', [1, null])).toBe('record 0, field v[1]: INT NOT NULL cannot be null');
    expect(message('ARRAY<INT>', [1, 'x'])).toMatch(/^record 0, field v\[1\]: INT needs an integer/);
    expect(message('ARRAY<INT>', { 0: 1 })).toBe('record 0, field v: an ARRAY needs a JSON array, got an object');
  });

  it('ROW, checked like a record', () => {
    const type = 'ROW<a INT, b DECIMAL(5, 1) NOT NULL>';
    expect(written(type, { b: '1.5' })).toBe('{"a":null,"b":1.5}');
    expect(message(type, { a: 1 })).toBe('record 0, field v.b: missing, and DECIMAL(5, 1) NOT NULL needs a value');
    expect(message(type, { b: 1, c: 2 })).toBe('record 0, field v.c: not a field here (the fields are: a, b)');
    expect(message(type, [1, 2])).toBe('record 0, field v: a ROW needs a JSON object, got an array');
  });

  it('MAP with character keys', () => {
    expect(written('MAP<STRING, BIGINT>', { a: 1, b: '2' })).toBe('{"a":1,"b":2}');
    expect(message('MAP<VARCHAR(2), INT>', { abc: 1 })).toBe('record 0, field v["abc"]: VARCHAR(2) allows at most 2 characters, got 3');
    expect(message('MAP<STRING, INT>', { a: 'x' })).toMatch(/^record 0, field v\["a"\]: INT needs an integer/);
    expect(message('MAP<INT, STRING>', { 1: 'x' })).toBe(
      "record 0, field v: Flink's json format cannot carry a MAP keyed by INT: keys must be a character type",
    );
  });

  it('MULTISET as an array of elements or an object of counts', () => {
    expect(written('MULTISET<STRING>', ['a', 'b', 'a'])).toBe('{"a":2,"b":1}');
    expect(written('MULTISET<STRING>', { a: 3 })).toBe('{"a":3}');
    expect(message('MULTISET<STRING>', { a: 0 })).toMatch(/a MULTISET count must be a positive INT/);
  });

  it('deeply nested paths', () => {
    const type = 'ARRAY<ROW<items MAP<STRING, ARRAY<DECIMAL(4, 2)>>>>';
    expect(written(type, [{ items: { x: ['1.5'] } }])).toBe('[{"items":{"x":[1.50]}}]');
    expect(message(type, [{ items: { x: ['1.5', '1.555'] } }])).toBe(
      'record 0, field v[0].items["x"][1]: DECIMAL(4, 2) allows 2 decimals, got "1.555"',
    );
  });
});

describe('parseStoredJson', () => {
  it('parses like JSON.parse but keeps numbers a double would round as strings', () => {
    expect(parseStoredJson('{"a":1,"b":[true,null,"x\\"y"],"c":{"d":-1.5e3}}')).toEqual({ a: 1, b: [true, null, 'x"y'], c: { d: -1500 } });
    expect(parseStoredJson('{"big":9007199254740993,"ok":9007199254740991,"dec":12345678901234567.89,"short":12.50}')).toEqual({
      big: '9007199254740993',
      ok: 9007199254740991,
      dec: '12345678901234567.89',
      short: 12.5,
    });
    expect(parseStoredJson(' [ ] ')).toEqual([]);
    expect(Object.keys(parseStoredJson('{"__proto__":1}') as object)).toEqual(['__proto__']);
    expect(() => parseStoredJson('{"a":1')).toThrow(SyntaxError);
    expect(() => parseStoredJson('{"a":01}')).toThrow(SyntaxError);
  });
});

function rejectedWith(work: () => unknown): ValidationError {
  try {
    work();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error('expected a ValidationError');
}
