/**
 * Members grouped by key, for the per-user indexes of live sockets and
 * devices. Most users have one device, so a group of one is held as the
 * member itself and becomes a Set only when a second joins: at tens of
 * thousands of connections, a Set per user costs more than the member.
 */
export class Groups<K, V> {
  private readonly groups = new Map<K, V | Set<V>>();

  /** Adds `member` to the group of `key`. */
  add(key: K, member: V): void {
    const group = this.groups.get(key);
    if (group === undefined) this.groups.set(key, member);
    else if (group instanceof Set) group.add(member);
    else if (group !== member) this.groups.set(key, new Set([group, member]));
  }

  /** Removes `member` from the group of `key`, and the group once empty. */
  delete(key: K, member: V): void {
    const group = this.groups.get(key);
    if (group instanceof Set) {
      group.delete(member);
      if (group.size === 1) this.groups.set(key, group.values().next().value as V);
    } else if (group === member) {
      this.groups.delete(key);
    }
  }

  /** Calls `visit` with each member of the group of `key`: {@link of} without a generator, for hot paths. */
  forEach(key: K, visit: (member: V) => void): void {
    const group = this.groups.get(key);
    if (group instanceof Set) group.forEach((member) => visit(member));
    else if (group !== undefined) visit(group);
  }

  /** The members of the group of `key` (none when there is no group). */
  *of(key: K): IterableIterator<V> {
    const group = this.groups.get(key);
    if (group instanceof Set) yield* group;
    else if (group !== undefined) yield group;
  }

  /** Whether `member` is in the group of `key`. */
  has(key: K, member: V): boolean {
    const group = this.groups.get(key);
    return group instanceof Set ? group.has(member) : group === member;
  }

  /** How many members the group of `key` has. */
  sizeOf(key: K): number {
    const group = this.groups.get(key);
    return group instanceof Set ? group.size : group === undefined ? 0 : 1;
  }

  /** Calls `visit` with every member of every group: {@link all} without a generator, for walks over every connection. */
  forEachMember(visit: (member: V) => void): void {
    this.groups.forEach((group) => {
      if (group instanceof Set) group.forEach((member) => visit(member));
      else visit(group);
    });
  }

  /** Every member of every group. */
  *all(): IterableIterator<V> {
    for (const group of this.groups.values()) {
      if (group instanceof Set) yield* group;
      else yield group;
    }
  }
}
