import type { SASLOptions } from '@platformatic/kafka';

/**
 * How a client reaches the Kafka that holds the streams, and as whom. The platform's
 * brokers accept authenticated clients only: the gateway holds an administrator's
 * credentials, each job and each account's previews a principal of their own
 * (kafka-principals.ts).
 */
export type SaslMechanism = 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512';
export const SASL_MECHANISMS: readonly SaslMechanism[] = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'];

export type SecurityProtocol = 'SASL_PLAINTEXT' | 'SASL_SSL';

export interface SaslCredentials {
  readonly mechanism: SaslMechanism;
  readonly username: string;
  readonly password: string;
}

export interface KafkaEndpoint {
  /** `host:port,host:port`, as Kafka clients take `bootstrap.servers`. */
  readonly bootstrapServers: string;
  readonly securityProtocol: SecurityProtocol;
  /** The gateway's own principal: a super user of the cluster. */
  readonly admin: SaslCredentials;
}

/** What a Flink job or preview needs to reach stream topics as one principal. */
export interface StreamAccess {
  readonly bootstrapServers: string;
  /** Kafka client settings, without Flink's `properties.` prefix. */
  readonly clientProperties: Readonly<Record<string, string>>;
}

/** The gateway's client options for @platformatic/kafka. */
export function clientOptions(endpoint: KafkaEndpoint): { bootstrapBrokers: string[]; sasl: SASLOptions; tls?: object } {
  return {
    bootstrapBrokers: endpoint.bootstrapServers.split(',').map((server) => server.trim()),
    sasl: { mechanism: endpoint.admin.mechanism, username: endpoint.admin.username, password: endpoint.admin.password },
    ...(endpoint.securityProtocol === 'SASL_SSL' ? { tls: {} } : {}),
  };
}

const LOGIN_MODULES: Record<SaslMechanism, string> = {
  PLAIN: 'org.apache.kafka.common.security.plain.PlainLoginModule',
  'SCRAM-SHA-256': 'org.apache.kafka.common.security.scram.ScramLoginModule',
  'SCRAM-SHA-512': 'org.apache.kafka.common.security.scram.ScramLoginModule',
};

/** A value quoted for Kafka's JAAS parser, which reads backslash escapes inside double quotes. */
export const jaasQuote = (value: string) => `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;

/**
 * A JAAS line for Kafka's own login modules. Weir writes it; nobody else may, since a
 * JAAS line names a class to load.
 */
export function jaasConfig(credentials: SaslCredentials): string {
  return `${LOGIN_MODULES[credentials.mechanism]} required username=${jaasQuote(credentials.username)} password=${jaasQuote(credentials.password)};`;
}

/** Kafka client settings that authenticate as `credentials` over `protocol`. */
export function saslClientProperties(protocol: SecurityProtocol, credentials: SaslCredentials): Record<string, string> {
  return {
    'security.protocol': protocol,
    'sasl.mechanism': credentials.mechanism,
    'sasl.jaas.config': jaasConfig(credentials),
  };
}
