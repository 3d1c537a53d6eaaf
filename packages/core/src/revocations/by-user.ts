import type { UserKey } from "../inbox/store.js";
import { revocationSlot, type RevocationRecord } from "./store.js";
import { userKeyOf } from "../kernel/rooms.js";

/**
 * Revocation records by user, in memory: the newest record of each kind (and
 * topic) per user, unexpired, at most `maxRecords` of them. Past the cap the
 * users revoked longest ago go first. Synchronous, so a check and the join it
 * guards cannot be split by another revocation.
 */
export class RevocationsByUser {
  /** User key to slot to record; a user moves to the end when revoked again, so the first is the stalest. */
  private readonly users = new Map<string, Map<string, RevocationRecord>>();
  private count = 0;

  constructor(
    private readonly maxRecords: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Keeps a record unless its slot holds one at least as recent; whether it was kept. */
  add(record: RevocationRecord): boolean {
    const key = userKeyOf(record);
    const slot = revocationSlot(record);
    const slots = this.users.get(key) ?? new Map<string, RevocationRecord>();
    const kept = slots.get(slot);
    if (kept && kept.at >= record.at) return false;
    this.users.delete(key);
    this.users.set(key, slots);
    slots.delete(slot);
    slots.set(slot, record);
    if (!kept) this.count += 1;
    this.evict();
    return true;
  }

  /** The user's unexpired records. */
  of(user: UserKey): RevocationRecord[] {
    const slots = this.users.get(userKeyOf(user));
    if (!slots) return [];
    const now = this.now();
    return [...slots.values()].filter((record) => record.expiresAt > now);
  }

  /**
   * Drops the expired records of the stalest users, and while over the cap
   * their oldest records, up to the first user who keeps any.
   */
  private evict(): void {
    const now = this.now();
    for (const [key, slots] of this.users) {
      for (const [slot, record] of slots) {
        if (record.expiresAt > now) continue;
        slots.delete(slot);
        this.count -= 1;
      }
      for (const slot of slots.keys()) {
        if (this.count <= this.maxRecords) break;
        slots.delete(slot);
        this.count -= 1;
      }
      if (slots.size > 0) return;
      this.users.delete(key);
    }
  }
}
