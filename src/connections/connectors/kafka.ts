import type { ConnectorDefinition, OptionCondition } from './connector-definition.js';

const SASL: OptionCondition = { key: 'properties.security.protocol', oneOf: ['SASL_PLAINTEXT', 'SASL_SSL'] };
const TIMESTAMP_STARTUP: OptionCondition = { key: 'scan.startup.mode', oneOf: ['timestamp'] };
const EXACTLY_ONCE: OptionCondition = { key: 'sink.delivery-guarantee', oneOf: ['exactly-once'] };

/**
 * Flink's Kafka SQL connector. Only the `properties.*` Kafka client settings listed here
 * are accepted: the rest (file paths on the TaskManagers, interceptors, arbitrary classes)
 * are not for tenants to set on a shared cluster.
 *
 * The SASL and TLS settings carry no `onlyWhen`: Kafka ignores them under a protocol that
 * does not use them, and secrets, being write-only, are kept across updates, so refusing
 * them would stop a connection from ever switching back to PLAINTEXT.
 */
export const kafka: ConnectorDefinition = {
  name: 'kafka',
  description: 'Reads a stream from a Kafka topic, or writes a stream to one.',
  types: ['SOURCE', 'SINK'],
  options: [
    { key: 'topic', type: 'STRING', required: true, secret: false, description: 'Topic to read from or write to.' },
    {
      key: 'properties.bootstrap.servers',
      type: 'STRING',
      required: true,
      secret: false,
      description: 'Comma-separated host:port list of Kafka brokers.',
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
      default: 'earliest-offset',
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
      key: 'sink.delivery-guarantee',
      type: 'ENUM',
      enumValues: ['none', 'at-least-once', 'exactly-once'],
      default: 'at-least-once',
      required: false,
      secret: false,
      appliesTo: ['SINK'],
      description: 'Delivery guarantee. exactly-once writes in Kafka transactions committed on checkpoints.',
    },
    {
      key: 'sink.transactional-id-prefix',
      type: 'STRING',
      required: false,
      secret: false,
      appliesTo: ['SINK'],
      onlyWhen: EXACTLY_ONCE,
      // Flink refuses exactly-once without it.
      requiredWhen: EXACTLY_ONCE,
      description: 'Prefix of Kafka transactional ids; must be unique among the applications writing to the cluster.',
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
      type: 'STRING',
      required: false,
      secret: false,
      description: 'SASL mechanism, e.g. PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.',
    },
    {
      key: 'properties.sasl.jaas.config',
      type: 'STRING',
      required: false,
      secret: true,
      // There is no JVM-wide JAAS file to fall back on: SASL needs it here.
      requiredWhen: SASL,
      description: 'JAAS login configuration, including the credentials.',
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
};
