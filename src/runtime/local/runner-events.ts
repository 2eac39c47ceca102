import { readFile } from 'node:fs/promises';

/** How a runner ended, from the last line of its event stream. */
export interface FinalEvent {
  readonly event: 'JOB_FINISHED' | 'JOB_CANCELED' | 'JOB_SUSPENDED' | 'JOB_FAILED' | 'SPEC_INVALID' | 'RUNNER_ERROR';
  /** Flink's message for the failing ones. */
  readonly message: string | null;
}

export interface RunnerEvents {
  /** The job's REST port, once the runner reported the job submitted. */
  readonly restPort?: number;
  readonly final?: FinalEvent;
}

const FINAL = new Set(['JOB_FINISHED', 'JOB_CANCELED', 'JOB_SUSPENDED', 'JOB_FAILED', 'SPEC_INVALID', 'RUNNER_ERROR']);

/** Parses the runner's stdout: one `WEIR_<EVENT> <json>` line per event (flink/README.md). */
export function parseRunnerEvents(text: string): RunnerEvents {
  let restPort: number | undefined;
  let final: FinalEvent | undefined;
  for (const line of text.split('\n')) {
    const match = /^WEIR_([A-Z_]+) (\{.*\})\s*$/.exec(line);
    if (!match) continue;
    let fields: Record<string, unknown>;
    try {
      fields = JSON.parse(match[2]!);
    } catch {
      continue; // a line cut short by a crash
    }
    const event = match[1]!;
    if (event === 'JOB_SUBMITTED' && typeof fields.restPort === 'number') restPort = fields.restPort;
    else if (FINAL.has(event)) {
      const [error, root] = [fields.error, fields.rootCause].map((v) => (typeof v === 'string' && v !== 'null' ? v : undefined));
      // A failed job's own message is Flink's "Job execution failed."; what failed is the root.
      const message = event === 'JOB_FAILED' && error && root && !root.endsWith(error) ? `${error} Root cause: ${root}` : (error ?? root);
      final = { event: event as FinalEvent['event'], message: message ?? null };
    }
  }
  return { ...(restPort !== undefined ? { restPort } : {}), ...(final ? { final } : {}) };
}

export async function readRunnerEvents(file: string): Promise<RunnerEvents> {
  try {
    return parseRunnerEvents(await readFile(file, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw error;
  }
}
