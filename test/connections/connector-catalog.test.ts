import { describe, expect, it } from 'vitest';
import type { ConnectionType } from '../../src/connections/connection.table.js';
import {
  flinkOptionsOf,
  CONNECTORS,
  findConnector,
  isSecretOption,
  validateConnectionProperties,
  type ValidateConnectionPropertiesInput,
} from '../../src/connections/connector-catalog.js';
import { ValidationError, type ValidationProblem } from '../../src/platform/errors.js';

const FIELDS = ['id', 'name', 'amount', 'user.email'];
const KAFKA = { topic: 'orders', 'properties.bootstrap.servers': 'kafka:9092' };
/** Field names every connector takes (the JDBC sink writes them unquoted). */
const PLAIN_FIELDS = ['id', 'name', 'amount'];
const CONNECTION_ID = '0b7e5c2a-3f1d-4c8e-9a6b-5d4c3b2a1f0e';

type Overrides = Partial<ValidateConnectionPropertiesInput> & Pick<ValidateConnectionPropertiesInput, 'properties'>;

/** A kafka SOURCE over FIELDS at path ['input'], unless overridden. */
function validate(overrides: Overrides) {
  return validateConnectionProperties({
    connector: 'kafka',
    type: 'SOURCE',
    streamFields: FIELDS,
    taskSize: 'S',
    path: ['input'],
    ...overrides,
  });
}

/** Runs a validation that must fail and returns its problems. */
function problemsOf(run: () => unknown): readonly ValidationProblem[] {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).code).toBe('VALIDATION');
    return (error as ValidationError).problems;
  }
  throw new Error('expected a ValidationError');
}

/** The single problem of a failed validation. */
function problemOf(run: () => unknown): ValidationProblem {
  const problems = problemsOf(run);
  expect(problems).toHaveLength(1);
  return problems[0]!;
}

describe('the catalog', () => {
  it('offers datagen and postgres-cdc for sources, kafka for sources and sinks, jdbc for sinks', () => {
    expect(CONNECTORS.map((c) => [c.name, c.types])).toEqual([
      ['datagen', ['SOURCE']],
      ['kafka', ['SOURCE', 'SINK']],
      ['postgres-cdc', ['SOURCE']],
      ['jdbc', ['SINK']],
    ]);
    expect(findConnector('kafka')?.name).toBe('kafka');
    expect(findConnector('Kafka')).toBeUndefined();
    expect(findConnector('toString')).toBeUndefined();
  });

  it('declares coherent options', () => {
    for (const connector of CONNECTORS) {
      const keys = connector.options.map((o) => o.key);
      expect(new Set(keys).size, connector.name).toBe(keys.length);
      for (const option of connector.options) {
        expect(option.description, option.key).not.toBe('');
        expect(option.type === 'ENUM', option.key).toBe((option.enumValues?.length ?? 0) > 0);
        expect(option.perField === true, option.key).toBe(option.key.includes('#'));
        for (const condition of [option.onlyWhen, option.requiredWhen]) {
          if (condition) expect(keys, `${option.key} condition`).toContain(condition.key);
        }
      }
    }
  });

  it('declares defaults that pass its own validation', () => {
    for (const connector of CONNECTORS) {
      for (const option of connector.options) {
        if (option.default === undefined || option.onlyWhen || option.perField) continue;
        const type: ConnectionType = option.appliesTo?.[0] ?? connector.types[0]!;
        const example = (key: string) => (KAFKA as Record<string, string>)[key] ?? 'x';
        const required = Object.fromEntries(connector.options.filter((o) => o.required).map((o) => [o.key, example(o.key)]));
        const result = validate({
          connector: connector.name,
          type,
          streamFields: PLAIN_FIELDS,
          properties: { ...required, [option.key]: option.default },
        });
        expect(result.properties[option.key], `${connector.name} ${option.key}`).toBe(option.default);
      }
    }
  });

  it('knows which options are secret', () => {
    expect(isSecretOption('kafka', 'sasl.password')).toBe(true);
    expect(isSecretOption('kafka', 'sasl.username')).toBe(false);
    // Weir writes the JAAS line itself: it names a class, so it is not a user's to set.
    expect(isSecretOption('kafka', 'properties.sasl.jaas.config')).toBe(false);
    expect(isSecretOption('kafka', 'properties.ssl.truststore.password')).toBe(true);
    expect(isSecretOption('kafka', 'properties.ssl.keystore.password')).toBe(true);
    expect(isSecretOption('kafka', 'topic')).toBe(false);
    expect(isSecretOption('kafka', 'no.such.option')).toBe(false);
    expect(isSecretOption('datagen', 'fields.id.kind')).toBe(false);
    expect(isSecretOption('nope', 'sasl.password')).toBe(false);
  });
});

