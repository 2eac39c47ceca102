import { describe, expect, it, vi } from 'vitest';
import { finallyIterable } from '../../src/platform/finally-iterable.js';

/** A source like a quiet subscription: next() waits until return() ends it; return() may lag. */
function quietSource(returnResolves: Promise<void>) {
  let wake: (result: IteratorResult<number>) => void = () => {};
  const returned = vi.fn();
  const source: AsyncIterable<number> = {
    [Symbol.asyncIterator]: () => ({
      next: () => new Promise<IteratorResult<number>>((resolve) => (wake = resolve)),
      return: async () => {
        returned();
        await returnResolves;
        wake({ done: true, value: undefined });
        return { done: true, value: undefined };
      },
    }),
  };
  return { source, returned };
}

describe('finallyIterable', () => {
  it('ends when the consumer returns, before a slow source has finished returning', async () => {
    let finishReturn!: () => void;
    const { source, returned } = quietSource(new Promise((resolve) => (finishReturn = resolve)));
    const onEnd = vi.fn();
    const wrapped = finallyIterable(source, onEnd);
    const pending = wrapped.next();
    const returning = wrapped.return!();
    expect(onEnd).toHaveBeenCalledTimes(1);
    expect(returned).toHaveBeenCalledTimes(1);
    finishReturn();
    await expect(returning).resolves.toEqual({ done: true, value: undefined });
    await expect(pending).resolves.toEqual({ done: true, value: undefined });
    expect(onEnd).toHaveBeenCalledTimes(1);
  });

  it('ends once when the source finishes or throws', async () => {
    const onEnd = vi.fn();
    const done = finallyIterable((async function* () { yield 1; })(), onEnd);
    expect(await done.next()).toEqual({ done: false, value: 1 });
    expect(onEnd).not.toHaveBeenCalled();
    expect(await done.next()).toEqual({ done: true, value: undefined });
    await done.return!();
    expect(onEnd).toHaveBeenCalledTimes(1);

    const onError = vi.fn();
    const failing = finallyIterable((async function* () { throw new Error('boom'); })(), onError);
    await expect(failing.next()).rejects.toThrow('boom');
    expect(onError).toHaveBeenCalledTimes(1);
  });
});
