import { setTimeout as sleep } from 'node:timers/promises';
import { pollUntil } from '../platform/poll.js';
import { SECOND } from '../platform/time.js';
import { parseStoredJson } from '../streams/stored-json.js';
import type { ObservedPhase } from '../jobs/job-spec.js';

/** An HTTP answer from Flink (JobManager or SQL Gateway REST) that was not a success. */
export class FlinkRestError extends Error {
  override readonly name = 'FlinkRestError';
  constructor(
    readonly status: number,
    readonly url: string,
    /** Flink's `errors` array: a message, then often a stack trace. */
    readonly errors: readonly string[],
  ) {
    super(`${url}: HTTP ${status}${errors[0] ? `: ${errors[0].split('\n')[0]}` : ''}`);
  }
}

/**
 * Calls a Flink REST endpoint; the answer is parsed losslessly (numbers a double cannot
 * hold stay strings of digits), which matters for result rows with BIGINT and DECIMAL.
 */
export async function flinkJson<T = any>(
  url: string,
  init: { method?: string; body?: unknown; timeoutMs?: number; signal?: AbortSignal | undefined } = {},
): Promise<T> {
  const timeout = AbortSignal.timeout(init.timeoutMs ?? 10 * SECOND);
  const response = await fetch(url, {
    method: init.method ?? 'GET',
    ...(init.body !== undefined ? { body: JSON.stringify(init.body), headers: { 'content-type': 'application/json' } } : {}),
    signal: init.signal ? AbortSignal.any([timeout, init.signal]) : timeout,
  });
  const text = await response.text();
  const parsed = text.trim() === '' ? {} : (parseStoredJson(text) as any);
  if (!response.ok) {
    const errors = Array.isArray(parsed?.errors) ? parsed.errors.map(String) : [text.slice(0, 2000)];
    throw new FlinkRestError(response.status, url, errors);
  }
  return parsed as T;
}

/** The system error code under a failed fetch (`ECONNREFUSED`, `ENOTFOUND`, …), if any. */
export const causeCode = (error: unknown): string | undefined => (error as { cause?: { code?: string } }).cause?.code;

/** A failed call in a sentence: its message, with the code under it (`fetch failed (ECONNREFUSED)`). */
export function describeFailure(error: unknown): string {
  const code = causeCode(error);
  const message = error instanceof Error ? error.message : String(error);
  return code ? `${message} (${code})` : message;
}

/** The job states Flink never leaves: the job is over (its slots are free). */
const ENDED_STATES: ReadonlySet<string> = new Set(['FINISHED', 'FAILED', 'CANCELED']);
export const hasEnded = (state: string): boolean => ENDED_STATES.has(state);

/** A Flink job's state (JobManager REST `/jobs/<id>`), mapped onto Weir's phases. */
export interface JobStatus {
  readonly phase: ObservedPhase;
  readonly reason: string | null;
}

const firstLine = (text: unknown): string | null => (typeof text === 'string' ? (text.split('\n')[0]?.slice(0, 1000) ?? null) : null);

/** undefined: the REST API did not answer (yet). */
export async function jobStatus(jobManagerUrl: string, flinkJobId: string, timeoutMs = 2 * SECOND): Promise<JobStatus | undefined> {
  const jobUrl = `${jobManagerUrl}/jobs/${flinkJobId}`;
  let job: { state: string; vertices?: { status: string }[] };
  try {
    job = await flinkJson(jobUrl, { timeoutMs });
  } catch {
    return undefined;
  }
  const rootException = async () => {
    try {
      const exceptions = await flinkJson(`${jobUrl}/exceptions?maxExceptions=1`, { timeoutMs });
      return firstLine(exceptions['root-exception'] ?? exceptions.exceptionHistory?.entries?.[0]?.exceptionName);
    } catch {
      return null;
    }
  };
  switch (job.state) {
    case 'RUNNING':
      // The job is RUNNING before its tasks are: report RUNNING once every task runs.
      return (job.vertices ?? []).every((v) => v.status === 'RUNNING' || v.status === 'FINISHED')
        ? { phase: 'RUNNING', reason: null }
        : { phase: 'STARTING', reason: null };
    case 'CREATED':
    case 'INITIALIZING':
    case 'RECONCILING':
      return { phase: 'STARTING', reason: null };
    case 'RESTARTING':
    case 'FAILING':
    case 'SUSPENDED':
      return { phase: 'RECOVERING', reason: await rootException() };
    case 'FAILED':
      return { phase: 'FAILED', reason: await rootException() };
    case 'FINISHED':
      return { phase: 'FINISHED', reason: null };
    case 'CANCELLING':
    case 'CANCELED':
      return { phase: 'FAILED', reason: 'The Flink job was cancelled outside Weir.' };
    default:
      return { phase: 'STARTING', reason: `Flink job state ${job.state}` };
  }
}