describe('validateConnectionProperties accepts', () => {
  it('a minimal kafka source, without filling in defaults', () => {
    expect(validate({ properties: KAFKA })).toEqual({ properties: KAFKA, secretProperties: {} });
  });

  it('a datagen source with per-field options, including a dotted field name', () => {
    const properties = {
      'rows-per-second': 5,
      'number-of-rows': 100,
      'fields.id.kind': 'sequence',
      'fields.id.start': 1,
      'fields.id.end': 100,
      'fields.amount.min': 0.5,
      'fields.amount.max': 99.5,
      'fields.name.length': 8,
      'fields.user.email.null-rate': 0.1,
    };
    expect(validate({ connector: 'datagen', properties })).toEqual({ properties, secretProperties: {} });
  });

  it('numbers and booleans sent as strings, coerced to their types', () => {
    const result = validate({
      connector: 'datagen',
      properties: { 'rows-per-second': '5', 'number-of-rows': ' 1e3 ', 'fields.amount.null-rate': '0.25' },
    });
    expect(result.properties).toEqual({
      'rows-per-second': 5,
      'number-of-rows': 1000,
      'fields.amount.null-rate': 0.25,
    });

    const kafka = validate({ properties: { ...KAFKA, 'json.ignore-parse-errors': 'TRUE' } });
    expect(kafka.properties['json.ignore-parse-errors']).toBe(true);
    expect(validate({ properties: { ...KAFKA, 'json.ignore-parse-errors': false } }).properties).toMatchObject({
      'json.ignore-parse-errors': false,
    });
  });

  it('secrets apart from the other properties', () => {
    const result = validate({
      type: 'SINK',
      properties: {
        ...KAFKA,
        'sink.transactional-id-prefix': 'weir-orders',
        'properties.security.protocol': 'SASL_SSL',
        'properties.sasl.mechanism': 'SCRAM-SHA-512',
        'sasl.username': 'orders-writer',
        'sasl.password': 'p"w\\d',
        'properties.ssl.truststore.password': 'changeit',
      },
    });
    expect(result.secretProperties).toEqual({
      'sasl.password': 'p"w\\d',
      'properties.ssl.truststore.password': 'changeit',
    });
    expect(Object.keys(result.properties).sort()).toEqual([
      'properties.bootstrap.servers',
      'properties.sasl.mechanism',
      'properties.security.protocol',
      'sasl.username',
      'sink.transactional-id-prefix',
      'topic',
    ]);
  });

  it('a startup timestamp when the startup mode is timestamp', () => {
    const result = validate({
      properties: { ...KAFKA, 'scan.startup.mode': 'timestamp', 'scan.startup.timestamp-millis': '1700000000000' },
    });
    expect(result.properties['scan.startup.timestamp-millis']).toBe(1_700_000_000_000);
  });
});

