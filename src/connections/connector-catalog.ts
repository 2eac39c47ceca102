import { ValidationError, type ValidationProblem } from '../platform/errors.js';
import type { DeliveryGuarantee, TaskSize } from '../jobs/job.table.js';
import type { ConnectionType, PropertyValue } from './connection.table.js';
import type {
  ConnectorDefinition,
  FlinkOptions,
  FlinkOptionsInput,
  OptionCondition,
  OptionDefinition,
} from './connectors/connector-definition.js';
import { parsePerFieldKey, perFieldKey } from './connectors/connector-definition.js';
import { datagen } from './connectors/datagen.js';
import { jdbc } from './connectors/jdbc.js';
import { kafka } from './connectors/kafka.js';
import { postgresCdc } from './connectors/postgres-cdc.js';
import type { StreamKind } from '../streams/stream.table.js';

export type {
  ConnectorDefinition,
  ConnectorName,
  OptionCondition,
  OptionDefinition,
  OptionType,
} from './connectors/connector-definition.js';

export const CONNECTORS: readonly ConnectorDefinition[] = Object.freeze([datagen, kafka, postgresCdc, jdbc]);

export const MAX_PROPERTY_KEY_LENGTH = 256;
export const MAX_PROPERTY_VALUE_BYTES = 16 * 1024;

export function findConnector(name: string): ConnectorDefinition | undefined {
  return CONNECTORS.find((connector) => connector.name === name);
}

/** Whether the external table of a connector's jobs declares the stream's primary key (ConnectorDefinition.keyed). */
export function isKeyedConnector(connector: string): boolean {
  return findConnector(connector)?.keyed === true;
}

/**
 * The guarantee a connection gets: the one asked for, else EXACTLY_ONCE where the connector
 * can give it. Throws VALIDATION (at `path`) for EXACTLY_ONCE where it cannot.
 */
export function deliveryGuaranteeOf(
  connector: string,
  target: { readonly type: ConnectionType; readonly primaryKey: readonly string[] },
  requested: DeliveryGuarantee | null | undefined,
  path: readonly (string | number)[],
): DeliveryGuarantee {
  const refusal = findConnector(connector)?.exactlyOnceRefusal?.(target);
  if (requested === 'EXACTLY_ONCE' && refusal) throw ValidationError.of(path, refusal);
  return requested ?? (refusal ? 'AT_LEAST_ONCE' : 'EXACTLY_ONCE');
}

/** The options Flink's connector gets for a stored connection (ConnectorDefinition.flinkOptions). */
export function flinkOptionsOf(connector: string, input: FlinkOptionsInput): FlinkOptions {
  const definition = findConnector(connector);
  return definition?.flinkOptions?.(input) ?? { properties: input.properties, secretProperties: input.secretProperties };
}

/** False for unknown connectors and keys: callers redact by this, and unknown keys are never stored. */
export function isSecretOption(connector: string, key: string): boolean {
  const definition = findConnector(connector);
  return definition ? resolveOption(definition, key)?.option.secret === true : false;
}

export interface ValidatedProperties {
  readonly properties: Record<string, PropertyValue>;
  /** Write-only values (credentials): stored apart and never returned. */
  readonly secretProperties: Record<string, PropertyValue>;
}

export interface ValidateConnectionPropertiesInput {
  readonly connector: string;
  readonly type: ConnectionType;
  /** As received from the API: nothing about it is trusted. */
  readonly properties: Record<string, unknown>;
  readonly streamFields: readonly string[];
  /** The stream's kind, for connectors that take one kind only (absent: not checked). */
  readonly streamKind?: StreamKind;
  /** The connection's task size: the memory its job gets bounds some options. */
  readonly taskSize: TaskSize;
  /** Prefix of every problem's path, e.g. ['input']. */
  readonly path?: (string | number)[];
}

/**
 * Checks a connection's connector options and coerces them to their declared types,
 * reporting every problem at once. Defaults are not filled in: they belong to the
 * runtime, and storing them would freeze today's defaults into old connections.
 */
