import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join, relative, resolve } from 'node:path';
import type { Logger } from '../../platform/logger.js';
import { mkdirPrivate, PRIVATE_FILE_MODE } from '../../platform/private-files.js';
import { isUuid } from '../../platform/ids.js';
import { SECOND } from '../../platform/time.js';
import type { StreamStorage } from '../../streams/stream-storage.js';
import type { JobKind } from '../../jobs/job.table.js';
import { TASK_HEAP_MB } from '../../jobs/task-size.js';
import type { ObservedJob, RemoveOptions, RemoveResult, Runtime, TakenSnapshot } from '../runtime.js';
import { streamsOf, type JobRef, type JobSpec } from '../../jobs/job-spec.js';
import type { FlinkDistribution } from './flink-distribution.js';
import { jobStatus, SavepointError, stopWithSavepoint, triggerSavepoint } from '../../flink/flink-rest.js';
import { jobStatements } from '../../flink/job-sql.js';
import { JOB_RESTART_STRATEGY } from '../../flink/restart-strategy.js';
import { findMarkedProcesses, markerArg, scopeOf, spawnDetached, stopProcess, type RunningProcess } from './processes.js';
import { readRunnerEvents } from './runner-events.js';
import { completeSnapshot, latestCheckpoint, latestSnapshot, listDir, pathOf, removeOtherGenerations, sizeOf } from './state-files.js';

const MARKER = 'job';

export interface LocalRuntimeOptions {
  /** Where jobs keep their spec, logs and checkpoints: `<dir>/jobs/<job uuid>/`. */
  readonly dataDir: string;
  readonly distribution: () => Promise<FlinkDistribution>;
  readonly storage: StreamStorage;
  readonly logger: Logger;
  readonly checkpointIntervalMs?: number;
  readonly stopGraceMs?: number;
  /** How long a deactivated job may take to stop with a savepoint before it is stopped without one (default 60 s). */
  readonly savepointTimeoutMs?: number;
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
  /** The state folder of the run's generation, `state/g<n>` (absent in records older than generations). */
  readonly stateDir?: string;
}

