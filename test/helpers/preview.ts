import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { createLogger } from '../../src/platform/logger.js';
import { createLocalRuntime, type LocalRuntimeParts } from '../../src/runtime/create-runtime.js';
import { findMarkedProcesses } from '../../src/runtime/local/processes.js';
import { startTestApp, type TestApp } from './app.js';
import { JVM_START_DEADLINE_MS } from './local.js';
import { sseStream } from './sse.js';
import { testConfig } from '../../src/config.js';

/** Every field of every preview event. */
export const PREVIEW = `subscription ($input: PreviewInput!) { preview(input: $input) {
  __typename
  ... on PreviewQueued { position }
  ... on PreviewStarted { columns { name type } taskManager leaseMs }
  ... on PreviewRows { rows { kind values } }
  ... on PreviewEnded { reason message line column } } }`;

/** A gateway in process with the local runtime and its real preview session cluster. */
export interface PreviewGateway {
  readonly t: TestApp;
  readonly parts: LocalRuntimeParts;
  readonly dataDir: string;
  /** Stops everything and checks that no process of this gateway is left. */
  close(): Promise<void>;
}

export async function startPreviewGateway(
  name: string,
  options: { readonly poolSize: number; readonly queueTimeoutMs?: number },
): Promise<PreviewGateway> {
  const dataDir = await mkdtemp(join(tmpdir(), `weir-${name}-`));
  const logger = createLogger(process.env.WEIR_TEST_LOG_LEVEL ?? 'warn');
  const parts = createLocalRuntime(
    testConfig({
      dataDir,
      checkpointIntervalMs: 1000,
      previewPoolSize: options.poolSize,
      ...(options.queueTimeoutMs !== undefined ? { previewQueueTimeoutMs: options.queueTimeoutMs } : {}),
    }),
    logger,
  );
  const t = await startTestApp({ runtime: parts.runtime, storage: parts.storage, preview: parts.preview, config: { dataDir, requestTimeoutMs: JVM_START_DEADLINE_MS } });
  await parts.preview.pool.start();
  return {
    t,
    parts,
    dataDir,
    async close() {
      const { hash } = parts.preview.cluster;
      await parts.close();
      await t.close();
      await rm(dataDir, { recursive: true, force: true });
      // Nothing this gateway started outlives it (other test files' processes are theirs).
      expect(await parts.processes()).toEqual([]);
      expect((await findMarkedProcesses('weir-preview-')).filter((p) => p.marker.includes(`:${hash}`))).toEqual([]);
    },
  };
}

/**
 * Runs a preview over SSE to its PreviewEnded (or until `stopAfter` says to leave, which
 * closes the subscription); returns its events, or `[{ __typename: 'errors', errors }]`.
 */
export async function runPreview(t: TestApp, key: string, input: Record<string, unknown>, stopAfter?: (events: any[]) => boolean): Promise<any[]> {
  const events: any[] = [];
  for await (const result of sseStream(t, PREVIEW, { input }, key)) {
    if (result.errors) return [{ __typename: 'errors', errors: result.errors }];
    events.push(result.data!.preview);
    if (events.at(-1).__typename === 'PreviewEnded' || stopAfter?.(events)) break;
  }
  return events;
}

export const rowsOf = (events: any[]) => events.filter((e) => e.__typename === 'PreviewRows').flatMap((e) => e.rows);
export const endOf = (events: any[]) => events.find((e) => e.__typename === 'PreviewEnded');
export const startOf = (events: any[]) => events.find((e) => e.__typename === 'PreviewStarted');
