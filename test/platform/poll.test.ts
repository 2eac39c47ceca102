import { describe, expect, it } from 'vitest';
import { Mutex } from '../../src/platform/mutex.js';
import { pollUntil } from '../../src/platform/poll.js';

const timedOut = () => new Error('timed out');

describe('pollUntil', () => {
  it('returns the first value a probe gives, false and 0 included', async () => {
    let calls = 0;
    expect(await pollUntil(() => (++calls < 3 ? undefined : 0), { timeoutMs: 5_000, intervalMs: 1, timeoutError: timedOut })).toBe(0);
    expect(calls).toBe(3);
    expect(await pollUntil(async () => false, { timeoutMs: 5_000, timeoutError: timedOut })).toBe(false);
  });

  it('rejects with the timeout error once the time is up, having probed at least twice', async () => {
    let calls = 0;
    await expect(pollUntil(() => void calls++, { timeoutMs: 30, intervalMs: 5, timeoutError: timedOut })).rejects.toThrow('timed out');
    expect(calls).toBeGreaterThanOrEqual(2);
  });

  it("ends with a probe's own error at once", async () => {
    let calls = 0;
    const probe = () => {
      calls += 1;
      throw new Error('refused for good');
    };
    await expect(pollUntil(probe, { timeoutMs: 5_000, timeoutError: timedOut })).rejects.toThrow('refused for good');
    expect(calls).toBe(1);
  });

  it('ends when its signal aborts, with the signal’s reason', async () => {
    const controller = new AbortController();
    const poll = pollUntil(() => undefined, { timeoutMs: 60_000, intervalMs: 10_000, signal: controller.signal, timeoutError: timedOut });
    controller.abort(new Error('client gone'));
    await expect(poll).rejects.toThrow('client gone');
  });
});

describe('Mutex', () => {
  it('lets one holder in at a time, in the order they asked', async () => {
    const mutex = new Mutex();
    const order: string[] = [];
    const hold = async (name: string) => {
      const release = await mutex.acquire();
      order.push(`${name} in`);
      await new Promise((resolve) => setImmediate(resolve));
      order.push(`${name} out`);
      release();
    };
    expect(mutex.free).toBe(true);
    const all = Promise.all([hold('a'), hold('b'), hold('c')]);
    expect(mutex.free).toBe(false);
    await all;
    expect(order).toEqual(['a in', 'a out', 'b in', 'b out', 'c in', 'c out']);
    expect(mutex.free).toBe(true);
  });

  it('a second release does nothing', async () => {
    const mutex = new Mutex();
    const release = await mutex.acquire();
    const waiting = mutex.acquire();
    release();
    release();
    const second = await waiting;
    expect(mutex.free).toBe(false);
    second();
    expect(mutex.free).toBe(true);
  });
});
