import { setTimeout as sleep } from 'node:timers/promises';
import type { Actor } from '../accounts/actor.js';
import type { Logger } from '../platform/logger.js';
import { pollUntil } from '../platform/poll.js';
import { SECOND } from '../platform/time.js';
import { flinkJson, hasEnded } from '../flink/flink-rest.js';
import { JobPlacementError, waitForPlacement } from '../flink/job-placement.js';
import { previewStreamTable } from '../flink/job-sql.js';
import type { StreamBinding } from '../jobs/job-spec.js';
import { previewGroupOf } from '../streams/kafka-principals.js';
import type { StreamAccess } from '../streams/kafka-endpoint.js';
import type { StreamStorage } from '../streams/stream-storage.js';
import { previewSessionProperties } from './preview-sandbox.js';
import { FetchBackoff, FlinkStatementError, SqlGatewayClient } from './sql-gateway-client.js';
import type { ResultColumn, ResultRow } from './sql-gateway-client.js';
import { LandedOnUsedTaskManagerError, type Lease, type PreviewCluster, type PreviewEndpoints, type PreviewPool } from './preview-backend.js';

export type StartPosition = 'EARLIEST' | 'LATEST';
export type EndReason = 'EOS' | 'ROW_LIMIT' | 'TIMEOUT' | 'CANCELLED' | 'ERROR';

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
type PreviewEnded = Extract<PreviewEvent, { type: 'PreviewEnded' }>;

/** A checked preview: everything Flink will see, decided before anything reaches it. */
export interface PreviewPlan {
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

/** Rows per PreviewRows event at most. */
const MAX_BATCH = 500;
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
/** How long clean-up waits for a preview's job to end once its operation is closed, before it cancels the job. */
const JOB_END_WAIT_MS = 30 * SECOND;

/** How a preview ends, thrown from wherever that is found out. */
class Ended extends Error {
  constructor(readonly reason: EndReason, message: string | null = null, readonly line: number | null = null, readonly column: number | null = null) {
    super(message ?? reason);
  }
}

const endEvent = (reason: EndReason, message: string | null = null, line: number | null = null, column: number | null = null): PreviewEnded => ({
  type: 'PreviewEnded',
  reason,
  message,
  line,
  column,
});

/** A preview's job in the SQL Gateway, as far as it got (what clean-up has to undo). */
interface Submission {
  client?: SqlGatewayClient;
  session?: string;
  operation?: string;
  /** The statement's results, once submitted: they tell its job id. */
  results?: ResultPages;
}

/** Where the preview's job runs, once it runs; a job that ends first ends the preview with Flink's error. */
async function placement(jobManagerUrl: string, jobId: string): Promise<string[]> {
  try {
    return await waitForPlacement(jobManagerUrl, jobId, START_TIMEOUT_MS);
  } catch (error) {
    throw error instanceof JobPlacementError ? new Ended('ERROR', error.message) : error;
  }
}

/** The result pages of a submitted statement; their rows are kept until they are sent. */
class ResultPages {
  jobId: string | undefined;
  columns: readonly ResultColumn[] | null = null;
  readonly pending: ResultRow[] = [];
  eos = false;
  private token = 0;
  private readonly backoff = new FetchBackoff();

  constructor(
    private readonly client: SqlGatewayClient,
    private readonly session: string,
    private readonly operation: string,
    private readonly aborted: Promise<never>,
  ) {}

  /** Fetches the next page (the first pages tell the job id and the columns); how many rows it held. */
  async fetch(): Promise<number> {
    const page = await Promise.race([this.client.fetch(this.session, this.operation, this.token), this.aborted]);
    this.jobId ??= page.jobId ?? undefined;
    this.columns ??= page.columns;
    this.pending.push(...page.rows);
    if (page.nextToken === undefined) this.eos = true;
    else this.token = page.nextToken;
    return page.rows.length;
  }

