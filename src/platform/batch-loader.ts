/**
 * Fetches many keys with one call. What is asked for in one turn of the event loop
 * (e.g. the `outputStream` of every pipeline of a page, which GraphQL resolves side by
 * side) becomes one batch; each key is fetched at most once per loader. Built per
 * request, so nothing is shared across accounts or outlives the request.
 */
export class BatchLoader<K, V> {
  private readonly cache = new Map<K, Promise<V | undefined>>();
  private pending: { key: K; resolve: (value: V | undefined) => void; reject: (error: unknown) => void }[] = [];

  /**
   * `fetch` answers the keys it found; a key left out loads as undefined.
   * `signal`: once aborted, no new batch starts (the abort reason is thrown instead).
   */
  constructor(
    private readonly fetch: (keys: readonly K[]) => Promise<ReadonlyMap<K, V>>,
    private readonly signal?: AbortSignal,
  ) {}

  load(key: K): Promise<V | undefined> {
    const cached = this.cache.get(key);
    if (cached) return cached;
    const promise = new Promise<V | undefined>((resolve, reject) => {
      if (this.pending.length === 0) this.schedule();
      this.pending.push({ key, resolve, reject });
    });
    this.cache.set(key, promise);
    return promise;
  }

  loadMany(keys: readonly K[]): Promise<(V | undefined)[]> {
    return Promise.all(keys.map((key) => this.load(key)));
  }

  // After the promise jobs of this turn (resolvers of sibling fields) have run, as
  // DataLoader does, so their keys join the batch; no timer, so no added latency.
  private schedule(): void {
    void Promise.resolve().then(() => process.nextTick(() => void this.dispatch()));
  }

  private async dispatch(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    try {
      this.signal?.throwIfAborted();
      const found = await this.fetch(batch.map((entry) => entry.key));
      for (const entry of batch) entry.resolve(found.get(entry.key));
    } catch (error) {
      for (const entry of batch) {
        // A failed key is fetched again by the next load, not answered from the cache.
        this.cache.delete(entry.key);
        entry.reject(error);
      }
    }
  }
}
