import { IS_CONTROL, IS_TRANSACTIONAL } from '@platformatic/kafka';

/** What this file needs of a fetched record batch. */
export interface FetchedBatch {
  readonly firstOffset: bigint;
  readonly lastOffsetDelta: number;
  readonly attributes: number;
  readonly producerId: bigint;
  readonly records: readonly { readonly key: Buffer | null }[];
}

/** A transaction the broker says was aborted, from the fetch response of its partition. */
export interface AbortedTransaction {
  readonly producerId: bigint;
  readonly firstOffset: bigint;
}

/** Control record type (the key's second int16): 0 ABORT, 1 COMMIT. */
const ABORT_MARKER = 0;

function isAbortMarker(batch: FetchedBatch): boolean {
  const key = batch.records[0]?.key;
  return !!key && key.length >= 4 && key.readInt16BE(2) === ABORT_MARKER;
}

/**
 * The batches a `read_committed` reader may see, from one fetch of one partition: a fetch
 * at that isolation level stops at the last stable offset, but still returns the records
 * of aborted transactions, with the list of those transactions, for the client to drop.
 * Kafka's own consumer does it so: walking the batches in order, a producer is aborting
 * from the first offset of each of its aborted transactions up to its ABORT marker, and
 * its transactional batches in between are dropped. Control batches are kept (they move
 * the reader's position); callers skip their records.
 */
export function committedBatches<B extends FetchedBatch>(batches: readonly B[], aborted: readonly AbortedTransaction[]): B[] {
  if (aborted.length === 0) return [...batches];
  const pending = [...aborted].sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0));
  const aborting = new Set<bigint>();
  const kept: B[] = [];
  for (const batch of batches) {
    const lastOffset = batch.firstOffset + BigInt(batch.lastOffsetDelta);
    while (pending.length > 0 && pending[0]!.firstOffset <= lastOffset) aborting.add(pending.shift()!.producerId);
    if ((batch.attributes & IS_CONTROL) !== 0) {
      if (isAbortMarker(batch)) aborting.delete(batch.producerId);
      kept.push(batch);
      continue;
    }
    if ((batch.attributes & IS_TRANSACTIONAL) !== 0 && aborting.has(batch.producerId)) continue;
    kept.push(batch);
  }
  return kept;
}
