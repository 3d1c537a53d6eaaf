import type { PresenceScope, ScopedPresenceMember } from "@truss/protocol";
import { methodsOf } from "../kernel/contract.js";

export type { PresenceScope, ScopedPresenceListing, ScopedPresenceMember } from "@truss/protocol";

/** One member of one scope of one company, as a {@link ScopedPresenceStore} holds it. */
export interface ScopedPresenceEntry {
  /** The tenant. */
  companyId: string;
  /** The scope's key ({@link scopeKey}): an opaque string to the store. */
  scope: string;
  /** The member, with its state. */
  member: ScopedPresenceMember;
}

/**
 * Presence in scopes (a topic, a document) with a state per member, kept
 * alive by heartbeats. A member stays only while it is heartbeated within
 * `ttlMs`, so the members of a node that died leave within the TTL.
 * Implementations must be safe when many engine nodes share one store: a
 * member's removal (by `remove` or `sweepExpired`) is reported once across
 * them.
 */
export interface ScopedPresenceStore {
  /**
   * Adds a member, or replaces its entry (a state update), until
   * `now + ttlMs`. Resolves `true` when the scope did not hold the member
   * (a join), `false` when it replaced one (an expired one not swept yet
   * included: nobody was told it left).
   */
  put(entry: ScopedPresenceEntry, ttlMs: number): Promise<boolean>;
  /**
   * Removes a member. Resolves with the member removed, or `null` when the
   * scope did not hold it (never joined, removed or swept already).
   */
  remove(companyId: string, scope: string, memberId: string): Promise<ScopedPresenceEntry | null>;
  /**
   * Extends each listed member's expiry to `now + ttlMs`. A member the
   * store no longer holds (swept after its node stalled past the TTL, or
   * lost with the store's data) is added again as given, and resolves among
   * the entries returned, so the engine can tell the scope it is back.
   * Resolves `[]` when every member was still held.
   */
  heartbeat(entries: readonly ScopedPresenceEntry[], ttlMs: number): Promise<ScopedPresenceEntry[]>;
  /**
   * Removes every member whose expiry has passed and resolves with them.
   * Each removal is returned to one caller only, across every handle.
   */
  sweepExpired(): Promise<ScopedPresenceEntry[]>;
  /**
   * The scope's live (unexpired) members, oldest first (by `joinedAt`, then
   * `memberId`), at most `limit` of them (all without one), and how many
   * live members it holds in all.
   */
  list(companyId: string, scope: string, limit?: number): Promise<{ members: ScopedPresenceMember[]; total: number }>;
  /** Rejects when the store cannot be reached. Optional. */
  ping?(): Promise<void>;
}

/** What the engine checks of `list`'s answer before it uses it (`storeCall`'s `answers`): an array of members and a count. */
export function isScopeListing(answer: unknown): answer is { members: ScopedPresenceMember[]; total: number } {
  if (typeof answer !== "object" || answer === null) return false;
  const { members, total } = answer as { members?: unknown; total?: unknown };
  return Array.isArray(members) && Number.isSafeInteger(total);
}

/** The methods every {@link ScopedPresenceStore} must have; `createRealtimeEngine` refuses a store without one of them. */
export const SCOPED_PRESENCE_STORE_METHODS = methodsOf<ScopedPresenceStore>({ put: true, remove: true, heartbeat: true, sweepExpired: true, list: true });

/**
 * The key a store knows a scope by: `t:` and the topic, or `d:` and the
 * document's length-prefixed type and its id, so no two scopes share a key.
 */
export function scopeKey(scope: PresenceScope): string {
  return "topic" in scope ? `t:${scope.topic}` : `d:${scope.type.length}:${scope.type}:${scope.id}`;
}

/** The scope a key names (the inverse of {@link scopeKey}), or `null` for a string no scope has. */
export function scopeOfKey(key: string): PresenceScope | null {
  if (key.startsWith("t:")) return { topic: key.slice(2) };
  if (!key.startsWith("d:")) return null;
  const colon = key.indexOf(":", 2);
  const length = Number(key.slice(2, colon));
  if (colon < 0 || !Number.isInteger(length) || length < 0) return null;
  const type = key.slice(colon + 1, colon + 1 + length);
  if (type.length !== length || key[colon + 1 + length] !== ":") return null;
  return { type, id: key.slice(colon + 2 + length) };
}

/**
 * Orders members as every store lists them: by `joinedAt`, then by
 * `memberId` in code-unit order.
 */
export function compareMembers(a: ScopedPresenceMember, b: ScopedPresenceMember): number {
  if (a.joinedAt !== b.joinedAt) return a.joinedAt - b.joinedAt;
  return a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0;
}
