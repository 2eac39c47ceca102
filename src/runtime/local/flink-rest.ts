import { SECOND } from '../../platform/time.js';
import type { ObservedPhase } from '../runtime.js';

/** What the job's own REST API says, mapped onto Weir's phases. */
export interface RestStatus {
  readonly phase: ObservedPhase | 'FINISHED';
  readonly reason: string | null;
}

async function getJson(url: string, timeoutMs: number): Promise<any> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

function firstLine(text: unknown): string | null {
  return typeof text === 'string' ? (text.split('\n')[0]?.slice(0, 1000) ?? null) : null;
}

/** undefined: the REST API did not answer (yet). */
export async function jobStatus(restPort: number, flinkJobId: string, timeoutMs = 2 * SECOND): Promise<RestStatus | undefined> {
  const base = `http://127.0.0.1:${restPort}`;
  let job: { state: string; vertices?: { status: string }[] };
  try {
    job = await getJson(`${base}/jobs/${flinkJobId}`, timeoutMs);
  } catch {
    return undefined;
  }
  const rootException = async () => {
    try {
      const exceptions = await getJson(`${base}/jobs/${flinkJobId}/exceptions?maxExceptions=1`, timeoutMs);
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