describe('validateConnectionProperties rejects', () => {
  it('an unknown connector, naming the known ones', () => {
    const problem = problemOf(() => validate({ connector: 'kinesis', properties: {} }));
    expect(problem.path).toEqual(['input', 'connector']);
    expect(problem.message).toContain('"kinesis"');
    expect(problem.message).toContain('datagen, kafka');
  });

  it('a type the connector does not support', () => {
    const problem = problemOf(() => validate({ connector: 'datagen', type: 'SINK', properties: {} }));
    expect(problem.path).toEqual(['input', 'type']);
    expect(problem.message).toBe('datagen supports only SOURCE connections, not SINK');
  });

  it('properties that are not an object', () => {
    const problem = problemOf(() => validate({ properties: null as unknown as Record<string, unknown> }));
    expect(problem.path).toEqual(['input', 'properties']);
  });

  it('an unknown option, suggesting the closest known key', () => {
    const typo = problemOf(() => validate({ connector: 'datagen', properties: { 'rows-per-secnd': 5 } }));
    expect(typo.path).toEqual(['input', 'properties', 'rows-per-secnd']);
    expect(typo.message).toBe('unknown datagen option "rows-per-secnd"; did you mean "rows-per-second"?');

    // The intended option is then also missing: both are reported.
    const [tail, missing] = problemsOf(() => validate({ properties: { topic: 't', 'bootstrap.servers': 'k:9092' } }));
    expect(missing!.path).toEqual(['input', 'properties', 'properties.bootstrap.servers']);
    expect(tail!.path).toEqual(['input', 'properties', 'bootstrap.servers']);
    expect(tail!.message).toContain('did you mean "properties.bootstrap.servers"?');

    const suffix = problemOf(() => validate({ connector: 'datagen', properties: { 'fields.id.kidn': 'random' } }));
    expect(suffix.message).toContain('did you mean "fields.id.kind"?');

    const far = problemOf(() => validate({ properties: { ...KAFKA, 'something.else.entirely': 1 } }));
    expect(far.path).toEqual(['input', 'properties', 'something.else.entirely']);
    expect(far.message).toBe('unknown kafka option "something.else.entirely"');
  });

  it('a value of the wrong type', () => {
    const long = problemOf(() => validate({ connector: 'datagen', properties: { 'rows-per-second': 'abc' } }));
    expect(long.path).toEqual(['input', 'properties', 'rows-per-second']);
    expect(long.message).toBe('expected LONG, got "abc"');

    const string = problemOf(() => validate({ properties: { ...KAFKA, topic: 42 } }));
    expect(string.path).toEqual(['input', 'properties', 'topic']);
    expect(string.message).toBe('expected STRING, got 42');

    const bool = problemOf(() => validate({ properties: { ...KAFKA, 'json.ignore-parse-errors': 'yes' } }));
    expect(bool.path).toEqual(['input', 'properties', 'json.ignore-parse-errors']);
    expect(bool.message).toContain('expected BOOLEAN');

    const notNumber = problemOf(() => validate({ connector: 'datagen', properties: { 'number-of-rows': true } }));
    expect(notNumber.message).toBe('expected LONG, got true');
  });

  it('an empty string', () => {
    const problem = problemOf(() => validate({ properties: { ...KAFKA, topic: '  ' } }));
    expect(problem.path).toEqual(['input', 'properties', 'topic']);
  });

  it('a fraction where a whole number is expected', () => {
    const number = problemOf(() => validate({ connector: 'datagen', properties: { 'rows-per-second': 1.5 } }));
    expect(number.path).toEqual(['input', 'properties', 'rows-per-second']);
    expect(number.message).toBe('expected a whole number (LONG), got 1.5');

    const text = problemOf(() => validate({ connector: 'datagen', properties: { 'fields.name.length': '2.5' } }));
    expect(text.path).toEqual(['input', 'properties', 'fields.name.length']);
    expect(text.message).toBe('expected a whole number (INT), got "2.5"');
  });

  it('a number out of range', () => {
    const high = problemOf(() => validate({ connector: 'datagen', properties: { 'rows-per-second': 100_001 } }));
    expect(high.path).toEqual(['input', 'properties', 'rows-per-second']);
    expect(high.message).toBe('out of range: must be between 1 and 100000, got 100001');

    const low = problemOf(() => validate({ connector: 'datagen', properties: { 'number-of-rows': 0 } }));
    expect(low.message).toBe('out of range: must be at least 1, got 0');

    const rate = problemOf(() => validate({ connector: 'datagen', properties: { 'fields.id.null-rate': 1.5 } }));
    expect(rate.path).toEqual(['input', 'properties', 'fields.id.null-rate']);

    const unsafe = problemOf(() =>
      validate({ connector: 'datagen', properties: { 'number-of-rows': '9007199254740993' } }),
    );
    expect(unsafe.message).toBe('out of range: must be at most 9007199254740991, got "9007199254740993"');

    const int = problemOf(() => validate({ connector: 'datagen', properties: { 'fields.name.length': 2 ** 31 } }));
    expect(int.message).toBe('out of range: must be at most 2147483647, got 2147483648');
  });

  it('a value outside an enum, listing the allowed ones', () => {
    const problem = problemOf(() => validate({ properties: { ...KAFKA, 'scan.startup.mode': 'beginning' } }));
    expect(problem.path).toEqual(['input', 'properties', 'scan.startup.mode']);
    expect(problem.message).toBe(
      'must be one of earliest-offset, latest-offset, group-offsets, timestamp, got "beginning"',
    );
    const cased = problemOf(() => validate({ properties: { ...KAFKA, format: 'JSON' } }));
    expect(cased.message).toContain('did you mean "json"?');
  });

  it('an option that does not apply to the connection type', () => {
    const sink = problemOf(() =>
      validate({ type: 'SINK', properties: { ...KAFKA, 'scan.startup.mode': 'latest-offset' } }),
    );
    expect(sink.path).toEqual(['input', 'properties', 'scan.startup.mode']);
    expect(sink.message).toBe('applies only to SOURCE connections, not SINK');

    const source = problemOf(() => validate({ properties: { ...KAFKA, 'sink.transactional-id-prefix': 'mine' } }));
    expect(source.path).toEqual(['input', 'properties', 'sink.transactional-id-prefix']);
    expect(source.message).toBe('applies only to SINK connections, not SOURCE');
  });

  it('a per-field option naming a field the stream does not have', () => {
    const near = problemOf(() => validate({ connector: 'datagen', properties: { 'fields.nme.kind': 'random' } }));
    expect(near.path).toEqual(['input', 'properties', 'fields.nme.kind']);
    expect(near.message).toBe('the stream has no field "nme"; did you mean "name"?');

    const far = problemOf(() => validate({ connector: 'datagen', properties: { 'fields.zzzzzz.min': 1 } }));
    expect(far.message).toBe('the stream has no field "zzzzzz"; its fields are "id", "name", "amount", "user.email"');
  });

  it('null, object and array values', () => {
    const problems = problemsOf(() =>
      validate({ properties: { ...KAFKA, format: null, 'properties.group.id': { a: 1 }, 'scan.startup.mode': ['x'] } }),
    );
    expect(problems.map((p) => p.path)).toEqual([
      ['input', 'properties', 'format'],
      ['input', 'properties', 'properties.group.id'],
      ['input', 'properties', 'scan.startup.mode'],
    ]);
  });

  it('keys longer than 256 characters and values longer than 16 KiB', () => {
    const longKey = 'k'.repeat(257);
    const key = problemOf(() => validate({ properties: { ...KAFKA, [longKey]: 'v' } }));
    expect(key.path).toEqual(['input', 'properties', longKey]);
    expect(key.message).toBe('option keys are at most 256 characters');

    const value = problemOf(() => validate({ properties: { ...KAFKA, topic: 't'.repeat(16 * 1024 + 1) } }));
    expect(value.path).toEqual(['input', 'properties', 'topic']);
    expect(value.message).toBe('values are at most 16 KiB');

    // Bytes, not characters: 6,000 three-byte characters are over 16 KiB.
    const wide = problemOf(() => validate({ properties: { ...KAFKA, topic: '€'.repeat(6000) } }));
    expect(wide.path).toEqual(['input', 'properties', 'topic']);
    expect(() => validate({ properties: { ...KAFKA, 'sasl.username': 't'.repeat(16 * 1024) } })).not.toThrow();
  });

  it('with the input path as given, or from the properties when there is none', () => {
    const problem = problemOf(() =>
      validateConnectionProperties({
        connector: 'kafka',
        type: 'SOURCE',
        properties: { topic: 't' },
        streamFields: [],
        taskSize: 'S',
      }),
    );
    expect(problem.path).toEqual(['properties', 'properties.bootstrap.servers']);
  });

  it('without echoing a secret value', () => {
    const problem = problemOf(() =>
      validate({
        properties: {
          ...KAFKA,
          'properties.security.protocol': 'SASL_SSL',
          'properties.sasl.mechanism': 'PLAIN',
          'sasl.username': 'u',
          'sasl.password': 987654,
        },
      }),
    );
    expect(problem.path).toEqual(['input', 'properties', 'sasl.password']);
    expect(problem.message).toBe('expected STRING, got a number');
  });
});

