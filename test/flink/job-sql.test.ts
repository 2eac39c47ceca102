import { describe, expect, it } from 'vitest';
import { jobStatements, EXTERNAL_TABLE, previewStreamTable } from '../../src/flink/job-sql.js';
import { parseRunnerEvents } from '../../src/runtime/local/runner-events.js';
import type { JobSpec, StreamBinding } from '../../src/jobs/job-spec.js';

const orders: StreamBinding = {
  id: 's1',
  name: 'orders',
  kind: 'APPEND',
  fields: [
    { name: 'id', type: 'BIGINT', nullable: false },
    { name: 'amount', type: 'DECIMAL(10, 2)', nullable: true },
  ],
  primaryKey: [],
};
const big: StreamBinding = { ...orders, id: 's2', name: 'big_orders' };
const users: StreamBinding = {
  id: 's3',
  name: 'users',
  kind: 'CHANGE',
  fields: [
    { name: 'id', type: 'BIGINT', nullable: false },
    { name: 'name', type: 'STRING', nullable: true },
  ],
  primaryKey: ['id'],
};
const access = {
  bootstrapServers: '127.0.0.1:9092',
  clientProperties: { 'security.protocol': 'SASL_PLAINTEXT', 'sasl.mechanism': 'SCRAM-SHA-512', 'sasl.jaas.config': 'J' },
};
const kafka = { access, topicFor: (s: StreamBinding) => `weir.a.${s.id}`, groupId: 'weir-j1' };
const principal =
  "'properties.bootstrap.servers' = '127.0.0.1:9092', 'properties.security.protocol' = 'SASL_PLAINTEXT', " +
  "'properties.sasl.mechanism' = 'SCRAM-SHA-512', 'properties.sasl.jaas.config' = 'J'";
const base = { kind: 'PIPELINE' as const, id: 'j1', accountId: 'a', name: 'p', specVersion: 1, taskSize: 'S' as const, taskCount: 1, deliveryGuarantee: 'EXACTLY_ONCE' as const, checkpointIntervalMs: null, state: { generation: 1, startPositions: {} } };

