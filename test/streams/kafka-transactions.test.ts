import { IS_CONTROL, IS_TRANSACTIONAL } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { committedBatches, type FetchedBatch } from '../../src/streams/kafka-transactions.js';

const marker = (type: 0 | 1) => {
  const key = Buffer.alloc(4);
  key.writeInt16BE(0, 0);
  key.writeInt16BE(type, 2);
  return key;
};

const data = (firstOffset: number, producerId: number, count = 1, transactional = true): FetchedBatch => ({
  firstOffset: BigInt(firstOffset),
  lastOffsetDelta: count - 1,
  attributes: transactional ? IS_TRANSACTIONAL : 0,
  producerId: BigInt(producerId),
  records: Array.from({ length: count }, () => ({ key: null })),
});
const control = (offset: number, producerId: number, type: 0 | 1): FetchedBatch => ({
  firstOffset: BigInt(offset),
  lastOffsetDelta: 0,
  attributes: IS_TRANSACTIONAL | IS_CONTROL,
  producerId: BigInt(producerId),
  records: [{ key: marker(type) }],
});
const offsets = (batches: FetchedBatch[]) => batches.map((b) => Number(b.firstOffset));

describe('committed batches (read_committed)', () => {
  it('drops the batches of aborted transactions up to their ABORT marker, and nothing else', () => {
    const batches = [
      data(0, 7, 2), // producer 7, committed
      control(2, 7, 1),
      data(3, 8), // producer 8, aborted, interleaved with 9's committed one
      data(4, 9),
      data(5, 8, 3),
      control(8, 8, 0),
      control(9, 9, 1),
      data(10, 8), // producer 8 again, a later transaction that commits
      control(11, 8, 1),
      data(12, 5, 1, false), // not transactional: always seen
    ];
    const kept = committedBatches(batches, [{ producerId: 8n, firstOffset: 3n }]);
    expect(offsets(kept)).toEqual([0, 2, 4, 8, 9, 10, 11, 12]);
  });

  it('drops an aborted transaction whose marker is not in this fetch, and two aborts of one producer', () => {
    const open = committedBatches([data(0, 1), data(1, 2), data(2, 1)], [{ producerId: 1n, firstOffset: 0n }]);
    expect(offsets(open)).toEqual([1]);
    const twice = committedBatches(
      [data(0, 1), control(1, 1, 0), data(2, 1), control(3, 1, 1), data(4, 1), control(5, 1, 0)],
      [
        { producerId: 1n, firstOffset: 4n },
        { producerId: 1n, firstOffset: 0n },
      ],
    );
    expect(offsets(twice)).toEqual([1, 2, 3, 5]);
  });

  it('keeps everything when nothing was aborted', () => {
    const batches = [data(0, 1), control(1, 1, 1)];
    expect(committedBatches(batches, [])).toEqual(batches);
  });
});
