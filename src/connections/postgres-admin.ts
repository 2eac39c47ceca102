import { setTimeout as sleep } from 'node:timers/promises';
import type { PropertyValue } from './connection.table.js';
import { cdcPublicationName, cdcSlotName } from './connectors/postgres-cdc.js';
import { derivedName } from './connectors/postgres-server.js';
import { isCheck, withServer, type CheckResult, type Login } from './postgres-inspect.js';

/**
 * What the gateway itself does on a user's Postgres server: the clean-up of what a
 * `postgres-cdc` connection left there. A replication slot keeps every WAL segment from
 * its position on, so a slot nobody reads fills the server's disk.
 */

/** A deactivated job may still hold the slot for a moment while its process stops. */
const SLOT_RELEASE_WAIT_MS = 20_000;

export interface CdcCleanup {
  readonly slot: string;
  /** Set when Weir made the publication (the default name), so Weir drops it too. */
  readonly publication?: string;
}

/** What deleting a `postgres-cdc` connection removes on its server. */
export function cdcCleanupOf(connectionId: string, properties: Readonly<Record<string, PropertyValue>>): CdcCleanup {
  const publication = cdcPublicationName(connectionId, properties);
  return {
    slot: cdcSlotName(connectionId, properties),
    ...(publication === derivedName(connectionId) ? { publication } : {}),
  };
}

export class CdcCleanupError extends Error {
  override readonly name = 'CdcCleanupError';
}

/**
 * Drops the slot (waiting while a stopping job still holds it) and Weir's publication.
 * Throws CdcCleanupError with the server's message when it cannot: nothing is assumed
 * gone that is not.
 */
export async function dropCdcObjects(login: Login, cleanup: CdcCleanup): Promise<void> {
  let outcome: void | CheckResult;
  try {
    outcome = await withServer(login, async (client) => {
      const deadline = Date.now() + SLOT_RELEASE_WAIT_MS;
      for (;;) {
        const { rows } = await client.query<{ active: boolean }>('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [cleanup.slot]);
        if (rows.length === 0) break;
        if (!rows[0]!.active) {
          await client.query('SELECT pg_drop_replication_slot($1)', [cleanup.slot]);
          break;
        }
        if (Date.now() > deadline) throw new CdcCleanupError(`replication slot ${cleanup.slot} is still in use by another session`);
        await sleep(250);
      }
      // The name is Weir's own (derivedName): nothing to quote.
      if (cleanup.publication) await client.query(`DROP PUBLICATION IF EXISTS ${cleanup.publication}`);
    });
  } catch (error) {
    if (error instanceof CdcCleanupError) throw error;
    throw new CdcCleanupError(error instanceof Error ? error.message : String(error));
  }
  if (isCheck(outcome)) throw new CdcCleanupError(outcome.message);
}
