import type { Logger } from '../platform/logger.js';
import { flinkJson } from './flink-json.js';

const ENDED = new Set(['FINISHED', 'FAILED', 'CANCELED']);

/**
 * The TaskManagers a job's tasks were placed on (running or ended), from the JobManager's
 * REST API; empty while none is placed yet.
 */
export async function taskManagersOfJob(jobManagerUrl: string, jobId: string): Promise<string[]> {
  const job = await flinkJson<{ vertices?: { id: string }[] }>(`${jobManagerUrl}/jobs/${jobId}`);
  const ids = new Set<string>();
  for (const vertex of job.vertices ?? []) {
    const where = await flinkJson<{ taskmanagers?: { 'taskmanager-id': string }[] }>(`${jobManagerUrl}/jobs/${jobId}/vertices/${vertex.id}/taskmanagers`);
    for (const tm of where.taskmanagers ?? []) ids.add(tm['taskmanager-id']);
  }
  return [...ids];
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
        if (ENDED.has(job.status)) this.settled.add(job.id);
      } catch (error) {
        this.logger.debug({ err: error, jobId: job.id }, 'could not tell where a job ran; will look again');
      }
    }
    return ids;
  }
}
