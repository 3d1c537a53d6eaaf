/**
 * The last `capacity` keys seen, oldest forgotten first: how a node
 * remembers what it already sent, so that a repeated write (an idempotent
 * `toUser`, a document update resent with its mutation id) is sent again
 * only where it was not. Past the capacity a repeat may be sent twice (same
 * id or version: clients drop it), never lost.
 */
export class RecentKeys {
  private readonly keys = new Set<string>();

  constructor(private readonly capacity: number) {}

  /** Remembers `key`; says whether it was not remembered already. */
  addNew(key: string): boolean {
    if (this.keys.has(key)) return false;
    this.keys.add(key);
    if (this.keys.size > this.capacity) this.keys.delete(this.keys.values().next().value!);
    return true;
  }
}
