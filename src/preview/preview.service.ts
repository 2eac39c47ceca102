import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Repeater } from '@repeaterjs/repeater';
import type { Actor } from '../accounts/actor.js';
import { requireRole } from '../accounts/actor.js';
import * as accountRepo from '../accounts/account.repository.js';
import * as pipelineRepo from '../pipelines/pipeline.repository.js';
import type { Db } from '../platform/database.js';
import { NotFoundError, UnavailableError, ValidationError } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import { SECOND } from '../platform/time.js';
import { previewStreamTable } from '../flink/job-sql.js';
import type { StreamBinding } from '../jobs/job-spec.js';
import type { SqlChecker } from '../sql/sql-checker.js';
import { previewGroupOf } from '../streams/kafka-principals.js';
import type { StreamStorage } from '../streams/stream-storage.js';
import * as streamRepo from '../streams/stream.repository.js';
import { flinkJson } from '../flink/flink-rest.js';
import { JobPlacementError, waitForPlacement } from '../flink/job-placement.js';
import { previewSessionProperties } from './preview-sandbox.js';
import { FetchBackoff, FlinkStatementError, SqlGatewayClient } from './sql-gateway-client.js';
import type { ResultColumn, ResultRow } from './sql-gateway-client.js';
import { LandedOnUsedTaskManagerError, type Lease, type PreviewCluster, type PreviewEndpoints, type PreviewPool } from './preview-backend.js';

export const DEFAULT_ROW_LIMIT = 500;
export const MAX_ROW_LIMIT = 5000;
export const MAX_TIME_LIMIT_SECONDS = 120;
/** Rows per PreviewRows event at most. */
const MAX_BATCH = 500;

export type StartPosition = 'EARLIEST' | 'LATEST';
export type EndReason = 'EOS' | 'ROW_LIMIT' | 'TIMEOUT' | 'CANCELLED' | 'ERROR';

export interface PreviewInput {
  readonly sql?: string | null;
  readonly pipelineId?: string | null;
  readonly startPositions?: readonly { streamId?: string | null; streamName?: string | null; position: StartPosition }[] | null;
  readonly rowLimit?: number | null;
  readonly timeLimitSeconds?: number | null;
}

export type PreviewEvent =
  | { readonly type: 'PreviewQueued'; readonly position: number }
  | { readonly type: 'PreviewStarted'; readonly columns: readonly ResultColumn[]; readonly taskManager: string; readonly leaseMs: number }
  | { readonly type: 'PreviewRows'; readonly rows: readonly ResultRow[] }
  | {
      readonly type: 'PreviewEnded';
      readonly reason: EndReason;
      readonly message: string | null;
      readonly line: number | null;
      readonly column: number | null;
    };

/** A checked preview: everything Flink will see, decided before anything reaches it. */
interface PreviewPlan {
  readonly actor: Actor;
  readonly maxConcurrent: number;
  readonly query: string;
  readonly streams: readonly (StreamBinding & { readonly from: StartPosition })[];
  readonly rowLimit: number;
  readonly timeLimitMs: number;
}

export interface PreviewDeps {
  readonly cluster: PreviewCluster;
  readonly pool: PreviewPool;
  readonly storage: StreamStorage;
}

/** A preview's job in the SQL Gateway, as far as it got (what clean-up has to undo). */
interface Submission {
  client?: SqlGatewayClient;
  session?: string;
  operation?: string;
  jobId?: string;
}

/** How a preview's run talks back to it. */
interface RunControl {
  /** Sends an event to the subscriber (waits for it to be taken). */
  readonly emit: (event: PreviewEvent) => Promise<unknown>;
  /** Rejects when the preview ends from outside (subscriber gone, a bound reached). */
  readonly aborted: Promise<never>;
  readonly signal: AbortSignal;
  /** Notes when a phase ended (logged with the preview's end). */
  readonly mark: (phase: string) => void;
  /** The job runs on its TaskManager: the time limit starts. */
  readonly running: () => void;
}

/** Submissions of one preview at most (see LandedOnUsedTaskManagerError). */
const MAX_SUBMISSIONS = 3;
/**
 * From a lease to its job running on the leased TaskManager, at most. The time limit counts
 * from there (PreviewStarted): a loaded cluster shortens nobody's preview, and a preview
 * that cannot start ends with an error that says so instead of a TIMEOUT with no rows.
 */
const START_TIMEOUT_MS = 60 * SECOND;
/** How long a preview waits for a SQL Gateway that does not answer yet (on Kubernetes, its pod may be starting). */
const GATEWAY_WAIT_MS = 30 * SECOND;