describe('kafka connections', () => {
  it('name one topic: lists and patterns are refused', () => {
    for (const topic of ['a;b', 'a,b', 'weir.*', 'a b', '..', 'x'.repeat(250)]) {
      const problem = problemOf(() => validate({ properties: { ...KAFKA, topic } }));
      expect(problem.path, topic).toEqual(['input', 'properties', 'topic']);
      expect(problem.message).toMatch(/must be one topic name/);
    }
    expect(validate({ properties: { ...KAFKA, topic: 'Orders_v2.eu-1' } }).properties.topic).toBe('Orders_v2.eu-1');
  });

  it('name servers as host:port', () => {
    for (const servers of ['kafka', 'kafka:9092;other:9092', 'http://kafka:9092', 'kafka:9092,']) {
      const problem = problemOf(() => validate({ properties: { ...KAFKA, 'properties.bootstrap.servers': servers } }));
      expect(problem.path, servers).toEqual(['input', 'properties', 'properties.bootstrap.servers']);
    }
    const ok = validate({ properties: { ...KAFKA, 'properties.bootstrap.servers': 'a.example.com:9092, 10.0.0.1:9093,[::1]:9094' } });
    expect(ok.properties['properties.bootstrap.servers']).toBe('a.example.com:9092, 10.0.0.1:9093,[::1]:9094');
  });

  it('take a mechanism from a fixed list and no line breaks in the credentials', () => {
    const sasl = { ...KAFKA, 'properties.security.protocol': 'SASL_SSL', 'sasl.username': 'u', 'sasl.password': 'p' };
    const mechanism = problemOf(() => validate({ properties: { ...sasl, 'properties.sasl.mechanism': 'GSSAPI' } }));
    expect(mechanism.path).toEqual(['input', 'properties', 'properties.sasl.mechanism']);
    const injected = problemsOf(() =>
      validate({ properties: { ...sasl, 'properties.sasl.mechanism': 'PLAIN', 'sasl.username': 'u"\nuser_admin="x', 'sasl.password': 'p\r' } }),
    );
    expect(injected.map((p) => p.path.at(-1))).toEqual(['sasl.username', 'sasl.password']);
    expect(injected[1]!.message).not.toContain('p\r');
    // The free-form JAAS line of older versions is not an option any more.
    const jaas = problemOf(() => validate({ properties: { ...KAFKA, 'properties.sasl.jaas.config': 'com.sun.security.auth.module.JndiLoginModule required;' } }));
    expect(jaas.path).toEqual(['input', 'properties', 'properties.sasl.jaas.config']);
  });

  it('become Flink options with a JAAS line Weir writes and the documented start position', () => {
    const source = flinkOptionsOf('kafka', {
      connectionId: CONNECTION_ID,
      type: 'SOURCE',
      deliveryGuarantee: 'EXACTLY_ONCE',
      properties: { ...KAFKA, 'properties.security.protocol': 'SASL_SSL', 'properties.sasl.mechanism': 'SCRAM-SHA-256', 'sasl.username': 'reader' },
      secretProperties: { 'sasl.password': 'p"w\\d', 'properties.ssl.truststore.password': 'changeit' },
    });
    expect(source.properties).toEqual({
      'scan.startup.mode': 'earliest-offset',
      'properties.isolation.level': 'read_committed',
      ...KAFKA,
      'properties.security.protocol': 'SASL_SSL',
      'properties.sasl.mechanism': 'SCRAM-SHA-256',
    });
    expect(source.secretProperties).toEqual({
      'properties.ssl.truststore.password': 'changeit',
      'properties.sasl.jaas.config': 'org.apache.kafka.common.security.scram.ScramLoginModule required username="reader" password="p\\"w\\\\d";',
    });
    // A given start position stays; sinks get none; a JAAS line stored by an older version is dropped.
    const latest = flinkOptionsOf('kafka', {
      connectionId: CONNECTION_ID,
      type: 'SOURCE',
      deliveryGuarantee: 'EXACTLY_ONCE',
      properties: { ...KAFKA, 'scan.startup.mode': 'latest-offset', 'properties.isolation.level': 'read_uncommitted' },
      secretProperties: {},
    });
    expect(latest.properties['scan.startup.mode']).toBe('latest-offset');
    expect(latest.properties['properties.isolation.level']).toBe('read_uncommitted');
    // A sink writes in transactions of its own prefix (or the one given), or at once.
    const sink = flinkOptionsOf('kafka', {
      connectionId: CONNECTION_ID,
      type: 'SINK',
      deliveryGuarantee: 'EXACTLY_ONCE',
      properties: KAFKA,
      secretProperties: { 'properties.sasl.jaas.config': 'old' },
    });
    expect(sink).toEqual({
      properties: {
        'sink.delivery-guarantee': 'exactly-once',
        'sink.transactional-id-prefix': `weir-${CONNECTION_ID}`,
        'properties.transaction.timeout.ms': '900000',
        ...KAFKA,
      },
      secretProperties: {},
    });
    const named = flinkOptionsOf('kafka', {
      connectionId: CONNECTION_ID,
      type: 'SINK',
      deliveryGuarantee: 'EXACTLY_ONCE',
      properties: { ...KAFKA, 'sink.transactional-id-prefix': 'orders-out' },
      secretProperties: {},
    });
    expect(named.properties['sink.transactional-id-prefix']).toBe('orders-out');
    const atLeastOnce = flinkOptionsOf('kafka', { connectionId: CONNECTION_ID, type: 'SINK', deliveryGuarantee: 'AT_LEAST_ONCE', properties: KAFKA, secretProperties: {} });
    expect(atLeastOnce.properties).toEqual({ 'sink.delivery-guarantee': 'at-least-once', ...KAFKA });
    // Connectors without a translation pass through.
    const gen = { connectionId: CONNECTION_ID, type: 'SOURCE' as const, deliveryGuarantee: 'EXACTLY_ONCE' as const, properties: { 'rows-per-second': 5 }, secretProperties: {} };
    expect(flinkOptionsOf('datagen', gen)).toEqual({ properties: gen.properties, secretProperties: {} });
  });
});

