import { sql } from 'kysely';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WeirDatabase } from '../../src/platform/database-schema.js';
import type { DatabaseHandle } from '../../src/platform/database.js';

const STAGE_TIMEOUT_MS = 20_000;
const MAX_REQUESTS = 9;

type Table = keyof WeirDatabase & string;

/**
 * Runs `requests` at once so that, on real Postgres, they truly overlap: writes to
 * `heldTables` are held back (the test takes a SHARE lock on them, which lets reads
 * through and blocks inserts, updates and deletes) until every request waits on a lock,
 * then all are let go together. Each request has then read whatever it reads before it
 * writes: without a lock that serialises them (the account's), all of them read the same
 * counts, and a missing lock shows every time, not only when the timing is unlucky.
 *
 * With the lock, the first request waits at a held table and the others behind it at the
 * lock, so all of them are held up by the test either way. Fails if they do not all come
 * to wait within 20 s. PGlite runs one transaction at a time: there the requests just run
 * concurrently. Each waiting request holds a connection, and this one more: at most 9
 * requests (a gateway's pool has 10).
 */
export async function raceAtOnce<T>(
  database: DatabaseHandle,
  heldTables: Table | readonly Table[],
  requests: readonly (() => Promise<T>)[],
): Promise<T[]> {
  if (requests.length > MAX_REQUESTS) throw new Error(`at most ${MAX_REQUESTS} requests: each holds one of the pool's connections`);
  if (database.kind !== 'postgres') return Promise.all(requests.map((request) => request()));
  let running: Promise<PromiseSettledResult<T>[]> | undefined;
  let waiting = 0;
  await database.db.transaction().execute(async (trx) => {
    const tables = (typeof heldTables === 'string' ? [heldTables] : heldTables).map((table) => sql.table(table));
    await sql`LOCK TABLE ${sql.join(tables)} IN SHARE MODE`.execute(trx);
    running = Promise.allSettled(requests.map((request) => request()));
    const deadline = Date.now() + STAGE_TIMEOUT_MS;
    while (waiting < requests.length && Date.now() < deadline) {
      await sleep(10);
      // Backends held up by this one, directly or behind another that is. Within a
      // transaction pg_stat_activity is read once and kept: read it afresh.
      await sql`SELECT pg_stat_clear_snapshot()`.execute(trx);
      const { rows } = await sql<{ n: number }>`
        WITH RECURSIVE held(pid) AS (
          SELECT pid FROM pg_stat_activity WHERE pg_backend_pid() = ANY (pg_blocking_pids(pid))
          UNION
          SELECT a.pid FROM pg_stat_activity a JOIN held ON held.pid = ANY (pg_blocking_pids(a.pid))
        ) SELECT count(*)::int AS n FROM held`.execute(trx);
      waiting = rows[0]!.n;
    }
  });
  const settled = await running!;
  if (waiting < requests.length) {
    throw new Error(`only ${waiting} of ${requests.length} requests came to wait on a lock at once: the race was not staged`);
  }
  return settled.map((result) => {
    if (result.status === 'rejected') throw result.reason;
    return result.value;
  });
}