  /** Fetches the next page; how long to wait before the one after. */
  async fetchPaced(): Promise<number> {
    return this.backoff.next(await this.fetch());
  }
}

class JobStillRunning extends Error {}

/**
 * One preview, from its lease to its end: a TaskManager of its own, a SQL session with
 * the streams it reads as tables, its statement, and rows sent as fast as they are taken
 * (`push` waits for the subscriber). Ends by itself (EOS, a bound) or by `cancel()`.
 */
export class PreviewRun {
  private readonly abort = new AbortController();
  /** Why an abort ends the preview: the subscriber left, unless a bound says otherwise. */
  private why = new Ended('CANCELLED');
  /** Rejects (with `why`) once the preview ends from outside. */
  private readonly aborted: Promise<never>;
  private readonly started = Date.now();
  /** When each phase ended (logged with the preview's end). */
  private readonly phases: Record<string, number> = {};
  /** One bound at a time: from each lease the start's, from the job running the time limit. */
  private timer: NodeJS.Timeout | undefined;
  private lease: Lease | undefined;
  private submission: Submission = {};

  constructor(
    private readonly plan: PreviewPlan,
    private readonly deps: PreviewDeps,
    private readonly log: Logger,
    private readonly push: (event: PreviewEvent) => Promise<unknown>,
  ) {
    this.aborted = new Promise<never>((_, reject) => this.abort.signal.addEventListener('abort', () => reject(this.why), { once: true }));
    this.aborted.catch(() => undefined);
  }

  /** The subscriber left: the preview ends (CANCELLED, unless a bound ended it first). */
  cancel(): void {
    this.abort.abort();
  }

  /** Runs the preview, sends how it ended and retires what it held; never throws. */
  async run(): Promise<void> {
    let ended: PreviewEnded | undefined;
    try {
      await this.runOnFreshTaskManager();
      ended = endEvent('EOS');
    } catch (error) {
      ended = this.endOf(error);
    } finally {
      await this.end(ended);
    }
  }

  /** Submits on a leased TaskManager; on a new lease when Flink placed the job on a used one. */
  private async runOnFreshTaskManager(): Promise<void> {
    const endpoints = await this.race(this.deps.cluster.start());
    this.mark('cluster');
    for (let attempt = 1; ; attempt += 1) {
      const lease = await this.leaseTaskManager();
      try {
        return await this.execute(endpoints, lease);
      } catch (error) {
        // Flink chose a TaskManager whose preview had just ended by itself (its slot
        // free before its retirement). Nothing was shown yet: cancel, submit again.
        if (!(error instanceof LandedOnUsedTaskManagerError) || attempt >= MAX_SUBMISSIONS) throw error;
        this.log.warn({ attempt, leased: error.leased, landedOn: error.landedOn }, 'preview landed on a used TaskManager; submitting again');
        await this.retire();
      }
    }
  }

  /** Waits for a fresh TaskManager (telling the subscriber its place in the queue); the start's bound begins. */
  private async leaseTaskManager(): Promise<Lease> {
    const onPosition = (position: number) => void this.push({ type: 'PreviewQueued', position });
    const { accountId } = this.plan.actor;
    this.lease = await this.race(this.deps.pool.lease(accountId, this.plan.maxConcurrent, onPosition, this.abort.signal));
    this.mark('lease');
    this.bound(START_TIMEOUT_MS, 'ERROR', `The preview job did not start running on its TaskManager within ${START_TIMEOUT_MS / SECOND} s`);
    return this.lease;
  }

  /** One submission on `lease`: session, tables, statement, placement, then the rows. */
  private async execute(endpoints: PreviewEndpoints, lease: Lease): Promise<void> {
    const client = new SqlGatewayClient(endpoints.gatewayUrl);
    this.submission.client = client;
    let landed = false;
    try {
      const access = await this.deps.storage.grantPreview(this.plan.actor.accountId);
      const session = await this.openSession(client);
      await this.registerTables(client, session, access);
      const results = await this.submit(client, session);
      await this.readJobId(results);
      const where = await this.awaitPlacement(endpoints, results);
      if (where) {
        // landed() ends the submission window, whether it accepts or throws.
        landed = true;
        lease.landed(where);
      }
      this.mark('landed');
      await this.start(lease, results.columns);
      await this.sendRows(results);
    } finally {
      // Ends the submission window; the TaskManager is retired in clean-up either way.
      if (!landed) lease.landed([]);
    }
  }

