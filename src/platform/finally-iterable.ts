/**
 * Wraps an async iterable so that `onEnd` runs once when it ends in any way: it finished,
 * it threw, or its consumer called return() or throw(). return() goes to the source at
 * once, even while a next() is pending; an async generator around the source would wait
 * for that next(), which for a quiet subscription may never come.
 */
export function finallyIterable<T>(source: AsyncIterable<T>, onEnd: () => void): AsyncIterableIterator<T> {
  const iterator = source[Symbol.asyncIterator]();
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    onEnd();
  };
  return {
    async next() {
      try {
        const result = await iterator.next();
        if (result.done) end();
        return result;
      } catch (error) {
        end();
        throw error;
      }
    },
    async return(value?: unknown) {
      end();
      return (await iterator.return?.(value)) ?? { done: true, value: undefined };
    },
    async throw(error?: unknown) {
      end();
      if (!iterator.throw) throw error;
      return iterator.throw(error);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
