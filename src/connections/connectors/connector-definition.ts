import type { DeliveryGuarantee, TaskSize } from '../../jobs/job.table.js';
import type { StreamKind } from '../../streams/stream.table.js';
import type { ConnectionType, PropertyValue } from '../connection.table.js';

export type ConnectorName = 'datagen' | 'kafka' | 'postgres-cdc' | 'jdbc';

export type OptionType = 'STRING' | 'INT' | 'LONG' | 'DOUBLE' | 'BOOLEAN' | 'ENUM';

/**
 * "This option only means something while another option has one of these values."
 * The other option's default counts when it is not given. In per-field options `#`
 * stands for the same field: `fields.#.kind`.
 */
export interface OptionCondition {
  readonly key: string;
  readonly oneOf: readonly PropertyValue[];
}

export interface OptionDefinition {
  /** The Flink option key. Per-field options put `#` where the field name goes. */
  readonly key: string;
  readonly type: OptionType;
  readonly required: boolean;
  /** Write-only: stored apart from the other properties, never returned or logged. */
  readonly secret: boolean;
  readonly description: string;
  /** What the runtime uses when the option is absent; never copied into stored properties. */
  readonly default?: PropertyValue;
  readonly enumValues?: readonly string[];
  readonly min?: number;
  readonly max?: number;
  /** Absent: the option applies to every type the connector supports. */
  readonly appliesTo?: readonly ConnectionType[];
  /** One option per stream field, keyed `fields.<field>.<suffix>`. */
  readonly perField?: boolean;
  /**
   * Flink rejects options it did not consume (or silently ignores them), so an option
   * given outside its condition is reported rather than stored to fail at job start.
   */
  readonly onlyWhen?: OptionCondition;
  readonly requiredWhen?: OptionCondition;
}

/** A problem found by a connector's own cross-option check; `key` names the option to blame. */
export interface OptionProblem {
  readonly key: string;
  readonly message: string;
}

export interface OptionCheckInput {
  readonly type: ConnectionType;
  /** The job's task size: what it runs in bounds what some options may ask for. */
  readonly taskSize: TaskSize;
  /** Only options that passed their own checks, already coerced. */
  readonly values: ReadonlyMap<string, PropertyValue>;
  /** The names of the connection's stream's fields. */
  readonly streamFields: readonly string[];
}

export interface ConnectorDefinition {
  readonly name: ConnectorName;
  readonly description: string;
  readonly types: readonly ConnectionType[];
  readonly options: readonly OptionDefinition[];
  /** The kinds of stream the connector can feed or drain. Absent: both. */
  readonly streamKinds?: readonly StreamKind[];
  /**
   * The external table declares the stream's primary key: connectors that read keyed
   * changes (CDC) or write by key (upserts). Flink's Kafka connector refuses a key.
   */
  readonly keyed?: boolean;
  /**
   * The external system's `host:port`, from the stored properties, for the platform check:
   * no connection may name the platform's own servers.
   */
  readonly serverOf?: (properties: Readonly<Record<string, unknown>>) => string | undefined;
  /** The option to blame when serverOf names a platform server (default `hostname`). */
  readonly serverKey?: string;
  /**
   * Why the connector cannot deliver exactly once into a stream with this primary key, if
   * it cannot (absent: it always can). Such a connection defaults to AT_LEAST_ONCE, and
   * asking it for EXACTLY_ONCE is refused with this reason.
   */
  readonly exactlyOnceRefusal?: (input: { readonly type: ConnectionType; readonly primaryKey: readonly string[] }) => string | undefined;
  /** Rules between option values that the declarative fields cannot say. */
  readonly check?: (input: OptionCheckInput) => readonly OptionProblem[];
  /**
   * The options Flink's connector is given, from the stored ones, where the two differ:
   * Weir's own options (say, a user name and password) become Flink's, and defaults that
   * are not Flink's own are filled in. Absent: the stored options as they are.
   */
  readonly flinkOptions?: (input: FlinkOptionsInput) => FlinkOptions;
}

export interface FlinkOptionsInput {
  /** The connection's uuid: names derived from it (a replication slot) are the connection's own. */
  readonly connectionId: string;
  readonly type: ConnectionType;
  /** How the job delivers what it writes (to the stream, or to the external system). */
  readonly deliveryGuarantee: DeliveryGuarantee;
  readonly properties: Readonly<Record<string, PropertyValue>>;
  readonly secretProperties: Readonly<Record<string, PropertyValue>>;
}

export interface FlinkOptions {
  readonly properties: Readonly<Record<string, PropertyValue>>;
  /** Whatever carries a secret, derived values included. */
  readonly secretProperties: Readonly<Record<string, PropertyValue>>;
}

const PER_FIELD_PREFIX = 'fields.';

export function perFieldKey(field: string, suffix: string): string {
  return `${PER_FIELD_PREFIX}${field}.${suffix}`;
}

/**
 * The suffix is the last segment, so a field name may itself contain dots:
 * `fields.a.b.kind` is field `a.b`.
 */
export function parsePerFieldKey(key: string): { field: string; suffix: string } | undefined {
  if (!key.startsWith(PER_FIELD_PREFIX)) return undefined;
  const rest = key.slice(PER_FIELD_PREFIX.length);
  const lastDot = rest.lastIndexOf('.');
  if (lastDot <= 0 || lastDot === rest.length - 1) return undefined;
  return { field: rest.slice(0, lastDot), suffix: rest.slice(lastDot + 1) };
}