  private async openSession(client: SqlGatewayClient): Promise<string> {
    const { accountId } = this.plan.actor;
    const properties = previewSessionProperties(accountId);
    this.submission.session = await client.openSession(`weir-preview-${accountId}`, properties, { waitMs: GATEWAY_WAIT_MS, signal: this.abort.signal });
    this.mark('session');
    return this.submission.session;
  }

  /** Each stream the query reads, as a table on its topic, read from the position the preview asked for. */
  private async registerTables(client: SqlGatewayClient, session: string, access: StreamAccess): Promise<void> {
    const { storage } = this.deps;
    const { accountId } = this.plan.actor;
    for (const stream of this.plan.streams) {
      const topic = storage.topicFor(accountId, stream.id);
      await storage.ensureTopic(topic);
      await client.execute(session, previewStreamTable(stream, { access, groupId: previewGroupOf(accountId), topic, from: stream.from }));
    }
    this.mark('tables');
  }

  private async submit(client: SqlGatewayClient, session: string): Promise<ResultPages> {
    const operation = await client.submit(session, this.plan.query);
    this.submission.operation = operation;
    this.mark('submit');
    return (this.submission.results = new ResultPages(client, session, operation, this.aborted));
  }

  /** Fetches the first pages, up to the job id and the columns (or the end); their rows are kept. */
  private async readJobId(results: ResultPages): Promise<void> {
    while (!results.eos && (!results.jobId || !results.columns)) {
      if ((await results.fetch()) === 0) await this.race(sleep(20));
    }
    this.mark('jobId');
  }

  /**
   * The TaskManagers the job runs on, once the JobManager says it runs (undefined when the
   * statement made no job). Nothing is shown until then, but rows are fetched (and kept,
   * up to the row limit) meanwhile.
   */
  private async awaitPlacement(endpoints: PreviewEndpoints, results: ResultPages): Promise<string[] | undefined> {
    const { jobId } = results;
    if (!jobId) return undefined;
    const landing: { where?: string[] } = {};
    const placed = placement(endpoints.jobManagerUrl, jobId).then((where) => (landing.where = where));
    placed.catch(() => undefined);
    while (!landing.where) {
      if (results.eos || results.pending.length >= this.plan.rowLimit) {
        await this.race(placed);
        continue;
      }
      const wait = await results.fetchPaced();
      if (!landing.where && wait > 0) await this.race(placed, sleep(wait));
    }
    return landing.where;
  }

  /** The job runs on its TaskManager: the time limit starts, and the subscriber hears of it. */
  private async start(lease: Lease, columns: readonly ResultColumn[] | null): Promise<void> {
    this.bound(this.plan.timeLimitMs, 'TIMEOUT');
    await this.emit({ type: 'PreviewStarted', columns: columns ?? [], taskManager: lease.taskManagerId, leaseMs: lease.leaseMs });
  }

  /** Sends rows in batches as they come, up to the row limit (ROW_LIMIT) or the end of the results. */
  private async sendRows(results: ResultPages): Promise<void> {
    let sent = 0;
    for (;;) {
      while (results.pending.length > 0) {
        const batch = results.pending.splice(0, Math.min(MAX_BATCH, this.plan.rowLimit - sent));
        sent += batch.length;
        this.mark('firstRow');
        await this.emit({ type: 'PreviewRows', rows: batch });
        if (sent >= this.plan.rowLimit) throw new Ended('ROW_LIMIT');
      }
      if (results.eos) return;
      const wait = await results.fetchPaced();
      if (wait > 0 && !results.eos) await this.race(sleep(wait));
    }
  }

