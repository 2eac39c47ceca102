import { SECOND } from '../platform/time.js';
import { causeCode, describeFailure, flinkJson, FlinkRestError } from '../flink/flink-rest.js';
import { pollUntil } from '../platform/poll.js';

export type RowKind = 'INSERT' | 'UPDATE_BEFORE' | 'UPDATE_AFTER' | 'DELETE';

export interface ResultColumn {
  readonly name: string;
  /** Flink's SQL type, e.g. `BIGINT`, `DECIMAL(10, 2)`, `VARCHAR(2147483647)`. */
  readonly type: string;
}

export interface ResultRow {
  readonly kind: RowKind;
  /** JSON values; BIGINT/DECIMAL beyond a double's exact range are strings of digits. */
  readonly values: readonly unknown[];
}

export interface ResultPage {
  readonly resultType: 'NOT_READY' | 'PAYLOAD' | 'EOS';
  readonly jobId: string | null;
  readonly columns: readonly ResultColumn[] | null;
  readonly rows: readonly ResultRow[];
  /** undefined after EOS. */
  readonly nextToken: number | undefined;
}

/** The SQL Gateway did not answer at all (not up yet, or down). */
export class SqlGatewayUnavailableError extends Error {
  override readonly name = 'SqlGatewayUnavailableError';
}

const GATEWAY_NOT_READY = new Set([502, 503, 504]);
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT']);

/** A connection that failed, or a proxy saying that what is behind it is not there yet. */
function notUpYet(error: unknown): boolean {
  if (error instanceof FlinkRestError) return GATEWAY_NOT_READY.has(error.status);
  const code = causeCode(error);
  return error instanceof TypeError && code !== undefined && UNREACHABLE.has(code);
}

/** Flink refused or failed a statement; `line`/`column` where Flink names a position. */
export class FlinkStatementError extends Error {
  override readonly name = 'FlinkStatementError';
  constructor(
    message: string,
    readonly line: number | null,
    readonly column: number | null,
  ) {
    super(message);
  }
}

/**
 * The Flink SQL Gateway REST API (v2: results with rowFormat=JSON). Fetching never
 * blocks on the gateway's side: an empty page means "nothing yet", and the caller polls
 * with its own backoff (and stops polling when its consumer is behind).
 */
export class SqlGatewayClient {
  constructor(private readonly baseUrl: string) {}

  private url(path: string): string {
    return `${this.baseUrl}/v2${path}`;
  }

  /**
   * Opens a session. While the SQL Gateway is not up yet (refused, unreachable, or 502/503/504
   * from a proxy in front of it: on Kubernetes its pod may still be starting) it tries again,
   * for `waitMs` at most, then says so.
   */
  async openSession(name: string, properties: Record<string, string>, options: { waitMs?: number; signal?: AbortSignal } = {}): Promise<string> {
    const waitMs = options.waitMs ?? 0;
    let failure: unknown;
    const open = () =>
      flinkJson<{ sessionHandle: string }>(this.url('/sessions'), {
        method: 'POST',
        body: { sessionName: name, properties },
        signal: options.signal,
      }).then(
        (body) => body.sessionHandle,
        (error: unknown) => {
          if (waitMs === 0 || !notUpYet(error) || options.signal?.aborted) throw error;
          failure = error;
          return undefined;
        },
      );
    return pollUntil(open, {
      timeoutMs: waitMs,
      intervalMs: { first: 50, max: SECOND },
      signal: options.signal,
      timeoutError: () =>
        new SqlGatewayUnavailableError(`The SQL Gateway (${this.baseUrl}) did not answer within ${Math.round(waitMs / SECOND)} s: ${describeFailure(failure)}`, {
          cause: failure,
        }),
    });
  }

  async closeSession(session: string): Promise<void> {
    await flinkJson(this.url(`/sessions/${session}`), { method: 'DELETE' });
  }

  async submit(session: string, statement: string): Promise<string> {
    try {
      const body = await flinkJson<{ operationHandle: string }>(this.url(`/sessions/${session}/statements`), {
        method: 'POST',
        body: { statement },
        timeoutMs: 60 * SECOND,
      });
      return body.operationHandle;
    } catch (error) {
      throw asStatementError(error);
    }
  }

  /** Submits a statement (DDL) and waits until Flink has run it. */
  async execute(session: string, statement: string, timeoutMs = 30 * SECOND): Promise<void> {
    const operation = await this.submit(session, statement);
    const finished = async () => {
      const { status } = await flinkJson<{ status: string }>(this.url(`/sessions/${session}/operations/${operation}/status`));
      if (status === 'ERROR' || status === 'CANCELED' || status === 'CLOSED' || status === 'TIMEOUT') {
        // The result of a failed operation carries Flink's error.
        await this.fetch(session, operation, 0);
        throw new FlinkStatementError(`The statement ended ${status}`, null, null);
      }
      return status === 'FINISHED' || undefined;
    };
    await pollUntil(finished, {
      timeoutMs,
      intervalMs: { first: 5, max: 100 },
      timeoutError: () => new FlinkStatementError(`The statement did not finish within ${timeoutMs / SECOND} s`, null, null),
    });
    await this.closeOperation(session, operation).catch(() => undefined);
  }

  async fetch(session: string, operation: string, token: number): Promise<ResultPage> {
    let body: any;
    try {
      body = await flinkJson(this.url(`/sessions/${session}/operations/${operation}/result/${token}?rowFormat=JSON`));
    } catch (error) {
      throw asStatementError(error);
    }
    const results = body.results ?? {};
    const next = typeof body.nextResultUri === 'string' ? /\/result\/(\d+)/.exec(body.nextResultUri)?.[1] : undefined;
    return {
      resultType: body.resultType,
      jobId: body.jobID ?? null,
      columns: Array.isArray(results.columns)
        ? results.columns.map((c: { name: string; logicalType: LogicalType }) => ({ name: c.name, type: typeName(c.logicalType) }))
        : null,
      rows: Array.isArray(results.data)
        ? results.data.map((row: { kind: RowKind; fields: unknown[] }) => ({ kind: row.kind, values: row.fields }))
        : [],
      nextToken: next === undefined ? undefined : Number(next),
    };
  }

