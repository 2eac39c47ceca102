import { globalId, isUuid } from './ids.js';

/**
 * Expected failures. Each carries a stable `code` that clients switch on; the GraphQL
 * boundary turns them into errors with `extensions.code`. Anything that is not a
 * WeirError is unexpected and masked.
 */
export type ErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'VALIDATION'
  | 'CONFLICT'
  | 'QUOTA_EXCEEDED'
  | 'RATE_LIMITED'
  | 'SUBSCRIPTION_LIMIT_EXCEEDED'
  | 'UNAVAILABLE'
  | 'REQUEST_TIMEOUT'
  | 'SQL_TOO_COMPLEX'
  | 'CONNECTION_CHECK_FAILED'
  | 'SNAPSHOT_FAILED';

export abstract class WeirError extends Error {
  abstract readonly code: ErrorCode;
  /** Extra, client-safe data for `extensions`. */
  get details(): Record<string, unknown> {
    return {};
  }
}

export class UnauthenticatedError extends WeirError {
  readonly code = 'UNAUTHENTICATED';
  override readonly name = 'UnauthenticatedError';
  constructor(message = 'A valid API key is required: send "Authorization: Bearer <key>".') {
    super(message);
  }
}

export class ForbiddenError extends WeirError {
  readonly code = 'FORBIDDEN';
  override readonly name = 'ForbiddenError';
  constructor(readonly requiredRole: string) {
    super(`This operation needs the ${requiredRole} role.`);
  }
  override get details() {
    return { requiredRole: this.requiredRole };
  }
}

/** Also the answer for another account's objects: existence never leaks across accounts. */
export class NotFoundError extends WeirError {
  readonly code = 'NOT_FOUND';
  override readonly name = 'NotFoundError';
  readonly id: string;
  /** `id`: a row's uuid (shown as the API's global id of `kind`) or the id as the client sent it. */
  constructor(readonly kind: string, id: string) {
    const shown = isUuid(id) ? globalId(kind, id) : id;
    super(`${kind} ${JSON.stringify(shown)} was not found.`);
    this.id = shown;
  }
  override get details() {
    return { kind: this.kind, id: this.id };
  }
}

export interface ValidationProblem {
  /** Path of the offending input field, e.g. ["input", "properties", "rows-per-second"]. */
  readonly path: readonly (string | number)[];
  readonly message: string;
  /** For SQL: 1-based line and column. */
  readonly line?: number;
  readonly column?: number;
}

export class ValidationError extends WeirError {
  readonly code = 'VALIDATION';
  override readonly name = 'ValidationError';
  constructor(readonly problems: readonly ValidationProblem[]) {
    super(problems.map((p) => (p.path.length ? `${p.path.join('.')}: ${p.message}` : p.message)).join('; '));
  }
  static of(path: readonly (string | number)[], message: string, position?: { line: number; column: number }) {
    return new ValidationError([{ path, message, ...position }]);
  }
  override get details() {
    const first = this.problems[0];
    return { field: first?.path ?? [], problems: this.problems };
  }
}

/**
 * SQL the checker gave up on: its check ran past the time limit (and was stopped) or
 * past the parser's stack. Valid or not, it is too costly to parse; apart from
 * VALIDATION because no line or column is at fault.
 */
export class SqlTooComplexError extends WeirError {
  readonly code = 'SQL_TOO_COMPLEX';
  override readonly name = 'SqlTooComplexError';
  constructor(
    // Not `path`: graphql-js passes an error with an array `path` through as its own.
    readonly field: readonly (string | number)[],
    /** The checker's time limit when that was the bound reached; undefined: its stack. */
    readonly timeLimitMs?: number,
  ) {
    const prefix = field.length ? `${field.join('.')}: ` : '';
    super(
      timeLimitMs !== undefined
        ? `${prefix}The SQL took longer than ${timeLimitMs} ms to check and was stopped; simplify it (fewer nested expressions or subqueries)`
        : `${prefix}The SQL nests too deeply for the SQL checker; simplify it (fewer nested expressions or operators)`,
    );
  }
  override get details() {
    return { field: this.field, ...(this.timeLimitMs !== undefined ? { timeLimitMs: this.timeLimitMs } : {}) };
  }
}

