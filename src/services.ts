import { AccountService } from './accounts/account.service.js';
import { ApiKeyCodec } from './accounts/api-key-codec.js';
import { findTier } from './accounts/account.repository.js';
import { KeyRevocations } from './accounts/key-revocations.js';
import { SubscriptionSlots } from './accounts/subscription-slots.js';
import { ConnectionService } from './connections/connection.service.js';
import { JobService } from './jobs/job.service.js';
import { SnapshotService } from './jobs/snapshot.service.js';
import { StatusEvents } from './jobs/status-events.js';
import { PipelineService } from './pipelines/pipeline.service.js';
import type { Db } from './platform/database.js';
import type { Logger } from './platform/logger.js';
import type { Runtime } from './runtime/runtime.js';
import { PreviewService, type PreviewDeps } from './preview/preview.service.js';
import { RateLimiter } from './platform/rate-limiter.js';
import type { SqlChecker } from './sql/sql-checker.js';
import { RecordsService } from './streams/records.service.js';
import type { StreamStorage } from './streams/stream-storage.js';
import { StreamService } from './streams/stream.service.js';

/** The domain services: what resolvers call. Built once per gateway. */
export interface Services {
  readonly accounts: AccountService;
  readonly streams: StreamService;
  readonly records: RecordsService;
  readonly connections: ConnectionService;
  readonly pipelines: PipelineService;
  readonly jobs: JobService;
  readonly snapshots: SnapshotService;
  readonly statusEvents: StatusEvents;
  readonly revocations: KeyRevocations;
  /** Open subscriptions per API key and account, bounded by the tier. */
  readonly subscriptions: SubscriptionSlots;
  readonly previews: PreviewService;
}

export interface ServiceDeps {
  readonly db: Db;
  readonly secret: string;
  readonly signupRatePerMinute: number;
  readonly logger: Logger;
  /** Parses and checks pipeline and preview SQL, off the event loop. */
  readonly sql: SqlChecker;
  /** Asks the reconciler for a pass now (after a desired-state change). */
  readonly wakeReconciler: () => void;
  /** Asked at activation whether it would accept the job (e.g. a Kubernetes ResourceQuota); takes and deletes snapshots. */
  readonly runtime?: Pick<Runtime, 'name' | 'admit' | 'snapshot' | 'deleteSnapshot'>;
  readonly statusEvents?: StatusEvents;
  /** Where stream records live; undefined: publishing and reading records is UNAVAILABLE. */
  readonly storage?: StreamStorage | undefined;
  /** `host:port` of the platform's own database, which no connection may name. */
  readonly platformDatabase?: string | undefined;
  /** The preview cluster and pool; undefined: previews are UNAVAILABLE. */
  readonly preview?: Omit<PreviewDeps, 'storage'> | undefined;
}

export function createServices(deps: ServiceDeps): Services {
  const { db, logger } = deps;
  const revocations = new KeyRevocations();
  const jobs = new JobService(db, deps.wakeReconciler, logger, deps.runtime, deps.storage);
  const streams = new StreamService(db, logger);
  return {
    accounts: new AccountService(
      db,
      new ApiKeyCodec(deps.secret),
      new RateLimiter(deps.signupRatePerMinute),
      revocations,
      logger,
    ),
    streams,
    records: new RecordsService(streams, deps.storage, logger),
    connections: new ConnectionService(db, jobs, logger, { storage: deps.storage, database: deps.platformDatabase }),
    pipelines: new PipelineService(db, jobs, logger, deps.sql),
    jobs,
    snapshots: new SnapshotService(db, deps.runtime, logger.child({ component: 'snapshots' })),
    statusEvents: deps.statusEvents ?? new StatusEvents(),
    revocations,
    subscriptions: new SubscriptionSlots((tier) => findTier(db, tier)),
    previews: new PreviewService(
      db,
      deps.preview && deps.storage ? { ...deps.preview, storage: deps.storage } : undefined,
      logger.child({ component: 'preview' }),
      deps.sql,
    ),
  };
}
