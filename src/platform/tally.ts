/** Counts per key. A key whose count falls to zero is forgotten, so only live keys are held. */
export class Tally {
  private readonly counts = new Map<string, number>();

  get(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  add(key: string): void {
    this.counts.set(key, this.get(key) + 1);
  }

  remove(key: string): void {
    const left = this.get(key) - 1;
    if (left > 0) this.counts.set(key, left);
    else this.counts.delete(key);
  }

  /** How many keys have a count above zero. */
  get size(): number {
    return this.counts.size;
  }
}
