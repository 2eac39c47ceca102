/**
 * Tells open subscriptions that their API key was revoked, so they end at once rather
 * than at the next request. In process: each replica closes the sockets it holds.
 */
export class KeyRevocations {
  private readonly listeners = new Map<string, Set<() => void>>();

  /** Calls `onRevoked` when `keyId` is revoked; returns the function that stops listening. */
  watch(keyId: string, onRevoked: () => void): () => void {
    let set = this.listeners.get(keyId);
    if (!set) this.listeners.set(keyId, (set = new Set()));
    set.add(onRevoked);
    return () => {
      set.delete(onRevoked);
      if (set.size === 0) this.listeners.delete(keyId);
    };
  }

  revoked(keyId: string): void {
    const set = this.listeners.get(keyId);
    this.listeners.delete(keyId);
    for (const listener of set ?? []) listener();
  }

  /** How many subscriptions are being watched (for tests and metrics). */
  get size(): number {
    let n = 0;
    for (const set of this.listeners.values()) n += set.size;
    return n;
  }
}
