import { compareMembers, type ScopedPresenceEntry, type ScopedPresenceMember, type ScopedPresenceStore } from "./store.js";
import { markInProcess } from "../kernel/in-process.js";

interface Held {
  member: ScopedPresenceMember;
  expiresAt: number;
}

/**
 * The in-memory scoped presence store, the engine's default for a single
 * node. Expiry is lazy, as in `memoryPresenceStore`: no timer runs, reads
 * skip expired members, and `sweepExpired()` (called by the engine) removes
 * and reports them. Members are copied in and out, so a caller changing an
 * object it passed or got changes nothing here.
 *
 * @param options.now Clock in epoch ms, for tests; defaults to `Date.now`.
 */
export function memoryScopedPresenceStore(options: { now?: () => number } = {}): ScopedPresenceStore {
  const now = options.now ?? Date.now;
  /** Company and scope (joined by a NUL, which neither holds at its start) → member id → entry. */
  const scopes = new Map<string, { companyId: string; scope: string; members: Map<string, Held> }>();
  const keyOf = (companyId: string, scope: string) => `${companyId.length}:${companyId}\u0000${scope}`;

  const scopeForWrite = (companyId: string, scope: string) => {
    const key = keyOf(companyId, scope);
    let held = scopes.get(key);
    if (!held) {
      held = { companyId, scope, members: new Map() };
      scopes.set(key, held);
    }
    return held;
  };

  const forgetIfEmpty = (companyId: string, scope: string) => {
    const key = keyOf(companyId, scope);
    if (scopes.get(key)?.members.size === 0) scopes.delete(key);
  };

  return markInProcess({
    async put(entry, ttlMs) {
      const held = scopeForWrite(entry.companyId, entry.scope);
      const existed = held.members.has(entry.member.memberId);
      held.members.set(entry.member.memberId, { member: copy(entry.member), expiresAt: now() + ttlMs });
      return !existed;
    },

    async remove(companyId, scope, memberId) {
      const held = scopes.get(keyOf(companyId, scope));
      const entry = held?.members.get(memberId);
      if (!held || !entry) return null;
      held.members.delete(memberId);
      forgetIfEmpty(companyId, scope);
      return { companyId, scope, member: copy(entry.member) };
    },

    async heartbeat(entries, ttlMs) {
      const expiresAt = now() + ttlMs;
      const readded: ScopedPresenceEntry[] = [];
      for (const entry of entries) {
        const held = scopeForWrite(entry.companyId, entry.scope);
        const existing = held.members.get(entry.member.memberId);
        if (existing) {
          existing.expiresAt = expiresAt;
          continue;
        }
        held.members.set(entry.member.memberId, { member: copy(entry.member), expiresAt });
        readded.push({ companyId: entry.companyId, scope: entry.scope, member: copy(entry.member) });
      }
      return readded;
    },

    async sweepExpired() {
      const at = now();
      const swept: ScopedPresenceEntry[] = [];
      for (const [key, held] of scopes) {
        for (const [memberId, entry] of held.members) {
          if (entry.expiresAt > at) continue;
          held.members.delete(memberId);
          swept.push({ companyId: held.companyId, scope: held.scope, member: copy(entry.member) });
        }
        if (held.members.size === 0) scopes.delete(key);
      }
      return swept;
    },

    async list(companyId, scope, limit) {
      const at = now();
      const live: ScopedPresenceMember[] = [];
      for (const entry of scopes.get(keyOf(companyId, scope))?.members.values() ?? []) if (entry.expiresAt > at) live.push(entry.member);
      live.sort(compareMembers);
      const members = (limit === undefined ? live : live.slice(0, limit)).map(copy);
      return { members, total: live.length };
    },
  });
}

/** A copy of a member whose state is JSON (the engine checked it). */
function copy(member: ScopedPresenceMember): ScopedPresenceMember {
  return { ...member, state: member.state === undefined ? undefined : JSON.parse(JSON.stringify(member.state)) };
}