/** A savepoint Flink did not take: `message` is Flink's reason (or that it took too long). */
export class SavepointError extends Error {
  override readonly name = 'SavepointError';
}

/** Flink refused a savepoint only because the job's tasks are not all running yet (or again). */
const TASKS_NOT_RUNNING = /not all required tasks are currently running|is not being executed at the moment/i;

/**
 * Flink's stop-with-savepoint (JobManager REST `POST /jobs/<id>/stop`, without draining):
 * the sources stop, a savepoint is taken (committing what exactly-once sinks wrote) and
 * the job ends FINISHED. A job whose tasks are still starting is asked again until they
 * run. Resolves to the savepoint's location; throws SavepointError when Flink says it
 * failed, or when it is not done within `timeoutMs`.
 */
export function stopWithSavepoint(jobManagerUrl: string, flinkJobId: string, targetDirectory: string, timeoutMs: number): Promise<string> {
  return savepoint(`${jobManagerUrl}/jobs/${flinkJobId}`, { path: 'stop', body: { targetDirectory, drain: false } }, timeoutMs);
}

/**
 * A savepoint of a job that runs on (JobManager REST `POST /jobs/<id>/savepoints`, in
 * Flink's canonical format so any state backend can restore it). Resolves to its
 * location; throws SavepointError like stopWithSavepoint.
 */
export function triggerSavepoint(jobManagerUrl: string, flinkJobId: string, targetDirectory: string, timeoutMs: number): Promise<string> {
  const body = { 'target-directory': targetDirectory, 'cancel-job': false, formatType: 'CANONICAL' };
  return savepoint(`${jobManagerUrl}/jobs/${flinkJobId}`, { path: 'savepoints', body }, timeoutMs);
}

async function savepoint(jobUrl: string, request: { path: string; body: unknown }, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await savepointOnce(jobUrl, request, Math.max(0, deadline - Date.now()));
    } catch (error) {
      // A failed savepoint leaves the job running: asking again is safe.
      if (!(error instanceof SavepointError) || !TASKS_NOT_RUNNING.test(error.message) || Date.now() >= deadline) throw error;
      await sleep(250);
    }
  }
}

async function savepointOnce(jobUrl: string, request: { path: string; body: unknown }, timeoutMs: number): Promise<string> {
  let trigger: { 'request-id': string };
  try {
    trigger = await flinkJson(`${jobUrl}/${request.path}`, { method: 'POST', body: request.body });
  } catch (error) {
    throw new SavepointError(`Flink did not take the savepoint request: ${describeFailure(error)}`);
  }
  const status = () =>
    flinkJson<{ status: { id: string }; operation?: { location?: string; 'failure-cause'?: { 'stack-trace'?: string } } }>(
      `${jobUrl}/savepoints/${trigger['request-id']}`,
    ).catch(() => undefined); // the REST API may be busy: ask again
  const outcome = await pollUntil(
    async () => {
      const answer = await status();
      return answer?.status.id === 'COMPLETED' ? (answer.operation ?? {}) : undefined;
    },
    {
      intervalMs: { first: 50, max: 500 },
      timeoutMs,
      timeoutError: () => new SavepointError(`the savepoint was not done in time`),
    },
  );
  if (outcome.location) return outcome.location;
  const trace = outcome['failure-cause']?.['stack-trace'] ?? 'Flink gave no reason';
  throw new SavepointError(`the savepoint failed: ${savepointFailure(trace)}`);
}

/** The telling line of a failed savepoint's stack trace: its innermost cause's message. */
function savepointFailure(trace: string): string {
  const causes = trace.split('\n').filter((line) => /^(Caused by: )?[\w.$]+(Exception|Error)\b/.test(line.trim()));
  const last = causes.at(-1)?.trim().replace(/^Caused by: /, '') ?? trace.split('\n')[0] ?? trace;
  return last.slice(0, 500);
}