export function validateConnectionProperties(input: ValidateConnectionPropertiesInput): ValidatedProperties {
  const base = input.path ?? [];
  const problems: ValidationProblem[] = [];
  const report = (key: string, message: string) => problems.push({ path: [...base, 'properties', key], message });

  const connector = findConnector(input.connector);
  if (!connector) {
    const known = CONNECTORS.map((c) => c.name).join(', ');
    problems.push({
      path: [...base, 'connector'],
      message: `unknown connector ${quote(input.connector)}; known connectors: ${known}`,
    });
  } else if (!connector.types.includes(input.type)) {
    problems.push({
      path: [...base, 'type'],
      message: `${connector.name} supports only ${connector.types.join(' and ')} connections, not ${input.type}`,
    });
  }
  if (connector?.streamKinds && input.streamKind && !connector.streamKinds.includes(input.streamKind)) {
    problems.push({
      path: [...base, 'streamId'],
      message: `${connector.name} ${input.type === 'SOURCE' ? 'feeds' : 'drains'} ${connector.streamKinds.join(' or ')} streams only, and this stream is ${input.streamKind}`,
    });
  }

  const raw: unknown = input.properties;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    problems.push({ path: [...base, 'properties'], message: 'must be an object of option keys to values' });
    throw new ValidationError(problems);
  }

  const streamFields = new Set(input.streamFields);
  // Keys that were recognised, even with a bad value: a bad value is not also "missing".
  const given = new Set<string>();
  const values = new Map<string, PropertyValue>();
  const options = new Map<string, OptionDefinition>();

  for (const [key, value] of Object.entries(raw)) {
    if (key.length > MAX_PROPERTY_KEY_LENGTH) {
      report(key, `option keys are at most ${MAX_PROPERTY_KEY_LENGTH} characters`);
      continue;
    }
    const resolved = connector && resolveOption(connector, key);
    if (connector && !resolved) {
      report(key, unknownOptionMessage(connector, key, input.streamFields));
      continue;
    }
    if (resolved) given.add(key);
    const shapeProblem = checkValueShape(value);
    if (shapeProblem) {
      report(key, shapeProblem);
      continue;
    }
    if (!resolved) continue;
    const { option, field } = resolved;
    if (field !== undefined && !streamFields.has(field)) {
      report(key, unknownFieldMessage(field, input.streamFields));
      continue;
    }
    if (option.appliesTo && !option.appliesTo.includes(input.type)) {
      report(key, `applies only to ${option.appliesTo.join(' and ')} connections, not ${input.type}`);
      continue;
    }
    const coerced = coerce(option, value as PropertyValue);
    if (typeof coerced === 'string') {
      report(key, coerced);
      continue;
    }
    values.set(key, coerced.value);
    options.set(key, option);
  }

  if (connector) {
    // Condition checks need every value first: the option a condition reads may come later.
    for (const [key, option] of options) {
      if (!option.onlyWhen) continue;
      const field = parsePerFieldKey(key)?.field;
      const outcome = evaluate(connector, option.onlyWhen, field, values, given);
      if (outcome.holds === false) {
        report(key, `applies only when ${describeCondition(outcome.key, option.onlyWhen)} (it is ${outcome.actual})`);
        values.delete(key);
      }
    }
    for (const problem of missingOptions(connector, input.type, input.streamFields, values, given)) {
      report(problem.key, problem.message);
    }
    for (const problem of connector.check?.({ type: input.type, taskSize: input.taskSize, values, streamFields: input.streamFields }) ?? []) {
      report(problem.key, problem.message);
    }
  }

  if (problems.length > 0) throw new ValidationError(problems);

  const properties: Record<string, PropertyValue> = {};
  const secretProperties: Record<string, PropertyValue> = {};
  for (const [key, value] of values) {
    (options.get(key)?.secret ? secretProperties : properties)[key] = value;
  }
  return { properties, secretProperties };
}

interface ResolvedOption {
  readonly option: OptionDefinition;
  /** Set for per-field options: the field named by the key, not yet checked against the stream. */
  readonly field?: string;
}

