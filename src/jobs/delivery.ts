import type { DeliveryGuarantee } from './job.table.js';
import { MINUTE } from '../platform/time.js';

/**
 * How long a Kafka transaction of an exactly-once job may stay open. It must outlast a
 * checkpoint interval plus a recovery (Flink commits a checkpoint's transactions after a
 * restart), and stay within the broker's `transaction.max.timeout.ms` (15 minutes by
 * default). It also bounds how long a job that died and never came back holds up
 * `read_committed` readers of the partitions it was writing.
 */
export const TRANSACTION_TIMEOUT_MS = 15 * MINUTE;

/**
 * The Kafka sink options for a guarantee. Exactly-once writes in transactions committed
 * when a checkpoint completes; their ids start with the job's own prefix (the only ones
 * its principal may use), so Flink finds and aborts what a killed process left open.
 */
export function kafkaSinkDelivery(guarantee: DeliveryGuarantee, transactionalIdPrefix: string): Record<string, string> {
  return guarantee === 'EXACTLY_ONCE'
    ? {
        'sink.delivery-guarantee': 'exactly-once',
        'sink.transactional-id-prefix': transactionalIdPrefix,
        'properties.transaction.timeout.ms': String(TRANSACTION_TIMEOUT_MS),
      }
    : { 'sink.delivery-guarantee': 'at-least-once' };
}