/** What a job's folder says of it while no process runs: enough to find and discard its state. */
interface JobRecord {
  readonly kind: JobKind;
  readonly accountId: string;
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
  private readonly savepointTimeoutMs: number;
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
    this.savepointTimeoutMs = options.savepointTimeoutMs ?? 60 * SECOND;
    this.unresponsiveLimitMs = options.unresponsiveLimitMs ?? 60 * SECOND;
    this.startLimitMs = options.startLimitMs ?? 300 * SECOND;
  }

  private jobDir(id: string): string {
    return join(this.jobsDir, id);
  }

  /**
   * Checkpoints of one state generation: `<job dir>/state/g<n>/checkpoints` (dropped with
   * the generation). Savepoints before snapshots were kept went to `state/g<n>/savepoints`.
   */
  private stateDir(id: string, generation: number): string {
    return join(this.jobDir(id), 'state', `g${generation}`);
  }

  /** Savepoints of one generation: `<job dir>/savepoints/g<n>/savepoint-*`, kept until deleted one by one (they outlive their generation). */
  private savepointDir(id: string, generation: number): string {
    return join(this.jobDir(id), 'savepoints', `g${generation}`);
  }

  private async running(id?: string): Promise<Marked[]> {
    const found = await findMarkedProcesses(this.markerPrefix);
    return found.map((p) => parseMarker(p.pid, p.marker)).filter((m): m is Marked => !!m && (!id || m.id === id));
  }

  async apply(spec: JobSpec): Promise<void> {
    const log = this.options.logger.child({ accountId: spec.accountId, jobId: spec.id, kind: spec.kind });
    const current = await this.running(spec.id);
    if (current.some((p) => p.specVersion === spec.specVersion)) return;
    const dir = this.jobDir(spec.id);
    const stateDir = this.stateDir(spec.id, spec.state.generation);
    // An older spec version still running goes first: one process per job, always. Of the
    // same generation (a new task count, say), it stops with a savepoint to start from.
    const previous = await readRun(join(dir, 'run.json'));
    for (const old of current) {
      if (previous?.stateDir === stateDir) {
        // Its savepoint is the redeploy's own, not a snapshot: it goes with the generation.
        const { note } = await this.stopWithSavepoint(old, 'redeploy');
        if (note) log.warn({ reason: note }, 'redeploying without a savepoint');
      } else await this.stop(old);
    }

    const distribution = await this.options.distribution();
    const storage = this.options.storage;
    const streams = streamsOf(spec);
    for (const stream of streams) await storage.ensureTopic(storage.topicFor(spec.accountId, stream.id));
    // New credentials for each process: the one stopped above held the last ones.
    const access = await storage.grantJob(spec);

    const flinkJobId = flinkJobIdOf(spec.id);
    const checkpoints = join(stateDir, 'checkpoints');
    // Every Flink JVM unpacks ~60 MB into its temp folder; a killed one leaves it behind.
    await rm(join(dir, 'tmp'), { recursive: true, force: true });
    await mkdirPrivate(join(dir, 'tmp'));
    await mkdirPrivate(checkpoints);
    await mkdirPrivate(this.savepointDir(spec.id, spec.state.generation));
    await writeFile(join(dir, 'job.json'), JSON.stringify({ kind: spec.kind, accountId: spec.accountId } satisfies JobRecord), {
      mode: PRIVATE_FILE_MODE,
    });
    // Earlier generations' checkpoints are never restored again (their savepoints may be).
    await removeOtherGenerations(join(dir, 'state'), spec.state.generation);
    const restoreFrom =
      (await latestSnapshot([join(checkpoints, flinkJobId)], [this.savepointDir(spec.id, spec.state.generation), join(stateDir, 'savepoints')])) ??
      (spec.state.initialSnapshot ? await completeSnapshot(pathOf(spec.state.initialSnapshot)) : undefined) ??
      // Before generations, checkpoints were kept per spec version.
      (spec.state.generation === 1 ? await latestCheckpoint(join(dir, 'checkpoints', `v${spec.specVersion}`, flinkJobId)) : undefined);

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
      stateDir,
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

  async remove(ref: JobRef, options: RemoveOptions = {}): Promise<RemoveResult> {
    let note: string | null = null;
    let savepoint: TakenSnapshot | undefined;
    for (const process of await this.running(ref.id)) {
      if (options.savepoint && !options.discardState) ({ note, savepoint } = await this.stopWithSavepoint(process, 'snapshot'));
      else await this.stop(process);
    }
    await this.options.storage.revokeJob(ref);
    const dir = this.jobDir(ref.id);
    if (options.discardState) {
      await rm(dir, { recursive: true, force: true });
    } else {
      // The state stays (a later activation restores it); the run is over.
      await rm(join(dir, 'run.json'), { force: true });
      await rm(join(dir, 'events.log'), { force: true });
      await rm(join(dir, 'tmp'), { recursive: true, force: true });
    }
    this.options.logger.info({ accountId: ref.accountId, jobId: ref.id, note, discardState: !!options.discardState }, 'job process stopped');
    return savepoint ? { note, savepoint } : { note };
  }

  async snapshot(ref: JobRef, generation: number): Promise<TakenSnapshot> {
    const [process] = await this.running(ref.id);
    const { run, jobManagerUrl } = await this.runOf(ref.id);
    if (!process || !run || !jobManagerUrl || run.stateDir !== this.stateDir(ref.id, generation)) {
      throw new SavepointError('the job is not running');
    }
    const started = Date.now();
    const target = `file://${this.savepointDir(ref.id, generation)}`;
    const location = await triggerSavepoint(jobManagerUrl, run.flinkJobId, target, this.savepointTimeoutMs);
    const taken = { location, sizeBytes: await sizeOf(pathOf(location)) };
    this.options.logger.info({ accountId: ref.accountId, jobId: ref.id, ...taken, ms: Date.now() - started }, 'savepoint taken');
    return taken;
  }

  async deleteSnapshot(ref: JobRef, location: string): Promise<void> {
    const path = resolve(pathOf(location));
    const inside = relative(join(this.jobDir(ref.id), 'savepoints'), path);
    // Only a savepoint folder of this job's, never anything above it.
    if (inside.startsWith('..') || !/^g\d+\/savepoint-[\w-]+$/.test(inside)) {
      throw new Error(`${location} is not a savepoint of job ${ref.id}`);
    }
    await rm(path, { recursive: true, force: true });
  }

  /** Every job folder that says whose it is; a running job's too (it has a row, or is an orphan removed with its state). */
  async keptStates(): Promise<JobRef[]> {
    const kept: JobRef[] = [];
    for (const id of await listDir(this.jobsDir)) {
      if (!isUuid(id)) continue;
      const record = await readJson<JobRecord>(join(this.jobDir(id), 'job.json'));
      if (record) kept.push({ kind: record.kind, accountId: record.accountId, id });
    }
    return kept;
  }

  /**
   * Stops a job process with a savepoint (Flink's stop-with-savepoint: exactly-once output
   * is committed, the job ends FINISHED and its runner exits): a `snapshot` one in the
   * generation's savepoint folder, kept as a snapshot; a `redeploy` one in its state
   * folder, gone with the generation. One that is not running, or whose savepoint fails or
   * takes too long, is stopped anyway; the answer then says why, and its latest checkpoint
   * is what it resumes from.
   */
  private async stopWithSavepoint(job: Marked, keep: 'snapshot' | 'redeploy'): Promise<{ note: string | null; savepoint?: TakenSnapshot }> {
    const log = this.options.logger.child({ accountId: job.accountId, jobId: job.id, pid: job.pid });
    const { run, jobManagerUrl } = await this.runOf(job.id);
    const status = run?.stateDir && jobManagerUrl ? await jobStatus(jobManagerUrl, run.flinkJobId) : undefined;
    let note: string | null = null;
    let savepoint: TakenSnapshot | undefined;
    // STARTING may be a job whose tasks run already (Flink's REST API answers from a cache
    // a few seconds old): it is asked, and asked again while its tasks start.
    const up = status?.phase === 'RUNNING' || status?.phase === 'STARTING';
    if (!run?.stateDir || !jobManagerUrl || !up || this.hung.has(job.pid)) {
      note = `Stopped without a savepoint: the job was not running (${status?.phase ?? 'not answering'}); it resumes from its latest checkpoint.`;
    } else {
      const started = Date.now();
      try {
        // state/g<n> keeps its checkpoints; savepoints/g<n> the generation's snapshots.
        const target = keep === 'snapshot' ? join(this.jobDir(job.id), 'savepoints', basename(run.stateDir)) : join(run.stateDir, 'savepoints');
        const location = await stopWithSavepoint(jobManagerUrl, run.flinkJobId, `file://${target}`, this.savepointTimeoutMs);
        savepoint = { location, sizeBytes: await sizeOf(pathOf(location)) };
        log.info({ ...savepoint, ms: Date.now() - started }, 'savepoint taken');
      } catch (error) {
        if (!(error instanceof SavepointError)) throw error;
        note = `Stopped without a savepoint: ${error.message}; it resumes from its latest checkpoint.`;
        log.warn({ reason: error.message }, 'savepoint failed; stopping the job without one');
      }
    }
    // After a savepoint the runner exits by itself; the grace is for it to get there.
    await this.stop(job);
    return savepoint ? { note, savepoint } : { note };
  }

  /** A job's run record and, while its job runs (its runner announced a REST port and no end), its JobManager's REST URL. */
  private async runOf(id: string): Promise<{ run?: RunRecord | undefined; jobManagerUrl?: string | undefined }> {
    const run = await readRun(join(this.jobDir(id), 'run.json'));
    const events = await readRunnerEvents(join(this.jobDir(id), 'events.log'));
    return { run, jobManagerUrl: events.restPort && !events.final ? `http://127.0.0.1:${events.restPort}` : undefined };
  }

  async observe(): Promise<ObservedJob[]> {
    const processes = await this.running();
    const live = new Map(processes.map((p) => [p.id, p]));
    const livePids = new Set(processes.map((p) => p.pid));
    for (const pid of this.silentSince.keys()) if (!livePids.has(pid)) this.silentSince.delete(pid);
    for (const pid of this.hung) if (!livePids.has(pid)) this.hung.delete(pid);
    const observed: ObservedJob[] = [];
    for (const id of await listDir(this.jobsDir)) {
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


async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

const readRun = (file: string) => readJson<RunRecord>(file);