function resolveOption(connector: ConnectorDefinition, key: string): ResolvedOption | undefined {
  const exact = connector.options.find((option) => !option.perField && option.key === key);
  if (exact) return { option: exact };
  const parsed = parsePerFieldKey(key);
  if (!parsed) return undefined;
  const option = connector.options.find((o) => o.perField && parsePerFieldKey(o.key)?.suffix === parsed.suffix);
  return option ? { option, field: parsed.field } : undefined;
}

/** Problems that do not depend on the option: sizes and JSON shapes. */
function checkValueShape(value: unknown): string | undefined {
  if (value === null || value === undefined) return 'must have a value: remove the option to leave it unset';
  if (Array.isArray(value)) return 'must be a string, number or boolean, not a list';
  if (typeof value === 'object') return 'must be a string, number or boolean, not an object';
  if (typeof value === 'number' && !Number.isFinite(value)) return 'must be a finite number';
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
    return 'must be a string, number or boolean';
  }
  if (typeof value === 'string' && Buffer.byteLength(value, 'utf8') > MAX_PROPERTY_VALUE_BYTES) {
    return `values are at most ${MAX_PROPERTY_VALUE_BYTES / 1024} KiB`;
  }
  return undefined;
}

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const NUMBER_LIMITS = {
  INT: [-(2 ** 31), 2 ** 31 - 1],
  // A LONG beyond 2^53 cannot survive the trip through a JavaScript number.
  LONG: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  DOUBLE: [-Infinity, Infinity],
} as const;

/** The coerced value, or a message saying why it cannot be. */
function coerce(option: OptionDefinition, value: PropertyValue): { value: PropertyValue } | string {
  // Secrets are never echoed back, even in an error.
  const got = option.secret ? `a ${typeof value}` : show(value);
  switch (option.type) {
    case 'STRING':
      if (typeof value !== 'string') return `expected STRING, got ${got}`;
      if (value.trim() === '') return 'must not be empty';
      return { value };
    case 'BOOLEAN': {
      if (typeof value === 'boolean') return { value };
      const text = typeof value === 'string' ? value.trim().toLowerCase() : undefined;
      if (text === 'true' || text === 'false') return { value: text === 'true' };
      return `expected BOOLEAN (true or false), got ${got}`;
    }
    case 'ENUM': {
      const allowed = option.enumValues ?? [];
      if (typeof value === 'string' && allowed.includes(value)) return { value };
      const near =
        typeof value === 'string' ? allowed.find((a) => a.toLowerCase() === value.trim().toLowerCase()) : undefined;
      return `must be one of ${allowed.join(', ')}, got ${got}${near ? `; did you mean ${quote(near)}?` : ''}`;
    }
    case 'INT':
    case 'LONG':
    case 'DOUBLE': {
      const number = toNumber(value);
      if (number === undefined) return `expected ${option.type}, got ${got}`;
      if (option.type !== 'DOUBLE' && !Number.isInteger(number)) {
        return `expected a whole number (${option.type}), got ${got}`;
      }
      const range = outOfRange(option, option.type, number);
      if (range) return `out of range: ${range}, got ${got}`;
      return { value: number };
    }
  }
}

/** Numbers may arrive as numeric strings ("5"), as some clients send every option as text. */
function toNumber(value: PropertyValue): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value !== 'string' || !DECIMAL.test(value.trim())) return undefined;
  const number = Number(value.trim());
  return Number.isFinite(number) ? number : undefined;
}

/** Describes the bound broken, if any: the option's own, or the type's when it has none. */
function outOfRange(option: OptionDefinition, type: keyof typeof NUMBER_LIMITS, value: number): string | undefined {
  const [typeMin, typeMax] = NUMBER_LIMITS[type];
  const min = option.min ?? typeMin;
  const max = option.max ?? typeMax;
  if (value >= min && value <= max) return undefined;
  if (option.min !== undefined && option.max !== undefined) return `must be between ${min} and ${max}`;
  return value < min ? `must be at least ${min}` : `must be at most ${max}`;
}

type Outcome = { holds: true } | { holds: false; key: string; actual: string } | { holds: undefined };