describe('required options', () => {
  for (const connector of CONNECTORS) {
    for (const type of connector.types) {
      it(`are enforced for ${connector.name} ${type}`, () => {
        const required = connector.options.filter(
          (o) => o.required && (!o.appliesTo || o.appliesTo.includes(type)),
        );
        const all = Object.fromEntries(required.map((o) => [o.key, (KAFKA as Record<string, string>)[o.key] ?? 'x']));
        expect(() => validate({ connector: connector.name, type, streamFields: PLAIN_FIELDS, properties: all })).not.toThrow();
        if (required.length === 0) return;
        const problems = problemsOf(() => validate({ connector: connector.name, type, streamFields: PLAIN_FIELDS, properties: {} }));
        expect(problems).toEqual(
          required.map((o) => ({ path: ['input', 'properties', o.key], message: `is required by ${connector.name}` })),
        );
      });
    }
  }

  it('kafka requires topic and bootstrap servers', () => {
    const problems = problemsOf(() => validate({ type: 'SINK', properties: {} }));
    expect(problems.map((p) => p.path)).toEqual([
      ['input', 'properties', 'topic'],
      ['input', 'properties', 'properties.bootstrap.servers'],
    ]);
  });

  it('are not reported missing when given with a bad value', () => {
    const problems = problemsOf(() => validate({ properties: { topic: 7 } }));
    expect(problems.map((p) => p.path)).toEqual([
      ['input', 'properties', 'topic'],
      ['input', 'properties', 'properties.bootstrap.servers'],
    ]);
  });
});

