import { jaasConfig, SASL_MECHANISMS, type SaslMechanism } from '../../streams/kafka-endpoint.js';
import type { PropertyValue } from '../connection.table.js';
import { kafkaSinkDelivery } from '../../jobs/delivery.js';
import type { ConnectorDefinition, FlinkOptionsInput, OptionCondition, OptionProblem } from './connector-definition.js';

const SASL: OptionCondition = { key: 'properties.security.protocol', oneOf: ['SASL_PLAINTEXT', 'SASL_SSL'] };
/** A Kafka topic name: one topic, never a list (`a;b`, `a,b`) or a pattern. */
const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;
/** `host:port`, the host a name, an IPv4 address or a bracketed IPv6 address. */
const SERVER = /^(?:[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\]):\d{1,5}$/;
const STARTUP_DEFAULT = 'earliest-offset';
const TIMESTAMP_STARTUP: OptionCondition = { key: 'scan.startup.mode', oneOf: ['timestamp'] };
const ISOLATION_DEFAULT = 'read_committed';

/**
 * Flink's Kafka SQL connector. Only the `properties.*` Kafka client settings listed here
 * are accepted: the rest (file paths on the TaskManagers, interceptors, arbitrary classes)
 * are not for tenants to set on a shared cluster. That includes `sasl.jaas.config`, which
 * names a login module class: a connection picks a mechanism and gives a user name and a
 * password, and Weir writes the JAAS line (flinkOptions below).
 *
 * The platform's own brokers are refused at the service (connection.service.ts), which
 * knows where they are; topic lists here.
 *
 * The SASL and TLS settings carry no `onlyWhen`: Kafka ignores them under a protocol that
 * does not use them, and secrets, being write-only, are kept across updates, so refusing
 * them would stop a connection from ever switching back to PLAINTEXT.
 */