/** Whether a condition holds; undefined when the option it reads was given but invalid. */
function evaluate(
  connector: ConnectorDefinition,
  condition: OptionCondition,
  field: string | undefined,
  values: ReadonlyMap<string, PropertyValue>,
  given: ReadonlySet<string>,
): Outcome {
  const key = conditionKeyFor(condition, field);
  const explicit = values.get(key);
  if (explicit === undefined && given.has(key)) return { holds: undefined };
  const actual = explicit ?? resolveOption(connector, key)?.option.default;
  if (actual !== undefined && condition.oneOf.includes(actual)) return { holds: true };
  if (actual === undefined) return { holds: false, key, actual: 'not set' };
  return { holds: false, key, actual: explicit === undefined ? `${String(actual)} by default` : String(actual) };
}

/** In a per-field option's condition, `#` is the option's own field. */
function conditionKeyFor(condition: OptionCondition, field: string | undefined): string {
  return field === undefined ? condition.key : condition.key.replace('#', field);
}

function describeCondition(key: string, condition: OptionCondition): string {
  return `${key} is ${condition.oneOf.map(String).join(' or ')}`;
}

function missingOptions(
  connector: ConnectorDefinition,
  type: ConnectionType,
  streamFields: readonly string[],
  values: ReadonlyMap<string, PropertyValue>,
  given: ReadonlySet<string>,
): { key: string; message: string }[] {
  const missing: { key: string; message: string }[] = [];
  for (const option of connector.options) {
    if (option.appliesTo && !option.appliesTo.includes(type)) continue;
    const instances = option.perField
      ? streamFields.map((field) => ({ key: perFieldKey(field, parsePerFieldKey(option.key)?.suffix ?? ''), field }))
      : [{ key: option.key, field: undefined }];
    for (const { key, field } of instances) {
      if (given.has(key)) continue;
      if (option.required) {
        missing.push({ key, message: `is required by ${connector.name}` });
      } else if (option.requiredWhen && evaluate(connector, option.requiredWhen, field, values, given).holds === true) {
        const conditionKey = conditionKeyFor(option.requiredWhen, field);
        missing.push({ key, message: `is required when ${describeCondition(conditionKey, option.requiredWhen)}` });
      }
    }
  }
  return missing;
}

function unknownOptionMessage(connector: ConnectorDefinition, key: string, streamFields: readonly string[]): string {
  const parsed = parsePerFieldKey(key);
  const fields = parsed ? [parsed.field] : streamFields;
  const candidates = connector.options.flatMap((option) =>
    option.perField ? fields.map((field) => option.key.replace('#', field)) : [option.key],
  );
  const suggestion = closest(key, candidates);
  return `unknown ${connector.name} option ${quote(key)}${suggestion ? `; did you mean ${quote(suggestion)}?` : ''}`;
}

function unknownFieldMessage(field: string, streamFields: readonly string[]): string {
  const suggestion = closest(field, streamFields);
  if (suggestion) return `the stream has no field ${quote(field)}; did you mean ${quote(suggestion)}?`;
  const listed = streamFields.slice(0, 20).map(quote).join(', ');
  return streamFields.length === 0
    ? `the stream has no field ${quote(field)}; it has no fields`
    : `the stream has no field ${quote(field)}; its fields are ${listed}${streamFields.length > 20 ? ', …' : ''}`;
}

/**
 * The candidate a typo most likely meant: a small edit distance (case ignored), or a
 * candidate the key is a dotted tail of, as in 'bootstrap.servers' for
 * 'properties.bootstrap.servers'.
 */
function closest(key: string, candidates: readonly string[]): string | undefined {
  const tail = candidates.find((candidate) => candidate.endsWith(`.${key}`));
  if (tail) return tail;
  const lower = key.toLowerCase();
  let limit = Math.max(2, Math.floor(key.length / 4));
  let best: string | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase(), limit);
    if (distance <= limit) {
      best = candidate;
      limit = distance - 1;
    }
  }
  return best;
}

/** Levenshtein distance, or Infinity once it is sure to exceed `limit`. */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return Infinity;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    if (Math.min(...current) > limit) return Infinity;
    previous = current;
  }
  return previous[b.length]!;
}

/** A value as it may appear in a message: quoted if a string, and cut short. */
function show(value: PropertyValue): string {
  return typeof value === 'string' ? quote(value) : String(value);
}

function quote(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text);
}
