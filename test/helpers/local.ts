import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/platform/logger.js';
import type { DatabaseHandle } from '../../src/platform/database.js';
import { createLocalRuntime, type LocalRuntimeParts } from '../../src/runtime/create-runtime.js';
import type { LocalRuntime } from '../../src/runtime/local/local-runtime.js';
import { startTestApp, type TestApp } from './app.js';

export interface LocalTestApp extends TestApp {
  readonly dataDir: string;
  readonly parts: LocalRuntimeParts;
  readonly runtime: LocalRuntime;
  /**
   * Stops this gateway's loop and clients but leaves every process running, as a gateway
   * killed with -9 would. The database stays open for a successor to share.
   */
  abandon(): Promise<void>;
}

/** The request deadline of test gateways whose requests may wait for a JVM to start. */
export const JVM_START_DEADLINE_MS = 180_000;

/**
 * A gateway with the real local runtime (Flink and Kafka processes) in a fresh data
 * folder. The reconciler loop runs with a short interval, as in production.
 */
export async function startLocalApp(
  options: {
    dataDir?: string;
    database?: DatabaseHandle;
    reconcileIntervalMs?: number;
    /** The bounds on hung job processes (default: as in production). */
    limits?: Partial<Pick<Config, 'jobUnresponsiveMs' | 'jobStartTimeoutMs'>>;
    /** Other settings of the gateway (e.g. the restart budget). */
    config?: Partial<Config>;
    /** false: no reconciler loop; the caller runs `app.reconciler.pass()` itself. */
    loop?: boolean;
  } = {},
): Promise<LocalTestApp> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'weir-local-')));
  const logger = createLogger(process.env.WEIR_TEST_LOG_LEVEL ?? 'warn');
  const parts = createLocalRuntime(testConfig({ dataDir, checkpointIntervalMs: 1000, ...options.limits }), logger);
  const t = await startTestApp({
    runtime: parts.runtime,
    storage: parts.storage,
    // The first publish or read waits for the Kafka broker (a JVM) to start: on a loaded
    // machine that can take longer than the production request deadline.
    config: { dataDir, reconcileIntervalMs: options.reconcileIntervalMs ?? 500, requestTimeoutMs: JVM_START_DEADLINE_MS, ...options.config },
    ...(options.database ? { database: options.database } : {}),
  });
  const stop = new AbortController();
  if (options.loop !== false) t.app.loop.start(stop.signal);
  return {
    ...t,
    dataDir,
    parts,
    runtime: parts.runtime as LocalRuntime,
    async abandon() {
      stop.abort();
      await t.app.loop.done();
      await parts.storage?.close();
    },
    async close() {
      stop.abort();
      await t.app.loop.done();
      await parts.close();
      await t.close();
      if (!options.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

