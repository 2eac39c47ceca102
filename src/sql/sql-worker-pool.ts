import { Worker } from 'node:worker_threads';
import { SqlTooComplexError, UnavailableError, ValidationError } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import type { PipelineSqlAnalysis } from './pipeline-sql.js';
import type { SelectSqlAnalysis } from './select-sql.js';
import type { SqlCheckKind, SqlCheckOutcome, SqlCheckRequest, SqlChecks } from './sql-check.js';
import type { SqlCheckMessage, SqlWorkerReply } from './sql-check-worker.js';
import type { SqlChecker } from './sql-checker.js';
import { checkSqlLimits } from './sql-limits.js';
import type { Path } from './sql-statement.js';

export interface SqlWorkerPoolOptions {
  /** Worker threads at most; each checks one SQL text at a time. */
  readonly size: number;
  /** How long one check may run on its worker (waiting for a worker not counted). */
  readonly timeLimitMs: number;
  readonly logger: Logger;
  /** Checks waiting for a worker at most; more are refused as UNAVAILABLE. */
  readonly maxQueued?: number;
}

export interface SqlWorkerPoolStats {
  /** Live workers, starting ones included. */
  readonly workers: number;
  readonly busy: number;
  readonly queued: number;
  /** Workers started since the pool was made. */
  readonly started: number;
  /** Checks stopped at the time limit (each cost its worker). */
  readonly cut: number;
}

const DEFAULT_MAX_QUEUED = 64;
/**
 * A worker's heap at most. The parser's cache grows with every new shape of SQL; past
 * this the worker dies (its check fails) and is replaced, not the gateway.
 */
const WORKER_HEAP_MB = 256;
const ENTRY = new URL('./sql-check-worker-entry.mjs', import.meta.url);

interface Job {
  readonly request: SqlCheckRequest;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

interface Slot {
  readonly worker: Worker;
  readonly threadId: number;
  /** Settles when the worker is ready (its warm-up done), or rejects if it dies first. */
  readonly started: Promise<void>;
  readonly markStarted: (error?: Error) => void;
  ready: boolean;
  running?: Job & { readonly id: number; readonly timer: NodeJS.Timeout };
}

/**
 * Runs the SQL checks on worker threads, so that a text that makes the parser work for
 * seconds costs one worker and never the event loop (health checks, every other
 * request). Cheap limits (size, nesting) are checked here first, on the caller's
 * thread; a check past its time limit has its worker terminated and replaced, and
 * fails alone with SqlTooComplexError. Workers start on first use (or `warm()`).
 */
export class SqlWorkerPool implements SqlChecker {
  private readonly slots = new Set<Slot>();
  private readonly queue: Job[] = [];
  private readonly stopping = new Set<Promise<unknown>>();
  private readonly maxQueued: number;
  private nextId = 1;
  private started = 0;
  private cut = 0;
  private closed = false;

  constructor(private readonly options: SqlWorkerPoolOptions) {
    if (!Number.isInteger(options.size) || options.size < 1) throw new Error(`SQL worker pool size must be 1 or more (got ${options.size})`);
    this.maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED;
  }

  analyzePipeline(sql: string, knownStreams: ReadonlySet<string>, path: Path = ['sql']): Promise<PipelineSqlAnalysis> {
    return this.check('pipeline', sql, knownStreams, path);
  }

  analyzeSelect(sql: string, knownStreams: ReadonlySet<string>, path: Path = ['sql']): Promise<SelectSqlAnalysis> {
    return this.check('select', sql, knownStreams, path);
  }

  pipelineSelect(sql: string, knownStreams: ReadonlySet<string>, path: Path = ['sql']): Promise<SelectSqlAnalysis> {
    return this.check('pipelineSelect', sql, knownStreams, path);
  }

  /** Starts every worker now rather than on first use (the gateway does at start-up); resolves once all are ready. */
  async warm(): Promise<void> {
    while (!this.closed && this.slots.size < this.options.size) this.spawn();
    await Promise.all([...this.slots].map((slot) => slot.started));
  }

  stats(): SqlWorkerPoolStats {
    const slots = [...this.slots];
    return {
      workers: slots.length,
      busy: slots.filter((slot) => slot.running).length,
      queued: this.queue.length,
      started: this.started,
      cut: this.cut,
    };
  }

  /** Thread ids of the live workers, for tests that watch one being replaced. */
  threadIds(): number[] {
    return [...this.slots].map((slot) => slot.threadId);
  }

  async close(): Promise<void> {
    this.closed = true;
    const closing = new UnavailableError('The SQL checker is shutting down.');
    for (const job of this.queue.splice(0)) job.reject(closing);
    for (const slot of [...this.slots]) {
      if (slot.running) {
        clearTimeout(slot.running.timer);
        slot.running.reject(closing);
      }
      this.stop(slot);
    }
    await Promise.all(this.stopping);
  }