export class ConflictError extends WeirError {
  readonly code = 'CONFLICT';
  override readonly name = 'ConflictError';
  constructor(message: string, readonly extra: Record<string, unknown> = {}) {
    super(message);
  }
  override get details() {
    return this.extra;
  }
}

export class QuotaExceededError extends WeirError {
  readonly code = 'QUOTA_EXCEEDED';
  override readonly name = 'QuotaExceededError';
  constructor(readonly quota: string, readonly limit: number, readonly requested: number) {
    super(`Quota exceeded: ${quota} is limited to ${limit} for this account's tier (would be ${requested}).`);
  }
  override get details() {
    return { quota: this.quota, limit: this.limit, requested: this.requested };
  }
}

/** A platform quota (not the tier's) refused the job, e.g. a Kubernetes ResourceQuota. */
export class PlatformQuotaExceededError extends WeirError {
  readonly code = 'QUOTA_EXCEEDED';
  override readonly name = 'PlatformQuotaExceededError';
  constructor(message: string, readonly extra: Record<string, unknown> = {}) {
    super(message);
  }
  override get details() {
    return this.extra;
  }
}

export class RateLimitedError extends WeirError {
  readonly code = 'RATE_LIMITED';
  override readonly name = 'RateLimitedError';
  constructor(readonly retryAfterMs: number) {
    super(`Too many requests; retry in ${Math.ceil(retryAfterMs / 1000)} s.`);
  }
  override get details() {
    return { retryAfterMs: this.retryAfterMs };
  }
}

/**
 * One more open subscription would pass the tier's bound for the API key or for its
 * account (counted per gateway). Ending another subscription frees a slot.
 */
export class SubscriptionLimitExceededError extends WeirError {
  readonly code = 'SUBSCRIPTION_LIMIT_EXCEEDED';
  override readonly name = 'SubscriptionLimitExceededError';
  constructor(readonly scope: 'key' | 'account', readonly limit: number) {
    super(
      `Too many open subscriptions: this ${scope === 'key' ? 'API key' : 'account'} may keep ${limit} open per gateway; end one first.`,
    );
  }
  override get details() {
    return { scope: this.scope, limit: this.limit };
  }
}

/**
 * A connection's external system is not ready for it (testConnection's checks): an
 * activation is refused and changes nothing. `checks` are the failed ones.
 */
export class ConnectionCheckError extends WeirError {
  readonly code = 'CONNECTION_CHECK_FAILED';
  override readonly name = 'ConnectionCheckError';
  constructor(
    connection: string,
    readonly failed: readonly { readonly name: string; readonly message: string }[],
  ) {
    super(`Connection "${connection}" cannot start: ${failed.map((c) => `${c.name}: ${c.message}`).join('; ')}.`);
  }
  override get details() {
    return { checks: this.failed.map((c) => ({ name: c.name, message: c.message })) };
  }
}

/** A part of the platform this request needs is not there (not configured, or down). */
export class UnavailableError extends WeirError {
  readonly code = 'UNAVAILABLE';
  override readonly name = 'UnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The operation ran past the request deadline and was cut; a mutation may still have taken effect. */
export class RequestTimeoutError extends WeirError {
  readonly code = 'REQUEST_TIMEOUT';
  override readonly name = 'RequestTimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`The request took longer than ${timeoutMs} ms and was stopped.`);
  }
  override get details() {
    return { timeoutMs: this.timeoutMs };
  }
}

/** Flink did not take a savepoint asked for: the job runs on, unchanged. */
export class SnapshotFailedError extends WeirError {
  readonly code = 'SNAPSHOT_FAILED';
  override readonly name = 'SnapshotFailedError';
}