describe('options that depend on other options', () => {
  it('require a startup timestamp for timestamp mode, and refuse it otherwise', () => {
    const missing = problemOf(() => validate({ properties: { ...KAFKA, 'scan.startup.mode': 'timestamp' } }));
    expect(missing).toEqual({
      path: ['input', 'properties', 'scan.startup.timestamp-millis'],
      message: 'is required when scan.startup.mode is timestamp',
    });
    const stray = problemOf(() => validate({ properties: { ...KAFKA, 'scan.startup.timestamp-millis': 5 } }));
    expect(stray).toEqual({
      path: ['input', 'properties', 'scan.startup.timestamp-millis'],
      message: 'applies only when scan.startup.mode is timestamp (it is earliest-offset by default)',
    });
  });

  it('leave the delivery guarantee to the connection, not to a property', () => {
    const problem = problemOf(() => validate({ type: 'SINK', properties: { ...KAFKA, 'sink.delivery-guarantee': 'exactly-once' } }));
    expect(problem.path).toEqual(['input', 'properties', 'sink.delivery-guarantee']);
  });

  it('require a mechanism, user name and password for SASL, but tolerate unused security settings', () => {
    const missing = problemsOf(() =>
      validate({ properties: { ...KAFKA, 'properties.security.protocol': 'SASL_PLAINTEXT' } }),
    );
    expect(missing).toEqual(
      ['properties.sasl.mechanism', 'sasl.username', 'sasl.password'].map((key) => ({
        path: ['input', 'properties', key],
        message: 'is required when properties.security.protocol is SASL_PLAINTEXT or SASL_SSL',
      })),
    );

    // Kafka ignores them under PLAINTEXT, and stored secrets come back on every update.
    const unused = validate({
      properties: { ...KAFKA, 'properties.sasl.mechanism': 'PLAIN', 'properties.ssl.keystore.password': 's3cret' },
    });
    expect(unused.secretProperties).toEqual({ 'properties.ssl.keystore.password': 's3cret' });
  });

  it('refuse JSON options for another format', () => {
    const problem = problemOf(() =>
      validate({ properties: { ...KAFKA, format: 'csv', 'json.ignore-parse-errors': true } }),
    );
    expect(problem).toEqual({
      path: ['input', 'properties', 'json.ignore-parse-errors'],
      message: 'applies only when format is json (it is csv)',
    });
  });

  it('require start and end for a datagen sequence, and keep random and sequence options apart', () => {
    const problems = problemsOf(() =>
      validate({
        connector: 'datagen',
        properties: { 'fields.id.kind': 'sequence', 'fields.id.min': 1, 'fields.name.start': 1 },
      }),
    );
    expect(problems).toEqual([
      {
        path: ['input', 'properties', 'fields.id.min'],
        message: 'applies only when fields.id.kind is random (it is sequence)',
      },
      {
        path: ['input', 'properties', 'fields.name.start'],
        message: 'applies only when fields.name.kind is sequence (it is random by default)',
      },
      { path: ['input', 'properties', 'fields.id.start'], message: 'is required when fields.id.kind is sequence' },
      { path: ['input', 'properties', 'fields.id.end'], message: 'is required when fields.id.kind is sequence' },
    ]);
  });

  it('refuse inverted datagen ranges', () => {
    const problems = problemsOf(() =>
      validate({
        connector: 'datagen',
        properties: {
          'fields.amount.min': 10,
          'fields.amount.max': 5,
          'fields.id.kind': 'sequence',
          'fields.id.start': 9,
          'fields.id.end': 3,
        },
      }),
    );
    expect(problems.map((p) => p.path)).toEqual([
      ['input', 'properties', 'fields.amount.max'],
      ['input', 'properties', 'fields.id.end'],
    ]);
    expect(problems[0]!.message).toBe('must not be less than fields.amount.min (10), got 5');
  });
});