class Ended extends Error {
  constructor(readonly reason: EndReason, message: string | null = null, readonly line: number | null = null, readonly column: number | null = null) {
    super(message ?? reason);
  }
}

/** Where the preview's job runs, once it runs; a job that ends first ends the preview with Flink's error. */
async function placement(jobManagerUrl: string, jobId: string): Promise<string[]> {
  try {
    return await waitForPlacement(jobManagerUrl, jobId, START_TIMEOUT_MS);
  } catch (error) {
    throw error instanceof JobPlacementError ? new Ended('ERROR', error.message) : error;
  }
}

/**
 * Previews: a SELECT on the account's real streams, run for a bounded time on a
 * TaskManager of its own, with result rows streamed to the subscriber. The subscriber
 * sets the pace: rows are fetched from the SQL Gateway only as fast as they are taken.
 */
export class PreviewService {
  constructor(
    private readonly db: Db,
    private readonly deps: PreviewDeps | undefined,
    private readonly logger: Logger,
    private readonly sql: SqlChecker,
  ) {}

  /** Checks the input and the SQL; throws typed errors (nothing has reached Flink). */
  async prepare(actor: Actor | null, input: PreviewInput): Promise<PreviewPlan> {
    const a = requireRole(actor, 'VIEWER');
    const rowLimit = input.rowLimit ?? DEFAULT_ROW_LIMIT;
    if (!Number.isInteger(rowLimit) || rowLimit < 1 || rowLimit > MAX_ROW_LIMIT) {
      throw ValidationError.of(['input', 'rowLimit'], `must be between 1 and ${MAX_ROW_LIMIT}`);
    }
    const timeLimit = input.timeLimitSeconds ?? MAX_TIME_LIMIT_SECONDS;
    if (!Number.isInteger(timeLimit) || timeLimit < 1 || timeLimit > MAX_TIME_LIMIT_SECONDS) {
      throw ValidationError.of(['input', 'timeLimitSeconds'], `must be between 1 and ${MAX_TIME_LIMIT_SECONDS}`);
    }
    if ((input.sql == null) === (input.pipelineId == null)) {
      throw ValidationError.of(['input'], 'give exactly one of sql and pipelineId');
    }
    const known = new Set(await streamRepo.listStreamNames(this.db, a.accountId));
    let analysis;
    if (input.sql != null) {
      analysis = await this.sql.analyzeSelect(input.sql, known, ['input', 'sql']);
    } else {
      const pipeline = await pipelineRepo.findPipeline(this.db, a.accountId, input.pipelineId!);
      if (!pipeline) throw new NotFoundError('Pipeline', input.pipelineId!);
      analysis = await this.sql.pipelineSelect(pipeline.sql, known, ['input', 'pipelineId']);
    }
    const rows = await streamRepo.findStreamsByNames(this.db, a.accountId, analysis.inputs);
    const from = new Map<string, StartPosition>();
    for (const [index, start] of (input.startPositions ?? []).entries()) {
      const path = ['input', 'startPositions', index];
      let name = start.streamName ?? undefined;
      if (start.streamId != null) {
        const stream = await streamRepo.findStream(this.db, a.accountId, start.streamId);
        if (!stream) throw new NotFoundError('Stream', start.streamId);
        name = stream.name;
      }
      if (name === undefined) throw ValidationError.of(path, 'give streamId or streamName');
      if (!analysis.inputs.includes(name)) throw ValidationError.of(path, `the preview does not read stream "${name}"`);
      from.set(name, start.position);
    }
    const tier = await accountRepo.findTier(this.db, a.tier);
    return {
      actor: a,
      maxConcurrent: tier.max_concurrent_previews,
      query: analysis.query,
      streams: rows.map((row) => ({
        id: row.id,
        name: row.name,
        kind: row.kind,
        fields: row.fields,
        primaryKey: row.primary_key,
        from: from.get(row.name) ?? 'EARLIEST',
      })),
      rowLimit,
      timeLimitMs: timeLimit * SECOND,
    };
  }

