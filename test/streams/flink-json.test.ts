import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/platform/logger.js';
import { flinkDistribution, type FlinkDistribution } from '../../src/runtime/local/flink-distribution.js';
import { validateRecords } from '../../src/streams/record-validation.js';

/**
 * What validateRecords writes, read by Flink 1.20's own `json` format deserializers (the
 * JsonParser-based default and the JsonNode-based one) with
 * 'json.timestamp-format.standard' = 'SQL', as the Kafka tables over streams read it.
 * Each case: the field type, the value a client sends, and the value Flink must see
 * (rendered by DecodeFlinkJson.java: times with nanoseconds, LTZ in UTC with Z).
 */
const CASES: [type: string, sent: unknown, flinkSees: string][] = [
  ['BOOLEAN', true, 'true'],
  ['TINYINT', -128, '-128'],
  ['SMALLINT', 32767, '32767'],
  ['INT', -2147483648, '-2147483648'],
  ['BIGINT', 42, '42'],
  ['BIGINT', '9223372036854775807', '9223372036854775807'],
  ['BIGINT', '-9223372036854775808', '-9223372036854775808'],
  ['FLOAT', 1.5, '1.5'],
  ['DOUBLE', 0.1, '0.1'],
  ['DOUBLE', 'NaN', 'NaN'],
  ['DOUBLE', '-Infinity', '-Infinity'],
  ['DECIMAL(10, 2)', 12.5, '12.50'],
  ['DECIMAL(10, 2)', '-99999999.99', '-99999999.99'],
  ['DECIMAL(38, 10)', '1234567890123456789012345678.0123456789', '1234567890123456789012345678.0123456789'],
  ['DECIMAL(5, 0)', '1.5e3', '1500'],
  ['STRING', 'héllo "q" \\ 😀', `'héllo "q" \\ 😀'`],
  ['VARCHAR(3)', 'a😀b', "'a😀b'"],
  ['CHAR(2)', 'ab', "'ab'"],
  ['BYTES', 'AQID', 'bytes:AQID'],
  ['VARBINARY(2)', '-_8', 'bytes:+/8='],
  ['DATE', '2024-02-29', '2024-02-29'],
  ['DATE', '0001-01-01', '0001-01-01'],
  ['TIME(0)', '23:59', '23:59:00.000000000'],
  ['TIME(3)', '23:59:59.000', '23:59:59.000000000'],
  ['TIMESTAMP(3)', '2024-05-01T12:30:00.123', '2024-05-01 12:30:00.123000000'],
  ['TIMESTAMP(0)', '2024-05-01 12:30', '2024-05-01 12:30:00.000000000'],
  ['TIMESTAMP(6)', '2024-05-01 12:30:00.123456', '2024-05-01 12:30:00.123456000'],
  ['TIMESTAMP(9)', '2024-05-01 12:30:00.123456789', '2024-05-01 12:30:00.123456789'],
  ['TIMESTAMP_LTZ(3)', '2024-05-01T01:30:00.5+02:00', '2024-04-30 23:30:00.500000000Z'],
  ['TIMESTAMP_LTZ(3)', 1714566600123, '2024-05-01 12:30:00.123000000Z'],
  ['TIMESTAMP_LTZ(3)', -1, '1969-12-31 23:59:59.999000000Z'],
  ['TIMESTAMP_LTZ(9)', '2024-05-01T12:30:00.123456789Z', '2024-05-01 12:30:00.123456789Z'],
  ['ARRAY<INT>', [1, null, 3], '[1, null, 3]'],
  ['ARRAY<ARRAY<STRING>>', [['a'], []], "[['a'], []]"],
  ['MAP<STRING, BIGINT>', { a: 1, b: '9223372036854775807' }, "{'a'=1, 'b'=9223372036854775807}"],
  ['MULTISET<STRING>', ['x', 'y', 'x'], "{'x'=2, 'y'=1}"],
  ['ROW<a INT, b DECIMAL(5, 1) NOT NULL>', { b: '1.5' }, '(null, 1.5)'],
  ['ARRAY<ROW<items MAP<STRING, ARRAY<DECIMAL(4, 2)>>>>', [{ items: { x: ['1.5', 2] } }], "[({'x'=[1.50, 2.00]})]"],
];

let distribution: FlinkDistribution;

beforeAll(async () => {
  distribution = await flinkDistribution({ logger: createLogger('silent') })();
}, 600_000);

/** Lines `<ROW type>\t<json>` through DecodeFlinkJson.java; one output line each. */
async function decode(lines: string[]): Promise<string[]> {
  const source = fileURLToPath(new URL('./DecodeFlinkJson.java', import.meta.url));
  const child = spawn('java', ['-Xmx256m', `-Dlog4j2.configurationFile=${distribution.log4jConfig}`, '-Dweir.log.level=WARN', source], {
    env: { ...process.env, CLASSPATH: distribution.flinkClasspath },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin.end(`${lines.join('\n')}\n`);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) throw new Error(`DecodeFlinkJson exited ${code}:\n${stderr}`);
  return stdout.trimEnd().split('\n');
}

describe("records as Flink's json format reads them", { timeout: 120_000 }, () => {
  it('every type reads back as the value sent', async () => {
    const lines = CASES.map(([type, sent]) => `ROW<v ${type}>\t${validateRecords([{ name: 'v', type, nullable: true }], [{ v: sent }])[0]}`);
    const seen = await decode(lines);
    const table = CASES.map(([type, sent, expected], i) => ({ type, sent, expected: `(${expected})`, seen: seen[i] }));
    expect(table.filter((row) => row.seen !== row.expected)).toEqual([]);
  });

  it('a whole record, with missing nullable fields as null, under Flink NOT NULL columns', async () => {
    const fields = [
      { name: 'order_id', type: 'BIGINT', nullable: false },
      { name: 'customer', type: 'STRING', nullable: true },
      { name: 'amount', type: 'DECIMAL(10, 2)', nullable: true },
      { name: 'at', type: 'TIMESTAMP(3)', nullable: true },
    ];
    const [text] = validateRecords(fields, [{ amount: 7, order_id: '12' }]);
    expect(await decode([`ROW<order_id BIGINT NOT NULL, customer STRING, amount DECIMAL(10, 2), at TIMESTAMP(3)>\t${text}`])).toEqual([
      '(12, null, 7.00, null)',
    ]);
  });
});