it('collects every problem in one error', () => {
  const error = (() => {
    try {
      validate({
        connector: 'datagen',
        type: 'SINK',
        properties: {
          'rows-per-second': 'fast',
          'number-of-rows': 0,
          'fields.ghost.kind': 'random',
          'fields.id.kind': 'shuffled',
          colour: 'blue',
          nested: { a: 1 },
        },
      });
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  expect(error).toBeInstanceOf(ValidationError);
  const validation = error as ValidationError;
  expect(validation.code).toBe('VALIDATION');
  expect(validation.problems.map((p) => p.path)).toEqual([
    ['input', 'type'],
    ['input', 'properties', 'rows-per-second'],
    ['input', 'properties', 'number-of-rows'],
    ['input', 'properties', 'fields.ghost.kind'],
    ['input', 'properties', 'fields.id.kind'],
    ['input', 'properties', 'colour'],
    ['input', 'properties', 'nested'],
  ]);
  expect(validation.details).toMatchObject({ field: ['input', 'type'] });
});

it('still reports shape problems when the connector is unknown', () => {
  const problems = problemsOf(() => validate({ connector: 'nope', properties: { a: null, b: 'fine' } }));
  expect(problems.map((p) => p.path)).toEqual([
    ['input', 'connector'],
    ['input', 'properties', 'a'],
  ]);
});

describe('the Postgres connectors (postgres-cdc, jdbc)', () => {
  const SERVER = { hostname: 'db.example.com', 'database-name': 'shop', 'table-name': 'orders', username: 'weir_reader' };
  const cdc = (properties: Record<string, unknown>, overrides: Partial<ValidateConnectionPropertiesInput> = {}) =>
    validate({ connector: 'postgres-cdc', type: 'SOURCE', streamFields: PLAIN_FIELDS, streamKind: 'CHANGE', properties, ...overrides });
  const sink = (properties: Record<string, unknown>, overrides: Partial<ValidateConnectionPropertiesInput> = {}) =>
    validate({ connector: 'jdbc', type: 'SINK', streamFields: PLAIN_FIELDS, streamKind: 'CHANGE', properties, ...overrides });

  it('keep the password apart and store no defaults', () => {
    expect(cdc({ ...SERVER, password: 's3cret' })).toEqual({ properties: SERVER, secretProperties: { password: 's3cret' } });
    expect(sink({ ...SERVER, password: 's3cret', port: '6432' })).toEqual({
      properties: { ...SERVER, port: 6432 },
      secretProperties: { password: 's3cret' },
    });
    expect(isSecretOption('postgres-cdc', 'password')).toBe(true);
    expect(isSecretOption('jdbc', 'password')).toBe(true);
    expect(isSecretOption('jdbc', 'username')).toBe(false);
  });

  it('take one table by its unquoted name, never a pattern, and a host without a port or path', () => {
    const problems = problemsOf(() =>
      cdc({
        ...SERVER,
        password: 'p',
        hostname: 'db:5432',
        'database-name': 'shop?socketFactory=x',
        'schema-name': 'public|private',
        'table-name': 'orders.*',
      }),
    );
    expect(problems.map((p) => p.path.at(-1))).toEqual(['hostname', 'database-name', 'schema-name', 'table-name']);
    expect(problems[3]!.message).toContain('never');
  });

  it('take replication slot and publication names Postgres accepts', () => {
    const problems = problemsOf(() => cdc({ ...SERVER, password: 'p', 'slot.name': 'My-Slot', 'publication.name': 'Pub' }));
    expect(problems.map((p) => p.path.at(-1))).toEqual(['slot.name', 'publication.name']);
    expect(cdc({ ...SERVER, password: 'p', 'slot.name': 'orders_slot' }).properties['slot.name']).toBe('orders_slot');
  });

  it('feed CHANGE streams only from postgres-cdc; jdbc drains both kinds', () => {
    const problem = problemOf(() => cdc({ ...SERVER, password: 'p' }, { streamKind: 'APPEND' }));
    expect(problem).toEqual({ path: ['input', 'streamId'], message: 'postgres-cdc feeds CHANGE streams only, and this stream is APPEND' });
    expect(() => sink({ ...SERVER, password: 'p' }, { streamKind: 'APPEND' })).not.toThrow();
  });

  it('refuse a JDBC sink for fields the connector cannot name unquoted', () => {
    const problem = problemOf(() => sink({ ...SERVER, password: 'p' }, { streamFields: ['id', 'user.email', 'Total Amount'] }));
    expect(problem.path).toEqual(['input', 'properties', 'table-name']);
    expect(problem.message).toContain('"user.email", "Total Amount" are not');
  });

  it('become Flink CDC options: pgoutput, a slot and a publication of the connection’s own, a snapshot first', () => {
    const options = flinkOptionsOf('postgres-cdc', {
      connectionId: CONNECTION_ID,
      type: 'SOURCE',
      deliveryGuarantee: 'EXACTLY_ONCE',
      properties: SERVER,
      secretProperties: { password: 's3cret' },
    });
    const own = `weir_${CONNECTION_ID.replaceAll('-', '')}`;
    expect(options.properties).toEqual({
      hostname: 'db.example.com',
      port: 5432,
      'database-name': 'shop',
      'schema-name': 'public',
      'table-name': 'orders',
      username: 'weir_reader',
      'slot.name': own,
      'decoding.plugin.name': 'pgoutput',
      'debezium.publication.name': own,
      'debezium.publication.autocreate.mode': 'filtered',
      'scan.startup.mode': 'initial',
      'changelog-mode': 'upsert',
      'scan.incremental.snapshot.enabled': true,
    });
    expect(own.length).toBeLessThanOrEqual(50);
    expect(options.secretProperties).toEqual({ password: 's3cret' });
    const named = flinkOptionsOf('postgres-cdc', {
      connectionId: CONNECTION_ID,
      type: 'SOURCE',
      deliveryGuarantee: 'EXACTLY_ONCE',
      properties: { ...SERVER, 'slot.name': 'mine', 'publication.name': 'shop_pub', 'scan.startup.mode': 'latest-offset' },
      secretProperties: { password: 's3cret' },
    });
    expect(named.properties).toMatchObject({ 'slot.name': 'mine', 'debezium.publication.name': 'shop_pub', 'scan.startup.mode': 'latest-offset' });
  });

  it('become JDBC options: a URL Weir writes, the schema-qualified table, batches with sane defaults', () => {
    const options = flinkOptionsOf('jdbc', {
      connectionId: CONNECTION_ID,
      type: 'SINK',
      deliveryGuarantee: 'EXACTLY_ONCE',
      properties: { ...SERVER, port: 6432, 'schema-name': 'sales', 'sink.buffer-flush.interval-ms': 250 },
      secretProperties: { password: 's3cret' },
    });
    expect(options.properties).toEqual({
      url: 'jdbc:postgresql://db.example.com:6432/shop',
      'table-name': 'sales.orders',
      username: 'weir_reader',
      'sink.buffer-flush.max-rows': 500,
      'sink.buffer-flush.interval': '250ms',
      'sink.max-retries': 3,
    });
    expect(options.secretProperties).toEqual({ password: 's3cret' });
  });
});
