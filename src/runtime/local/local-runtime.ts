import { chmod, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../platform/logger.js';
import { mkdirPrivate, PRIVATE_FILE_MODE } from '../../platform/private-files.js';
import { SECOND } from '../../platform/time.js';
import type { StreamStorage } from '../../streams/stream-storage.js';
import type { JobKind } from '../../jobs/job.table.js';
import { TASK_HEAP_MB } from '../../jobs/task-size.js';
import type { ObservedJob, Runtime } from '../runtime.js';
import { streamsOf, type JobRef, type JobSpec } from '../../jobs/job-spec.js';
import type { FlinkDistribution } from './flink-distribution.js';
import { jobStatus } from '../../flink/flink-rest.js';
import { jobStatements } from '../../flink/job-sql.js';
import { JOB_RESTART_STRATEGY } from '../../flink/restart-strategy.js';
import { findMarkedProcesses, markerArg, scopeOf, spawnDetached, stopProcess, type RunningProcess } from './processes.js';
import { readRunnerEvents } from './runner-events.js';

const MARKER = 'job';

export interface LocalRuntimeOptions {
  /** Where jobs keep their spec, logs and checkpoints: `<dir>/jobs/<job uuid>/`. */
  readonly dataDir: string;
  readonly distribution: () => Promise<FlinkDistribution>;
  readonly storage: StreamStorage;
  readonly logger: Logger;
  readonly checkpointIntervalMs?: number;
  readonly stopGraceMs?: number;
  /**
   * How long a job process that was up may leave its REST API unanswered before it is
   * reported hung, so that the reconciler restarts it from its last checkpoint (default 60 s).
   */
  readonly unresponsiveLimitMs?: number;
  /** How long a job process may take to submit its job (announce its REST port) before it is reported hung, to be started again (default 300 s). */
  readonly startLimitMs?: number;
  readonly javaBin?: string;
}

/** What the runtime remembers of a job it started, next to the job's files. */
interface RunRecord {
  readonly kind: JobKind;
  readonly accountId: string;
  readonly specVersion: number;
  readonly flinkJobId: string;
  readonly startedAt: string;
}

interface Marked extends RunningProcess {
  readonly kind: JobKind;
  readonly accountId: string;
  readonly id: string;
  readonly specVersion: number;
}

/**
 * Job processes carry `job:<scope>:<kind>:<account>:<job>:<spec version>`. The scope
 * names the data folder, so two gateways on one machine (or two test files) never see,
 * adopt or remove each other's jobs.
 */
function markerOf(scope: string, spec: JobRef & { specVersion: number }): string {
  return `${MARKER}:${scope}:${spec.kind}:${spec.accountId}:${spec.id}:${spec.specVersion}`;
}

function parseMarker(pid: number, marker: string): Marked | undefined {
  const [, , kind, accountId, id, version] = marker.split(':');
  if ((kind !== 'PIPELINE' && kind !== 'CONNECTION') || !accountId || !id) return undefined;
  return { pid, marker, kind, accountId, id, specVersion: Number(version) };
}

/** The same Flink job id on every (re)start: checkpoints stay in one folder. */
const flinkJobIdOf = (id: string) => id.replaceAll('-', '');

/**
 * The local runtime: each active job is one JVM on this machine running Weir's SQL
 * runner (an embedded Flink application cluster); streams are topics on a local Kafka
 * broker. Everything it knows comes from the processes themselves (found by the marker
 * in their command line) and the files in each job's folder, so a restarted gateway
 * adopts running jobs instead of starting them twice.
 */
export class LocalRuntime implements Runtime {
  readonly name = 'local';
  private readonly jobsDir: string;
  private readonly checkpointIntervalMs: number;
  private readonly stopGraceMs: number;
  private readonly unresponsiveLimitMs: number;
  private readonly startLimitMs: number;
  /** Since when each job process (by pid) that was up has not answered, while it still does not. */
  private readonly silentSince = new Map<number, number>();
  /** Job processes (by pid) reported hung: stopped without a grace they would not use. */
  private readonly hung = new Set<number>();
  /** The marker prefix of this runtime's job processes. */
  readonly markerPrefix: string;

  constructor(private readonly options: LocalRuntimeOptions) {
    this.jobsDir = join(options.dataDir, 'jobs');
    this.markerPrefix = `${MARKER}:${scopeOf(options.dataDir)}:`;
    this.checkpointIntervalMs = options.checkpointIntervalMs ?? 5 * SECOND;
    this.stopGraceMs = options.stopGraceMs ?? 10 * SECOND;
    this.unresponsiveLimitMs = options.unresponsiveLimitMs ?? 60 * SECOND;
    this.startLimitMs = options.startLimitMs ?? 300 * SECOND;
  }

  private jobDir(id: string): string {
    return join(this.jobsDir, id);
  }

  private async running(id?: string): Promise<Marked[]> {
    const found = await findMarkedProcesses(this.markerPrefix);
    return found.map((p) => parseMarker(p.pid, p.marker)).filter((m): m is Marked => !!m && (!id || m.id === id));
  }

  async apply(spec: JobSpec): Promise<void> {
    const log = this.options.logger.child({ accountId: spec.accountId, jobId: spec.id, kind: spec.kind });
    const current = await this.running(spec.id);
    if (current.some((p) => p.specVersion === spec.specVersion)) return;
    // An older spec version still running goes first: one process per job, always.
    for (const old of current) await this.stop(old);

    const distribution = await this.options.distribution();
    const storage = this.options.storage;
    const streams = streamsOf(spec);
    for (const stream of streams) await storage.ensureTopic(storage.topicFor(spec.accountId, stream.id));
    // New credentials for each process: the one stopped above held the last ones.
    const access = await storage.grantJob(spec);

    const dir = this.jobDir(spec.id);
    const flinkJobId = flinkJobIdOf(spec.id);
    // Checkpoints are kept per spec version: state of changed SQL may not fit the new plan.
    const checkpoints = join(dir, 'checkpoints', `v${spec.specVersion}`);
    // Every Flink JVM unpacks ~60 MB into its temp folder; a killed one leaves it behind.
    await rm(join(dir, 'tmp'), { recursive: true, force: true });
    await mkdirPrivate(join(dir, 'tmp'));
    await mkdirPrivate(checkpoints);
    const restoreFrom = await latestCheckpoint(join(checkpoints, flinkJobId));

    const runnerSpec = {
      name: `weir-${spec.kind.toLowerCase()}-${spec.name}`,
      parallelism: spec.taskCount,
      restAddress: '127.0.0.1',
      restPort: 0,
      checkpointDir: `file://${checkpoints}`,
      checkpointIntervalMs: spec.checkpointIntervalMs ?? this.checkpointIntervalMs,
      ...(restoreFrom ? { restoreFrom: `file://${restoreFrom}` } : {}),
      jobId: flinkJobId,
      config: JOB_RESTART_STRATEGY,
      statements: jobStatements(spec, {
        access,
        topicFor: (stream) => storage.topicFor(spec.accountId, stream.id),
        groupId: `weir-${spec.id}`,
      }),
    };
    // The spec may carry connection secrets: readable by this user only.
    const specFile = join(dir, 'runner-spec.json');
    await writeFile(specFile, JSON.stringify(runnerSpec, null, 2), { mode: PRIVATE_FILE_MODE });
    await chmod(specFile, PRIVATE_FILE_MODE);
    const record: RunRecord = {
      kind: spec.kind,
      accountId: spec.accountId,
      specVersion: spec.specVersion,
      flinkJobId,
      startedAt: new Date().toISOString(),
    };
    await writeFile(join(dir, 'run.json'), JSON.stringify(record), { mode: PRIVATE_FILE_MODE });
    await writeFile(join(dir, 'events.log'), '', { mode: PRIVATE_FILE_MODE });

    const { pid } = await spawnDetached({
      command: this.options.javaBin ?? 'java',
      args: [
        ...distribution.jvmOptions,
        `-Xms64m`,
        `-Xmx${TASK_HEAP_MB[spec.taskSize]}m`,
        `-Djava.io.tmpdir=${join(dir, 'tmp')}`,
        `-Dlog4j2.configurationFile=${distribution.log4jConfig}`,
        markerArg(markerOf(this.markerPrefix.split(':')[1]!, spec)),
        '-cp',
        `${distribution.runnerJar}:${distribution.flinkClasspath}`,
        'dev.weir.runner.SqlRunner',
        '--spec',
        specFile,
      ],
      logFile: join(dir, 'runner.log'),
      stdoutFile: join(dir, 'events.log'),
    });
    log.info({ pid, specVersion: spec.specVersion, restoreFrom: restoreFrom ?? null }, 'job process started');
  }

  async remove(ref: JobRef): Promise<void> {
    for (const process of await this.running(ref.id)) await this.stop(process);
    await this.options.storage.revokeJob(ref);
    // Checkpoints stay (a later activation may restore them); the run is over.
    await rm(join(this.jobDir(ref.id), 'run.json'), { force: true });
    await rm(join(this.jobDir(ref.id), 'events.log'), { force: true });
    await rm(join(this.jobDir(ref.id), 'tmp'), { recursive: true, force: true });
    this.options.logger.info({ accountId: ref.accountId, jobId: ref.id }, 'job process stopped');
  }

  async observe(): Promise<ObservedJob[]> {
    const processes = await this.running();
    const live = new Map(processes.map((p) => [p.id, p]));
    const livePids = new Set(processes.map((p) => p.pid));
    for (const pid of this.silentSince.keys()) if (!livePids.has(pid)) this.silentSince.delete(pid);
    for (const pid of this.hung) if (!livePids.has(pid)) this.hung.delete(pid);
    const observed: ObservedJob[] = [];
    let entries: string[] = [];
    try {
      entries = await readdir(this.jobsDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    for (const id of entries) {
      const run = await readRun(join(this.jobDir(id), 'run.json'));
      const process = live.get(id);
      live.delete(id);
      if (!run) {
        if (process) observed.push({ ...process, phase: 'STARTING', reason: null });
        continue;
      }
      const events = await readRunnerEvents(join(this.jobDir(id), 'events.log'));
      const ref = { kind: run.kind, id, accountId: run.accountId, specVersion: process?.specVersion ?? run.specVersion };
      if (events.final && events.final.event !== 'JOB_SUSPENDED') {
        // The runner said how it ended; its process may still be exiting.
        observed.push({
          ...ref,
          phase: events.final.event === 'JOB_FINISHED' ? 'FINISHED' : 'FAILED',
          reason: events.final.event === 'JOB_FINISHED' ? null : events.final.message,
        });
        continue;
      }
      if (!process) continue; // died without a word (kill -9, OOM): absent, to be restarted
      if (!events.restPort) {
        // Not up yet. A JVM that never gets there (stuck before it submits its job) is hung.
        const startingMs = Date.now() - Date.parse(run.startedAt);
        if (startingMs >= this.startLimitMs) {
          const reason = `The job process did not start within ${this.startLimitMs / SECOND} s; it was stopped and starts again.`;
          observed.push(this.hungJob(ref, process, reason, { startingMs }));
        } else observed.push({ ...ref, phase: 'STARTING', reason: null });
        continue;
      }
      const status = await jobStatus(`http://127.0.0.1:${events.restPort}`, run.flinkJobId);
      if (status) {
        this.silentSince.delete(process.pid);
        observed.push({ ...ref, ...status });
        continue;
      }
      // Up before, silent now: busy, or dying (a killed process is listed until it is gone).
      // Not STARTING: that would tell a running job it went back to starting. Silent for
      // longer than the limit, it is hung (a stuck JVM, a GC that never ends).
      const now = Date.now();
      const since = this.silentSince.get(process.pid) ?? now;
      this.silentSince.set(process.pid, since);
      if (now - since >= this.unresponsiveLimitMs) {
        const reason = `The job process did not answer for ${this.unresponsiveLimitMs / SECOND} s; it was stopped and restarts from its latest checkpoint.`;
        observed.push(this.hungJob(ref, process, reason, { silentMs: now - since }));
      } else observed.push({ ...ref, phase: null, reason: null });
    }
    // Marked processes without a folder (deleted by hand): report them so they get removed.
    for (const process of live.values()) observed.push({ ...process, phase: 'STARTING', reason: null });
    return observed;
  }

  /**
   * A job process found hung, as observed: the reconciler removes the job (its process
   * then stops at once) and starts it again. `reason` is what the user reads.
   */
  private hungJob(ref: Omit<ObservedJob, 'phase' | 'reason'>, process: Marked, reason: string, measured: Record<string, number>): ObservedJob {
    this.options.logger.warn({ accountId: process.accountId, jobId: process.id, pid: process.pid, ...measured, reason }, 'job process hung');
    this.hung.add(process.pid);
    return { ...ref, phase: 'RECOVERING', reason, hung: true };
  }

  /** Stops a job process: with a grace to end cleanly, at once when it was found hung. */
  private async stop(process: Marked): Promise<void> {
    await stopProcess(process, this.hung.has(process.pid) ? 0 : this.stopGraceMs);
    this.hung.delete(process.pid);
  }

  /** Stops every job process (gateway shutdown); checkpoints stay for the next start. */
  async close(): Promise<void> {
    await Promise.all((await this.running()).map((p) => this.stop(p)));
  }

  /** Pids of the job processes (for tests and benchmarks). */
  async pids(): Promise<Map<string, number[]>> {
    const byJob = new Map<string, number[]>();
    for (const p of await this.running()) byJob.set(p.id, [...(byJob.get(p.id) ?? []), p.pid]);
    return byJob;
  }
}


async function readRun(file: string): Promise<RunRecord | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as RunRecord;
  } catch {
    return undefined;
  }
}

/** The highest completed checkpoint (`chk-<n>` holding `_metadata`), if any. */
export async function latestCheckpoint(dir: string): Promise<string | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return undefined;
  }
  const numbered = names
    .map((name) => /^chk-(\d+)$/.exec(name))
    .filter((m): m is RegExpExecArray => !!m)
    .sort((a, b) => Number(b[1]) - Number(a[1]));
  for (const match of numbered) {
    const candidate = join(dir, match[0]);
    try {
      await stat(join(candidate, '_metadata'));
      return candidate;
    } catch {
      // in progress when the process died
    }
  }
  return undefined;
}