  /** The preview's events; returning from the iterator cancels it and retires its TaskManager. */
  run(plan: PreviewPlan): AsyncIterableIterator<PreviewEvent> {
    const deps = this.deps;
    if (!deps) throw new UnavailableError('Previews need a runtime with a preview cluster (WEIR_RUNTIME=local or kubernetes).');
    const previewId = randomUUID();
    const log = this.logger.child({ accountId: plan.actor.accountId, previewId });
    // No buffer: each push waits for the subscriber, so a slow client slows the fetching.
    return new Repeater<PreviewEvent>(async (push, stop) => {
      const abort = new AbortController();
      // Why an abort ends the preview: the subscriber left unless a timer says otherwise.
      let why = new Ended('CANCELLED');
      const endWith = (reason: EndReason, message: string | null = null) => {
        why = new Ended(reason, message);
        abort.abort();
      };
      void stop.then(() => abort.abort());
      const aborted = new Promise<never>((_, reject) => abort.signal.addEventListener('abort', () => reject(why), { once: true }));
      aborted.catch(() => undefined);
      const emit = (event: PreviewEvent) => Promise.race([push(event), aborted]);
      let lease: Lease | undefined;
      let timer: NodeJS.Timeout | undefined;
      let run: Submission = {};
      const started = Date.now();
      const phases: Record<string, number> = {};
      const mark = (phase: string) => (phases[phase] ??= Date.now() - started);
      let ended: PreviewEvent | undefined;
      // One bound at a time: from each lease the start's, from the job running the time limit.
      const bound = (ms: number, reason: EndReason, message: string | null = null) => {
        clearTimeout(timer);
        timer = setTimeout(() => endWith(reason, message), ms);
      };
      const running = () => bound(plan.timeLimitMs, 'TIMEOUT');
      try {
        const endpoints = await Promise.race([deps.cluster.start(), aborted]);
        mark('cluster');
        for (let attempt = 1; ; attempt += 1) {
          lease = await Promise.race([
            deps.pool.lease(plan.actor.accountId, plan.maxConcurrent, (position) => void push({ type: 'PreviewQueued', position }), abort.signal),
            aborted,
          ]);
          mark('lease');
          bound(START_TIMEOUT_MS, 'ERROR', `The preview job did not start running on its TaskManager within ${START_TIMEOUT_MS / SECOND} s`);
          try {
            await this.execute(plan, deps, endpoints, lease, run, { emit, aborted, signal: abort.signal, mark, running });
            break;
          } catch (error) {
            // Flink chose a TaskManager whose preview had just ended by itself (its slot
            // free before its retirement). Nothing was shown yet: cancel, submit again.
            if (!(error instanceof LandedOnUsedTaskManagerError) || attempt >= MAX_SUBMISSIONS) throw error;
            log.warn({ attempt, leased: error.leased, landedOn: error.landedOn }, 'preview landed on a used TaskManager; submitting again');
            await this.cleanup(deps, run, lease, log);
            run = {};
            lease = undefined;
          }
        }
        ended = { type: 'PreviewEnded', reason: 'EOS', message: null, line: null, column: null };
      } catch (error) {
        const end = error instanceof Ended ? error : abort.signal.aborted ? why : undefined;
        if (end) {
          ended = { type: 'PreviewEnded', reason: end.reason, message: end.reason === 'ERROR' ? end.message : null, line: end.line, column: end.column };
        } else {
          const statement = error instanceof FlinkStatementError ? error : undefined;
          if (!statement) log.error({ err: error }, 'preview failed');
          ended = {
            type: 'PreviewEnded',
            reason: 'ERROR',
            message: error instanceof Error ? error.message : String(error),
            line: statement?.line ?? null,
            column: statement?.column ?? null,
          };
        }
      } finally {
        clearTimeout(timer);
        const cleanup = this.cleanup(deps, run, lease, log);
        if (ended) {
          // The subscriber (if still there) hears how it ended while the TaskManager goes.
          await Promise.race([push(ended), sleep(5 * SECOND)]).catch(() => undefined);
        }
        await cleanup;
        log.info({ reason: ended?.type === 'PreviewEnded' ? ended.reason : why.reason, ms: Date.now() - started, phases }, 'preview ended');
        stop();
      }
    });
  }

