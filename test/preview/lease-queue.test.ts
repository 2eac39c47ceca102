import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/platform/logger.js';
import { LeaseQueue, type PooledTaskManager } from '../../src/preview/lease-queue.js';
import { LandedOnUsedTaskManagerError } from '../../src/preview/preview-backend.js';

/** The queue alone (no Flink): TaskManagers are records, retirement is a recorded call. */
function queue(queueTimeoutMs = 60_000) {
  const retired: string[] = [];
  const leased: string[] = [];
  let retiring: ((tm: PooledTaskManager) => Promise<void>) | undefined;
  const q = new LeaseQueue<PooledTaskManager>({
    queueTimeoutMs,
    logger: createLogger('silent'),
    retire: async (tm) => {
      await retiring?.(tm);
      retired.push(tm.id);
    },
    leased: (tm) => leased.push(tm.id),
  });
  return { q, retired, leased, onRetire: (fn: (tm: PooledTaskManager) => Promise<void>) => (retiring = fn) };
}

describe('LeaseQueue', () => {
  it('grants an idle TaskManager at once without saying the preview queued', async () => {
    const { q } = queue();
    q.add({ id: 'tm-1', state: 'idle' });
    const positions: number[] = [];
    const lease = await q.lease('a', 5, (p) => positions.push(p));
    expect(lease.taskManagerId).toBe('tm-1');
    expect(positions).toEqual([]);
    lease.landed(['tm-1']);
    await lease.release();
  });

  it('tells a waiting preview its position, then grants in arrival order', async () => {
    const { q } = queue();
    const positions = { a: [] as number[], b: [] as number[] };
    const first = q.lease('a', 5, (p) => positions.a.push(p));
    const second = q.lease('b', 5, (p) => positions.b.push(p));
    await new Promise((resolve) => setImmediate(resolve));
    expect(positions).toEqual({ a: [1], b: [2] });
    q.add({ id: 'tm-1', state: 'idle' });
    const lease = await first;
    expect(lease.taskManagerId).toBe('tm-1');
    expect(positions.b).toEqual([2, 1]);
    lease.landed(['tm-1']);
    q.add({ id: 'tm-2', state: 'idle' });
    expect((await second).taskManagerId).toBe('tm-2');
  });

  it('holds the submission window until landed(): no other grant and no retirement meanwhile', async () => {
    const { q, retired } = queue();
    for (const id of ['tm-1', 'tm-2', 'tm-3']) q.add({ id, state: 'idle' });
    const done = await q.lease('a', 5);
    done.landed(['tm-1']);
    const open = await q.lease('a', 5);
    let granted = false;
    const next = q.lease('b', 5).then((lease) => ((granted = true), lease));
    const gone = done.release();
    await new Promise((resolve) => setImmediate(resolve));
    expect([granted, retired]).toEqual([false, []]);
    open.landed(['tm-2']);
    // Then both, in the order they asked for the lock (here the retirement first).
    await gone;
    expect(retired).toEqual(['tm-1']);
    expect((await next).taskManagerId).toBe('tm-3');
  });

  it('moves the lease to another fresh TaskManager the job landed on, and refuses a used one', async () => {
    const { q, retired, leased } = queue();
    q.add({ id: 'tm-1', state: 'idle' });
    q.add({ id: 'tm-2', state: 'idle' });
    const lease = await q.lease('a', 5);
    lease.landed(['tm-2']);
    expect(lease.taskManagerId).toBe('tm-2');
    // The pool heard of both: the one granted, and the one the lease moved to.
    expect(leased).toEqual(['tm-1', 'tm-2']);
    await lease.release();
    expect(retired).toEqual(['tm-2']);
    expect(q.get('tm-1')?.state).toBe('idle');

    const other = await q.lease('a', 5);
    expect(other.taskManagerId).toBe('tm-1');
    expect(() => other.landed(['tm-9'])).toThrow(LandedOnUsedTaskManagerError);
  });

  it('keeps each account under its limit while others are served, and times out a wait', async () => {
    const { q } = queue(200);
    q.add({ id: 'tm-1', state: 'idle' });
    const a1 = await q.lease('a', 1);
    a1.landed(['tm-1']);
    q.add({ id: 'tm-2', state: 'idle' });
    const a2 = q.lease('a', 1);
    const b1 = await q.lease('b', 1);
    expect(b1.taskManagerId).toBe('tm-2');
    await expect(a2).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(q.lease('a', 0)).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' });
  });
});