describe('job SQL', () => {
  it('registers a pipeline’s streams as Kafka tables on their own topics, then runs its INSERT', () => {
    const spec: JobSpec = {
      ...base,
      program: { type: 'PIPELINE', sql: 'INSERT INTO big_orders SELECT * FROM orders WHERE amount > 100', inputs: [orders], output: big },
    };
    const [input, output, insert] = jobStatements(spec, kafka);
    expect(input).toBe(
      "CREATE TEMPORARY TABLE `orders` (`id` BIGINT NOT NULL, `amount` DECIMAL(10, 2)) WITH ('connector' = 'kafka', 'topic' = 'weir.a.s1', " +
        `${principal}, 'format' = 'json', 'json.timestamp-format.standard' = 'SQL', ` +
        "'json.encode.decimal-as-plain-number' = 'true', 'properties.group.id' = 'weir-j1', " +
        "'properties.isolation.level' = 'read_committed', 'scan.startup.mode' = 'earliest-offset')",
    );
    expect(output).toContain("'topic' = 'weir.a.s2'");
    expect(output).toContain(principal);
    // Exactly-once by default: transactions with the job's own id prefix, within the broker's timeout limit.
    expect(output).toContain(
      "'sink.delivery-guarantee' = 'exactly-once', 'sink.transactional-id-prefix' = 'weir-j1', 'properties.transaction.timeout.ms' = '900000'",
    );
    expect(insert).toBe('INSERT INTO big_orders SELECT * FROM orders WHERE amount > 100');
  });

  it('reads each input from its start position: an offset resolved at activation, a timestamp, else the earliest', () => {
    const copy = { ...orders, id: 's4', name: 'copy' };
    const spec: JobSpec = {
      ...base,
      state: { generation: 2, startPositions: { s1: { from: 'OFFSET', offset: '1234' }, s4: { from: 'TIMESTAMP', timestampMs: 1_700_000_000_000 } } },
      program: { type: 'PIPELINE', sql: 'INSERT INTO big_orders SELECT * FROM orders UNION ALL SELECT * FROM copy', inputs: [orders, copy, users], output: big },
    };
    const [fromOffset, fromTimestamp, change, output] = jobStatements(spec, kafka);
    expect(fromOffset).toContain("'scan.startup.mode' = 'specific-offsets', 'scan.startup.specific-offsets' = 'partition:0,offset:1234'");
    expect(fromTimestamp).toContain("'scan.startup.mode' = 'timestamp', 'scan.startup.timestamp-millis' = '1700000000000'");
    // A CHANGE stream is its whole log (upsert-kafka reads it from the start); the output is written, not read.
    expect(change).not.toContain('scan.startup');
    expect(output).not.toContain('scan.startup');
  });

  it('uses upsert-kafka with the primary key for CHANGE streams', () => {
    const spec: JobSpec = { ...base, program: { type: 'PIPELINE', sql: 'INSERT INTO users SELECT * FROM orders', inputs: [orders], output: users } };
    const statements = jobStatements(spec, kafka);
    expect(statements[1]).toContain('PRIMARY KEY (`id`) NOT ENFORCED');
    expect(statements[1]).toContain("'connector' = 'upsert-kafka'");
    expect(statements[1]).toContain("'key.format' = 'json'");
    expect(statements[1]).toContain(principal);
    // Reading a CHANGE stream, the job stays in its own consumer group.
    const asInput = jobStatements({ ...spec, program: { ...spec.program, inputs: [users], output: orders } } as JobSpec, kafka)[0];
    expect(asInput).toContain("'properties.group.id' = 'weir-j1'");
    expect(asInput).toContain("'properties.isolation.level' = 'read_committed'");
    // upsert-kafka writes in transactions too.
    expect(statements[1]).toContain("'sink.delivery-guarantee' = 'exactly-once', 'sink.transactional-id-prefix' = 'weir-j1'");
  });

  it('writes at once, with no transactions, for an AT_LEAST_ONCE job; it still reads committed records only', () => {
    const spec: JobSpec = {
      ...base,
      deliveryGuarantee: 'AT_LEAST_ONCE',
      program: { type: 'PIPELINE', sql: 'INSERT INTO big_orders SELECT * FROM orders', inputs: [orders], output: big },
    };
    const [input, output] = jobStatements(spec, kafka);
    expect(output).toContain("'sink.delivery-guarantee' = 'at-least-once'");
    expect(output).not.toContain('transactional-id-prefix');
    expect(output).not.toContain('transaction.timeout');
    expect(input).toContain("'properties.isolation.level' = 'read_committed'");
  });

  it('previews read committed records only', () => {
    const table = previewStreamTable(orders, { access, groupId: 'weir-preview-a', topic: 'weir.a.s1', from: 'EARLIEST' });
    expect(table).toContain("'properties.isolation.level' = 'read_committed'");
    const change = previewStreamTable(users, { access, groupId: 'weir-preview-a', topic: 'weir.a.s3', from: 'EARLIEST' });
    expect(change).toContain("'properties.isolation.level' = 'read_committed'");
  });

  it('feeds a stream from a datagen source, quoting option values', () => {
    const spec: JobSpec = {
      ...base,
      kind: 'CONNECTION',
      program: {
        type: 'CONNECTION',
        connector: 'datagen',
        connectionType: 'SOURCE',
        properties: { 'rows-per-second': 5, 'fields.id.kind': 'sequence', 'fields.id.start': 1, 'fields.id.end': 100 },
        secretProperties: {},
        stream: orders,
      },
    };
    const [source, sink, insert] = jobStatements(spec, kafka);
    expect(source).toBe(
      `CREATE TEMPORARY TABLE \`${EXTERNAL_TABLE}\` (\`id\` BIGINT NOT NULL, \`amount\` DECIMAL(10, 2)) WITH ('connector' = 'datagen', ` +
        "'rows-per-second' = '5', 'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '100')",
    );
    expect(sink).toContain("'topic' = 'weir.a.s1'");
    expect(insert).toBe(`INSERT INTO \`orders\` SELECT \`id\`, \`amount\` FROM \`${EXTERNAL_TABLE}\``);
  });

  it('drains a stream into an external Kafka topic, secrets included and quotes escaped', () => {
    const spec: JobSpec = {
      ...base,
      kind: 'CONNECTION',
      program: {
        type: 'CONNECTION',
        connector: 'kafka',
        connectionType: 'SINK',
        properties: { topic: "ext'ernal", 'properties.bootstrap.servers': 'h:9092' },
        secretProperties: { 'properties.sasl.jaas.config': 'x' },
        stream: orders,
      },
    };
    const [source, sink, insert] = jobStatements(spec, kafka);
    expect(source).toContain("'topic' = 'weir.a.s1'");
    expect(sink).toContain("'topic' = 'ext''ernal'");
    expect(sink).toContain("'format' = 'json'");
    expect(sink).toContain("'properties.sasl.jaas.config' = 'x'");
    // The external side never gets the job's own principal.
    expect(sink).not.toContain("'J'");
    expect(insert).toBe(`INSERT INTO \`${EXTERNAL_TABLE}\` SELECT \`id\`, \`amount\` FROM \`orders\``);
  });

  it('declares the stream’s primary key on the external table of keyed connectors only (CDC, JDBC)', () => {
    const keyedStream = { ...orders, kind: 'CHANGE' as const, primaryKey: ['id'] };
    const program = {
      type: 'CONNECTION' as const,
      connector: 'jdbc',
      connectionType: 'SINK' as const,
      properties: { url: 'jdbc:postgresql://db:5432/shop', 'table-name': 'public.orders' },
      secretProperties: { password: 'pw' },
      stream: keyedStream,
    };
    const keyed = jobStatements({ ...base, kind: 'CONNECTION', program: { ...program, keyed: true } }, kafka)[1]!;
    expect(keyed).toContain('(`id` BIGINT NOT NULL, `amount` DECIMAL(10, 2), PRIMARY KEY (`id`) NOT ENFORCED)');
    expect(keyed).toContain("'password' = 'pw'");
    // Flink's Kafka connector refuses a key on its table.
    const unkeyed = jobStatements({ ...base, kind: 'CONNECTION', program: { ...program, connector: 'kafka' } }, kafka)[1]!;
    expect(unkeyed).not.toContain('PRIMARY KEY');
  });
});