  private async execute(
    plan: PreviewPlan,
    deps: PreviewDeps,
    endpoints: PreviewEndpoints,
    lease: Lease,
    run: Submission,
    { emit, aborted, signal, mark, running }: RunControl,
  ): Promise<void> {
    const client = new SqlGatewayClient(endpoints.gatewayUrl);
    run.client = client;
    let landed = false;
    try {
      const access = await deps.storage.grantPreview(plan.actor.accountId);
      run.session = await client.openSession(`weir-preview-${plan.actor.accountId}`, previewSessionProperties(plan.actor.accountId), {
        waitMs: GATEWAY_WAIT_MS,
        signal,
      });
      mark('session');
      for (const stream of plan.streams) {
        const topic = deps.storage.topicFor(plan.actor.accountId, stream.id);
        await deps.storage.ensureTopic(topic);
        await client.execute(
          run.session,
          previewStreamTable(stream, { access, groupId: previewGroupOf(plan.actor.accountId), topic, from: stream.from }),
        );
      }
      mark('tables');
      run.operation = await client.submit(run.session, plan.query);
      mark('submit');
      // The first pages tell the job id and the columns; rows in them are kept.
      let token = 0;
      let columns: readonly ResultColumn[] | null = null;
      const pending: ResultRow[] = [];
      let eos = false;
      const backoff = new FetchBackoff();
      const fetchPage = async () => {
        const page = await Promise.race([client.fetch(run.session!, run.operation!, token), aborted]);
        run.jobId ??= page.jobId ?? undefined;
        columns ??= page.columns;
        pending.push(...page.rows);
        if (page.nextToken === undefined) eos = true;
        else token = page.nextToken;
        return page.rows.length;
      };
      while (!eos && (!run.jobId || !columns)) {
        if ((await fetchPage()) === 0) await Promise.race([sleep(20), aborted]);
      }
      mark('jobId');
      if (run.jobId) {
        // Nothing is shown until the JobManager says the job runs on the leased TaskManager,
        // but rows are fetched (and kept, up to the row limit) while it is asked.
        const landing: { where?: string[] } = {};
        const placed = placement(endpoints.jobManagerUrl, run.jobId).then((where) => (landing.where = where));
        placed.catch(() => undefined);
        while (!landing.where) {
          if (eos || pending.length >= plan.rowLimit) {
            await Promise.race([placed, aborted]);
            continue;
          }
          const wait = backoff.next(await fetchPage());
          if (!landing.where && wait > 0) await Promise.race([placed, sleep(wait), aborted]);
        }
        // landed() ends the submission window, whether it accepts or throws.
        landed = true;
        lease.landed(landing.where);
      }
      mark('landed');
      running();
      await emit({ type: 'PreviewStarted', columns: columns ?? [], taskManager: lease.taskManagerId, leaseMs: lease.leaseMs });
      let sent = 0;
      for (;;) {
        while (pending.length > 0) {
          const batch = pending.splice(0, Math.min(MAX_BATCH, plan.rowLimit - sent));
          sent += batch.length;
          mark('firstRow');
          await emit({ type: 'PreviewRows', rows: batch });
          if (sent >= plan.rowLimit) throw new Ended('ROW_LIMIT');
        }
        if (eos) return;
        const wait = backoff.next(await fetchPage());
        if (wait > 0 && !eos) await Promise.race([sleep(wait), aborted]);
      }
    } finally {
      // Ends the submission window; the TaskManager is retired in cleanup either way.
      if (!landed) lease.landed([]);
    }
  }

  /** Closes the operation (cancels the job), retires the TaskManager, closes the session. */
  private async cleanup(
    deps: PreviewDeps,
    run: Submission,
    lease: Lease | undefined,
    log: Logger,
  ): Promise<void> {
    const { client, session, operation, jobId } = run;
    // The TaskManager goes first, while its job still holds its slot: cancelling the job
    // first would free that slot, and a preview submitted meanwhile could land on this
    // used TaskManager (retirement waits for the submission window; a cancel does not).
    await lease?.release().catch((error) => log.error({ err: error }, 'retiring the preview TaskManager failed'));
    try {
      if (client && session && operation) await client.closeOperation(session, operation).catch(() => undefined);
      if (client && session) await client.closeSession(session).catch(() => undefined);
      if (jobId) {
        // A cluster closed meanwhile (gateway shutdown) took the job with it.
        const { jobManagerUrl } = await deps.cluster.start();
        const deadline = Date.now() + 30 * SECOND;
        for (;;) {
          const job = await flinkJson<{ state: string }>(`${jobManagerUrl}/jobs/${jobId}`).catch(() => undefined);
          if (!job || ['FAILED', 'CANCELED', 'FINISHED'].includes(job.state)) break;
          if (Date.now() > deadline) {
            await flinkJson(`${jobManagerUrl}/jobs/${jobId}?mode=cancel`, { method: 'PATCH' }).catch(() => undefined);
            log.warn({ jobId }, 'preview job still running after 30 s; cancelled through the JobManager');
            break;
          }
          await sleep(100);
        }
      }
    } catch (error) {
      log.warn({ err: error }, 'preview clean-up could not confirm the job ended');
    }
  }
}
