import type { Logger } from '../platform/logger.js';
import { flinkJson, hasEnded } from './flink-rest.js';
import { pollUntil } from '../platform/poll.js';
import { SECOND } from '../platform/time.js';


interface JobDetails {
  readonly state: string;
  readonly vertices?: readonly { readonly id: string; readonly status: string }[];
}

/** The TaskManagers the tasks of these vertices were placed on (running or ended). */
async function taskManagersOfVertices(jobManagerUrl: string, jobId: string, vertices: JobDetails['vertices']): Promise<string[]> {
  const ids = new Set<string>();
  for (const vertex of vertices ?? []) {
    const where = await flinkJson<{ taskmanagers?: { 'taskmanager-id': string }[] }>(`${jobManagerUrl}/jobs/${jobId}/vertices/${vertex.id}/taskmanagers`);
    for (const tm of where.taskmanagers ?? []) ids.add(tm['taskmanager-id']);
  }
  return [...ids];
}

/**
 * The TaskManagers a job's tasks were placed on (running or ended), from the JobManager's
 * REST API; empty while none is placed yet.
 */
export async function taskManagersOfJob(jobManagerUrl: string, jobId: string): Promise<string[]> {
  const job = await flinkJson<JobDetails>(`${jobManagerUrl}/jobs/${jobId}`);
  return taskManagersOfVertices(jobManagerUrl, jobId, job.vertices);
}

/** The job failed or was cancelled before all its tasks ran (`message`: Flink's root cause), or did not run in time. */
export class JobPlacementError extends Error {
  override readonly name = 'JobPlacementError';
}

/**
 * Which TaskManagers run the job's tasks, once all of them run (or finished: a FINISHED
 * job's vertices are FINISHED). Throws JobPlacementError if the job fails or is cancelled
 * first (with Flink's root cause), or after `timeoutMs`.
 */
export async function waitForPlacement(jobManagerUrl: string, jobId: string, timeoutMs: number): Promise<string[]> {
  return pollUntil(
    async () => {
      const job = await flinkJson<JobDetails>(`${jobManagerUrl}/jobs/${jobId}`);
      if (job.state === 'FAILED' || job.state === 'CANCELED') {
        const exceptions = await flinkJson<{ 'root-exception'?: string }>(`${jobManagerUrl}/jobs/${jobId}/exceptions`).catch(() => ({}) as { 'root-exception'?: string });
        throw new JobPlacementError((exceptions['root-exception'] ?? `The preview job ended ${job.state}`).split('\n')[0]!);
      }
      const vertices = job.vertices ?? [];
      if (vertices.length === 0 || !vertices.every((v) => v.status === 'RUNNING' || v.status === 'FINISHED')) return undefined;
      const ids = await taskManagersOfVertices(jobManagerUrl, jobId, vertices);
      return ids.length > 0 ? ids : undefined;
    },
    {
      timeoutMs,
      intervalMs: 50,
      timeoutError: () => new JobPlacementError(`The preview job did not start running within ${Math.round(timeoutMs / SECOND)} s`),
    },
  );
}

/**
 * Where the jobs the JobManager knows ran: a pool asks after a preview ended without
 * seeing where its job landed, so that a TaskManager that ran it is never taken for
 * fresh. An ended job is asked about once.
 */
export class JobPlacements {
  private readonly settled = new Set<string>();

  constructor(private readonly logger: Logger) {}

  /** Every TaskManager a job the JobManager still knows ran (or runs) on, ended jobs already answered excepted. */
  async taskManagersOfJobs(jobManagerUrl: string): Promise<Set<string>> {
    const ids = new Set<string>();
    const { jobs } = await flinkJson<{ jobs?: { id: string; status: string }[] }>(`${jobManagerUrl}/jobs`);
    for (const job of jobs ?? []) {
      if (this.settled.has(job.id)) continue;
      try {
        for (const id of await taskManagersOfJob(jobManagerUrl, job.id)) ids.add(id);
        if (hasEnded(job.status)) this.settled.add(job.id);
      } catch (error) {
        this.logger.debug({ err: error, jobId: job.id }, 'could not tell where a job ran; will look again');
      }
    }
    return ids;
  }
}