  /** Closing a running SELECT cancels its job (asynchronously). */
  async closeOperation(session: string, operation: string): Promise<void> {
    await flinkJson(this.url(`/sessions/${session}/operations/${operation}/close`), { method: 'DELETE' });
  }
}

/**
 * Plans a Kafka/JSON preview in a throwaway session, so the SQL Gateway has loaded and
 * run its planner before the first user waits on it (≈2 s of a first preview otherwise).
 * Nothing is submitted and nothing connects to Kafka: planning does neither. Waits for a
 * gateway that does not answer yet as `openSession` does; returns how long it took.
 */
export async function warmUpGateway(gatewayUrl: string, options: { waitMs?: number; signal?: AbortSignal } = {}): Promise<number> {
  const started = Date.now();
  const client = new SqlGatewayClient(gatewayUrl);
  const session = await client.openSession('weir-warm-up', { 'execution.runtime-mode': 'streaming' }, options);
  try {
    await client.execute(
      session,
      "CREATE TEMPORARY TABLE warm_up (id BIGINT, amount DECIMAL(12, 2), who STRING) WITH ('connector' = 'kafka', " +
        "'topic' = 'weir-warm-up', 'properties.bootstrap.servers' = '127.0.0.1:9', 'scan.startup.mode' = 'earliest-offset', " +
        "'format' = 'json')",
    );
    await client.execute(session, 'EXPLAIN PLAN FOR SELECT who, COUNT(*), SUM(amount) FROM warm_up WHERE id > 0 GROUP BY who', 60 * SECOND);
  } finally {
    await client.closeSession(session).catch(() => undefined);
  }
  return Date.now() - started;
}

interface LogicalType {
  readonly type: string;
  readonly nullable?: boolean;
  readonly length?: number;
  readonly precision?: number;
  readonly scale?: number;
  readonly fields?: readonly { name: string; fieldType: LogicalType }[];
  readonly elementType?: LogicalType;
  readonly keyType?: LogicalType;
  readonly valueType?: LogicalType;
}

/** Flink's JSON logical type as SQL text. */
export function typeName(t: LogicalType | undefined): string {
  if (!t) return 'UNKNOWN';
  const nn = t.nullable === false ? ' NOT NULL' : '';
  switch (t.type) {
    case 'DECIMAL':
      return `DECIMAL(${t.precision}, ${t.scale})${nn}`;
    case 'CHAR':
    case 'VARCHAR':
    case 'BINARY':
    case 'VARBINARY':
      return `${t.type === 'VARCHAR' && t.length === 2147483647 ? 'STRING' : `${t.type}(${t.length})`}${nn}`;
    case 'TIMESTAMP_WITHOUT_TIME_ZONE':
      return `TIMESTAMP(${t.precision ?? 6})${nn}`;
    case 'TIMESTAMP_WITH_LOCAL_TIME_ZONE':
      return `TIMESTAMP_LTZ(${t.precision ?? 6})${nn}`;
    case 'TIME_WITHOUT_TIME_ZONE':
      return `TIME(${t.precision ?? 0})${nn}`;
    case 'ARRAY':
    case 'MULTISET':
      return `${t.type}<${typeName(t.elementType)}>${nn}`;
    case 'MAP':
      return `MAP<${typeName(t.keyType)}, ${typeName(t.valueType)}>${nn}`;
    case 'ROW':
      return `ROW<${(t.fields ?? []).map((f) => `\`${f.name}\` ${typeName(f.fieldType)}`).join(', ')}>${nn}`;
    default:
      return `${t.type}${nn}`;
  }
}

/**
 * Flink's answer to a bad statement is an exception chain with stack traces; the user
 * wants the one line that says what is wrong, and where.
 */
export function asStatementError(error: unknown): unknown {
  if (!(error instanceof FlinkRestError)) return error;
  const lines = error.errors.join('\n').split('\n').map((line) => line.trim());
  const messages = lines
    .map((line) => /^(?:Caused by: )?(?:[\w$]+\.)+[\w$]*(?:Exception|Error): (.+)$/.exec(line)?.[1])
    .filter((m): m is string => !!m && !m.startsWith('Failed to fetchResults') && !/^Internal server error/.test(m));
  const positioned = messages.find((m) => /line \d+, column \d+/.test(m));
  const message = positioned ?? messages.at(-1) ?? error.errors[0]?.split('\n')[0] ?? error.message;
  const at = /line (\d+), column (\d+)/.exec(message);
  return new FlinkStatementError(message.slice(0, 2000), at ? Number(at[1]) : null, at ? Number(at[2]) : null);
}

/**
 * How long to wait before fetching again after an empty page: 10 ms doubling, capped at
 * 50 ms until the first row (a preview's time to first row is what its user waits on),
 * then at 250 ms (an idle stream is polled four times a second). Rows reset it.
 */
export class FetchBackoff {
  private delay = 10;
  private seenRows = false;

  /** The wait after a page with `rows` rows; 0 after a page with rows (fetch again at once). */
  next(rows: number): number {
    if (rows > 0) {
      this.seenRows = true;
      this.delay = 10;
      return 0;
    }
    const wait = this.delay;
    this.delay = Math.min(this.delay * 2, this.seenRows ? 250 : 50);
    return wait;
  }
}
