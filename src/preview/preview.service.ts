import { randomUUID } from 'node:crypto';
import { Repeater } from '@repeaterjs/repeater';
import type { Actor } from '../accounts/actor.js';
import { requireRole } from '../accounts/actor.js';
import * as accountRepo from '../accounts/account.repository.js';
import * as pipelineRepo from '../pipelines/pipeline.repository.js';
import type { Db } from '../platform/database.js';
import { NotFoundError, UnavailableError, ValidationError } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import { SECOND } from '../platform/time.js';
import type { SqlChecker } from '../sql/sql-checker.js';
import * as streamRepo from '../streams/stream.repository.js';
import { PreviewRun, type PreviewDeps, type PreviewEvent, type PreviewPlan, type StartPosition } from './preview-run.js';

export type { EndReason, PreviewDeps, PreviewEvent, StartPosition } from './preview-run.js';

export const DEFAULT_ROW_LIMIT = 500;
export const MAX_ROW_LIMIT = 5000;
export const MAX_TIME_LIMIT_SECONDS = 120;

export interface PreviewInput {
  readonly sql?: string | null;
  readonly pipelineId?: string | null;
  readonly startPositions?: readonly { streamId?: string | null; streamName?: string | null; position: StartPosition }[] | null;
  readonly rowLimit?: number | null;
  readonly timeLimitSeconds?: number | null;
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
    const log = this.logger.child({ accountId: plan.actor.accountId, previewId: randomUUID() });
    // No buffer: each push waits for the subscriber, so a slow client slows the fetching.
    return new Repeater<PreviewEvent>(async (push, stop) => {
      const run = new PreviewRun(plan, deps, log, push);
      void stop.then(() => run.cancel());
      await run.run();
      stop();
    });
  }
}