  private async check<K extends SqlCheckKind>(kind: K, sql: string, knownStreams: ReadonlySet<string>, path: Path): Promise<SqlChecks[K]> {
    checkSqlLimits(sql, path);
    if (this.closed) throw new UnavailableError('The SQL checker is shutting down.');
    if (this.queue.length >= this.maxQueued) {
      throw new UnavailableError(`The SQL checker is busy (${this.queue.length} checks waiting); try again shortly.`);
    }
    const request: SqlCheckRequest<K> = { kind, sql, knownStreams: [...knownStreams], path };
    const value = await new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      this.pump();
    });
    return value as SqlChecks[K];
  }

  /** Hands queued checks to idle workers and starts workers for the rest, up to the size. */
  private pump(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (slot.ready && !slot.running) this.dispatch(slot, this.queue.shift()!);
    }
    const starting = [...this.slots].filter((slot) => !slot.ready).length;
    let unserved = this.queue.length - starting;
    while (!this.closed && unserved > 0 && this.slots.size < this.options.size) {
      this.spawn();
      unserved -= 1;
    }
  }

  private dispatch(slot: Slot, job: Job): void {
    const id = this.nextId++;
    const timer = setTimeout(() => this.timeOut(slot), this.options.timeLimitMs);
    slot.running = { ...job, id, timer };
    // Referenced only while starting or working: an idle pool never keeps the process alive.
    slot.worker.ref();
    slot.worker.postMessage({ id, request: job.request } satisfies SqlCheckMessage);
  }

  private spawn(): void {
    // execArgv: [] because the entry registers tsx itself (sql-check-worker-entry.mjs).
    const worker = new Worker(ENTRY, { execArgv: [], resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } });
    let markStarted: Slot['markStarted'] = () => {};
    const started = new Promise<void>((resolve, reject) => {
      markStarted = (error) => (error ? reject(error) : resolve());
    });
    started.catch(() => undefined);
    const slot: Slot = { worker, threadId: worker.threadId, started, markStarted, ready: false };
    this.slots.add(slot);
    this.started += 1;
    worker.on('message', (reply: SqlWorkerReply) => this.onReply(slot, reply));
    worker.on('error', (error) => this.onDeath(slot, error));
    worker.on('exit', (code) => this.onDeath(slot, new Error(`the SQL check worker exited with code ${code}`)));
  }

  private onReply(slot: Slot, reply: SqlWorkerReply): void {
    if ('ready' in reply) {
      slot.ready = true;
      slot.worker.unref();
      slot.markStarted();
    } else if (slot.running?.id === reply.id) {
      const job = slot.running;
      clearTimeout(job.timer);
      slot.running = undefined;
      slot.worker.unref();
      settle(job, reply.outcome);
    }
    this.pump();
  }

  private timeOut(slot: Slot): void {
    const job = slot.running;
    if (!job || !this.slots.has(slot)) return;
    slot.running = undefined;
    this.cut += 1;
    this.options.logger.warn(
      { timeLimitMs: this.options.timeLimitMs, kind: job.request.kind, sqlLength: job.request.sql.length },
      'a SQL check ran past its time limit: its worker is terminated and replaced',
    );
    job.reject(new SqlTooComplexError(job.request.path, this.options.timeLimitMs));
    this.stop(slot);
    // Replaced at once, so the next check finds a warm worker.
    if (!this.closed) this.spawn();
    this.pump();
  }

  /** A worker that died by itself (out of memory, a crash) fails its check; one that never got ready fails the queue. */
  private onDeath(slot: Slot, error: Error): void {
    if (!this.slots.has(slot)) return;
    this.slots.delete(slot);
    this.options.logger.error({ err: error, threadId: slot.threadId, ready: slot.ready }, 'a SQL check worker died');
    const failure = new Error('The SQL check worker died', { cause: error });
    slot.markStarted(failure);
    if (slot.running) {
      clearTimeout(slot.running.timer);
      slot.running.reject(failure);
    }
    // A worker that cannot start would be started again for every queued check: fail them instead.
    if (!slot.ready) for (const job of this.queue.splice(0)) job.reject(failure);
    this.pump();
  }

  private stop(slot: Slot): void {
    this.slots.delete(slot);
    // A warm() waiting for this worker learns it will not come (no-op once it was ready).
    slot.markStarted(new UnavailableError('The SQL check worker was stopped before it was ready.'));
    const stopped = slot.worker
      .terminate()
      .catch(() => undefined)
      .finally(() => this.stopping.delete(stopped));
    this.stopping.add(stopped);
  }
}

function settle(job: Job, outcome: SqlCheckOutcome): void {
  if (outcome.ok) job.resolve(outcome.value);
  else if ('problems' in outcome) job.reject(new ValidationError(outcome.problems));
  else if ('stackExhausted' in outcome) job.reject(new SqlTooComplexError(job.request.path));
  else job.reject(new Error(`The SQL check failed unexpectedly: ${outcome.unexpected}`));
}
