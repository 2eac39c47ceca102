import { parentPort } from 'node:worker_threads';
import { runSqlCheck } from './sql-check.js';
import type { SqlCheckOutcome, SqlCheckRequest } from './sql-check.js';

/**
 * A SQL check worker (see sql-worker-pool.ts): answers one check at a time, so a check
 * that runs away costs this thread, which the pool terminates, and never the gateway's
 * event loop.
 */

/** To the worker: a check. */
export interface SqlCheckMessage {
  readonly id: number;
  readonly request: SqlCheckRequest;
}

/** From the worker: ready (once, after its warm-up), then one answer per check. */
export type SqlWorkerReply = { readonly ready: true } | { readonly id: number; readonly outcome: SqlCheckOutcome };

const port = parentPort;
if (!port) throw new Error('sql-check-worker runs as a worker thread');

// Loads the parser and its tables before the first real check, so that one is not slow.
runSqlCheck({
  kind: 'pipeline',
  sql: "INSERT INTO o SELECT a, COUNT(*) AS n, CAST(b AS INT), IF(c > 1, 'x', 'y') FROM i WHERE c IS NOT NULL GROUP BY a, b, c",
  knownStreams: ['i', 'o'],
  path: [],
});

port.on('message', ({ id, request }: SqlCheckMessage) => {
  port.postMessage({ id, outcome: runSqlCheck(request) } satisfies SqlWorkerReply);
});
port.postMessage({ ready: true } satisfies SqlWorkerReply);