describe('runner events', () => {
  it('reads the REST port and how the runner ended', () => {
    expect(parseRunnerEvents('')).toEqual({});
    expect(parseRunnerEvents('WEIR_JOB_SUBMITTED {"jobId":"ab","restPort":8081}\n')).toEqual({ restPort: 8081 });
    expect(
      parseRunnerEvents(
        'WEIR_SPEC_INVALID {"error":"statement 3 of 3: SQL validation failed. Column \'nme\' not found","rootCause":"x"}\n',
      ),
    ).toEqual({ final: { event: 'SPEC_INVALID', message: "statement 3 of 3: SQL validation failed. Column 'nme' not found" } });
    expect(parseRunnerEvents('WEIR_JOB_SUBMITTED {"restPort":1}\nWEIR_JOB_FINISHED {"jobId":"ab"}\nWEIR_JOB_FAI')).toEqual({
      restPort: 1,
      final: { event: 'JOB_FINISHED', message: null },
    });
    // A failed job says what failed underneath Flink's own "Job execution failed.".
    const denied = 'org.apache.kafka.common.errors.TopicAuthorizationException: Not authorized to access topics: [t]';
    expect(parseRunnerEvents(`WEIR_JOB_FAILED {"error":"Job execution failed.","rootCause":"${denied}"}\n`).final).toEqual({
      event: 'JOB_FAILED',
      message: `Job execution failed. Root cause: ${denied}`,
    });
    expect(parseRunnerEvents('WEIR_JOB_FAILED {"error":"boom","rootCause":"java.lang.RuntimeException: boom"}\n').final?.message).toBe('boom');
  });
});