export const kafka: ConnectorDefinition = {
  name: 'kafka',
  description: 'Reads a stream from a Kafka topic, or writes a stream to one.',
  types: ['SOURCE', 'SINK'],
  serverOf: (properties) => {
    const servers = properties['properties.bootstrap.servers'];
    return typeof servers === 'string' ? servers : undefined;
  },
  serverKey: 'properties.bootstrap.servers',
  options: [
    { key: 'topic', type: 'STRING', required: true, secret: false, description: 'The one topic to read from or write to.' },
    {
      key: 'properties.bootstrap.servers',
      type: 'STRING',
      required: true,
      secret: false,
      description: 'Comma-separated host:port list of Kafka brokers (not the platform’s own).',
    },
    {
      key: 'properties.group.id',
      type: 'STRING',
      required: false,
      secret: false,
      appliesTo: ['SOURCE'],
      description: 'Consumer group id; its committed offsets are where `group-offsets` starts.',
    },
    {
      key: 'scan.startup.mode',
      type: 'ENUM',
      enumValues: ['earliest-offset', 'latest-offset', 'group-offsets', 'timestamp'],
      // Flink's default is group-offsets, but a new connection has no committed offsets yet:
      // reading what the topic already holds is the least surprising start.
      default: STARTUP_DEFAULT,
      required: false,
      secret: false,
      appliesTo: ['SOURCE'],
      description: 'Where reading starts.',
    },
    {
      key: 'scan.startup.timestamp-millis',
      type: 'LONG',
      min: 0,
      required: false,
      secret: false,
      appliesTo: ['SOURCE'],
      onlyWhen: TIMESTAMP_STARTUP,
      requiredWhen: TIMESTAMP_STARTUP,
      description: 'Epoch milliseconds to start reading from when scan.startup.mode is timestamp.',
    },
    {
      key: 'format',
      type: 'ENUM',
      enumValues: ['json', 'csv'],
      default: 'json',
      required: false,
      secret: false,
      description: 'Encoding of record values.',
    },
    {
      key: 'json.ignore-parse-errors',
      type: 'BOOLEAN',
      default: false,
      required: false,
      secret: false,
      // Parsing only happens when reading; Flink accepts the option on a sink and ignores it.
      appliesTo: ['SOURCE'],
      onlyWhen: { key: 'format', oneOf: ['json'] },
      description: 'Skip records that are not valid JSON (fields become null) instead of failing the job.',
    },
    {
      key: 'properties.isolation.level',
      type: 'ENUM',
      enumValues: ['read_committed', 'read_uncommitted'],
      // Kafka's own default is read_uncommitted: records of transactions later aborted.
      default: ISOLATION_DEFAULT,
      required: false,
      secret: false,
      appliesTo: ['SOURCE'],
      description: 'read_committed skips records of open and aborted transactions; read_uncommitted sees them all.',
    },
    {
      key: 'sink.transactional-id-prefix',
      type: 'STRING',
      required: false,
      secret: false,
      appliesTo: ['SINK'],
      description:
        "Prefix of the Kafka transactional ids an EXACTLY_ONCE connection writes with; the connection's user needs WRITE and DESCRIBE on them. Default weir-<connection uuid>.",
    },
    {
      key: 'properties.security.protocol',
      type: 'ENUM',
      enumValues: ['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'],
      default: 'PLAINTEXT',
      required: false,
      secret: false,
      description: 'Protocol used to talk to the brokers.',
    },
    {
      key: 'properties.sasl.mechanism',
      type: 'ENUM',
      enumValues: SASL_MECHANISMS,
      required: false,
      secret: false,
      requiredWhen: SASL,
      description: 'SASL mechanism.',
    },
    {
      key: 'sasl.username',
      type: 'STRING',
      required: false,
      secret: false,
      requiredWhen: SASL,
      description: 'SASL user name.',
    },
    {
      key: 'sasl.password',
      type: 'STRING',
      required: false,
      secret: true,
      requiredWhen: SASL,
      description: 'SASL password.',
    },
    {
      key: 'properties.ssl.truststore.password',
      type: 'STRING',
      required: false,
      secret: true,
      description: 'Password of the trust store.',
    },
    {
      key: 'properties.ssl.keystore.password',
      type: 'STRING',
      required: false,
      secret: true,
      description: 'Password of the key store (client certificate).',
    },
    {
      key: 'properties.ssl.key.password',
      type: 'STRING',
      required: false,
      secret: true,
      description: 'Password of the private key in the key store.',
    },
  ],
  check: ({ values }) => [
    ...topicProblems(values.get('topic')),
    ...serverProblems(values.get('properties.bootstrap.servers')),
    // They go into a JAAS line, where a line break would start options of its own.
    ...['sasl.username', 'sasl.password'].flatMap((key) =>
      /[\u0000-\u001f\u007f]/.test(String(values.get(key) ?? '')) ? [{ key, message: 'must not contain control characters' }] : [],
    ),
  ],
  flinkOptions: ({ connectionId, type, deliveryGuarantee, properties, secretProperties }: FlinkOptionsInput) => {
    const { 'sasl.username': username, 'sink.transactional-id-prefix': prefix, ...rest } = properties;
    // A JAAS line stored by an older Weir (free-form then) is not passed on any more.
    const { 'sasl.password': password, 'properties.sasl.jaas.config': _legacy, ...secrets } = secretProperties;
    const mechanism = properties['properties.sasl.mechanism'];
    const sasl = username !== undefined && password !== undefined && typeof mechanism === 'string';
    return {
      properties: {
        ...(type === 'SOURCE'
          ? { 'scan.startup.mode': STARTUP_DEFAULT, 'properties.isolation.level': ISOLATION_DEFAULT }
          : kafkaSinkDelivery(deliveryGuarantee, typeof prefix === 'string' ? prefix : `weir-${connectionId}`)),
        ...rest,
      },
      secretProperties: {
        ...secrets,
        ...(sasl
          ? { 'properties.sasl.jaas.config': jaasConfig({ mechanism: mechanism as SaslMechanism, username: String(username), password: String(password) }) }
          : {}),
      },
    };
  },
};

function topicProblems(topic: PropertyValue | undefined): OptionProblem[] {
  if (typeof topic !== 'string' || (TOPIC_NAME.test(topic) && topic !== '.' && topic !== '..')) return [];
  return [
    {
      key: 'topic',
      message: "must be one topic name (letters, digits, '.', '_' and '-', at most 249); lists and patterns are not accepted",
    },
  ];
}

function serverProblems(servers: PropertyValue | undefined): OptionProblem[] {
  if (typeof servers !== 'string') return [];
  const bad = servers.split(',').map((server) => server.trim()).filter((server) => !SERVER.test(server));
  return bad.length === 0 ? [] : [{ key: 'properties.bootstrap.servers', message: `must be a comma-separated list of host:port, got ${JSON.stringify(bad[0])}` }];
}