  /** How an error ends the preview, as the subscriber hears it. */
  private endOf(error: unknown): PreviewEnded {
    const end = error instanceof Ended ? error : this.abort.signal.aborted ? this.why : undefined;
    if (end) return endEvent(end.reason, end.reason === 'ERROR' ? end.message : null, end.line, end.column);
    const statement = error instanceof FlinkStatementError ? error : undefined;
    if (!statement) this.log.error({ err: error }, 'preview failed');
    return endEvent('ERROR', error instanceof Error ? error.message : String(error), statement?.line ?? null, statement?.column ?? null);
  }

  /** The subscriber (if still there) hears how it ended while the TaskManager goes. */
  private async end(ended: PreviewEnded | undefined): Promise<void> {
    clearTimeout(this.timer);
    const retired = this.retire();
    if (ended) await Promise.race([this.push(ended), sleep(5 * SECOND)]).catch(() => undefined);
    await retired;
    this.log.info({ reason: ended?.reason ?? this.why.reason, ms: Date.now() - this.started, phases: this.phases }, 'preview ended');
  }

  /** Retires the TaskManager, closes the operation (cancels the job) and the session, and sees the job end. */
  private async retire(): Promise<void> {
    const { lease, submission } = this;
    this.lease = undefined;
    this.submission = {};
    const { client, session, operation, results } = submission;
    // The TaskManager goes first, while its job still holds its slot: cancelling the job
    // first would free that slot, and a preview submitted meanwhile could land on this
    // used TaskManager (retirement waits for the submission window; a cancel does not).
    await lease?.release().catch((error) => this.log.error({ err: error }, 'retiring the preview TaskManager failed'));
    try {
      if (client && session && operation) await client.closeOperation(session, operation).catch(() => undefined);
      if (client && session) await client.closeSession(session).catch(() => undefined);
      if (results?.jobId) await this.jobEnded(results.jobId);
    } catch (error) {
      this.log.warn({ err: error }, 'preview clean-up could not confirm the job ended');
    }
  }

  /** Waits for the preview's job to end; one still running after JOB_END_WAIT_MS is cancelled through the JobManager. */
  private async jobEnded(jobId: string): Promise<void> {
    // A cluster closed meanwhile (gateway shutdown) took the job with it.
    const { jobManagerUrl } = await this.deps.cluster.start();
    const ended = async () => {
      const job = await flinkJson<{ state: string }>(`${jobManagerUrl}/jobs/${jobId}`).catch(() => undefined);
      return !job || hasEnded(job.state) ? true : undefined;
    };
    try {
      await pollUntil(ended, { timeoutMs: JOB_END_WAIT_MS, intervalMs: 100, timeoutError: () => new JobStillRunning() });
    } catch (error) {
      if (!(error instanceof JobStillRunning)) throw error;
      await flinkJson(`${jobManagerUrl}/jobs/${jobId}?mode=cancel`, { method: 'PATCH' }).catch(() => undefined);
      this.log.warn({ jobId }, `preview job still running after ${JOB_END_WAIT_MS / SECOND} s; cancelled through the JobManager`);
    }
  }

  /** Ends the preview with `reason` after `ms`, in place of the bound before. */
  private bound(ms: number, reason: EndReason, message: string | null = null): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.why = new Ended(reason, message);
      this.abort.abort();
    }, ms);
  }

  /** The first of these to settle, unless the preview ends from outside first. */
  private race<T>(...promises: Promise<T>[]): Promise<T> {
    return Promise.race([...promises, this.aborted]);
  }

  /** Sends an event to the subscriber (waits for it to be taken). */
  private emit(event: PreviewEvent): Promise<unknown> {
    return this.race(this.push(event));
  }

  private mark(phase: string): void {
    this.phases[phase] ??= Date.now() - this.started;
  }
}
