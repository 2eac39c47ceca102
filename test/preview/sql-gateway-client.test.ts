import { describe, expect, it } from 'vitest';
import { FlinkRestError } from '../../src/preview/flink-json.js';
import { asStatementError, FetchBackoff, FlinkStatementError, typeName } from '../../src/preview/sql-gateway-client.js';

describe('FetchBackoff', () => {
  it('polls fast (at most 50 ms apart) until the first row, then backs off to 250 ms', () => {
    const backoff = new FetchBackoff();
    const beforeFirstRow = Array.from({ length: 8 }, () => backoff.next(0));
    expect(beforeFirstRow).toEqual([10, 20, 40, 50, 50, 50, 50, 50]);
    expect(backoff.next(3)).toBe(0);
    const afterRows = Array.from({ length: 8 }, () => backoff.next(0));
    expect(afterRows).toEqual([10, 20, 40, 80, 160, 250, 250, 250]);
    expect(backoff.next(1)).toBe(0);
    expect(backoff.next(0)).toBe(10);
  });
});

describe('SQL Gateway answers', () => {
  it('names Flink logical types as SQL', () => {
    expect(typeName({ type: 'DECIMAL', precision: 12, scale: 2, nullable: false })).toBe('DECIMAL(12, 2) NOT NULL');
    expect(typeName({ type: 'VARCHAR', length: 2147483647 })).toBe('STRING');
    expect(typeName({ type: 'ROW', fields: [{ name: 'a', fieldType: { type: 'BIGINT' } }] })).toBe('ROW<`a` BIGINT>');
    expect(typeName({ type: 'TIMESTAMP_WITH_LOCAL_TIME_ZONE', precision: 3 })).toBe('TIMESTAMP_LTZ(3)');
  });

  it("keeps the one line of Flink's exception chain that says what and where", () => {
    const error = asStatementError(
      new FlinkRestError(400, 'http://gateway/v2/sessions/s/operations/o/result/0', [
        'org.apache.flink.table.gateway.api.utils.SqlGatewayException: Failed to fetchResults.\n' +
          '\tat org.apache.flink.Foo.bar(Foo.java:1)\n' +
          'Caused by: org.apache.flink.table.api.ValidationException: SQL validation failed. From line 1, column 8 to line 1, column 10: Column \'idd\' not found in any table\n' +
          '\tat org.apache.flink.Baz.qux(Baz.java:2)',
      ]),
    );
    expect(error).toBeInstanceOf(FlinkStatementError);
    expect((error as FlinkStatementError).message).toBe("SQL validation failed. From line 1, column 8 to line 1, column 10: Column 'idd' not found in any table");
    expect([(error as FlinkStatementError).line, (error as FlinkStatementError).column]).toEqual([1, 8]);
  });
});
