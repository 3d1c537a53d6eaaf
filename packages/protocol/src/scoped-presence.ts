/**
 * Presence in a scope: who is in one topic or one document right now, each
 * connection with a small JSON state of its own (which field it edits, where
 * its cursor is). A connection joins the presence of a scope it already
 * holds (a topic it is subscribed to, a document it watches), updates its
 * state and leaves; the others in the scope hear each change.
 *
 * Company presence (`presence:update`, `presence:list`) is another thing: it
 * says which users of the company are online at all, with no state.
 *
 * @module
 */

/** A scope of presence: one topic of the company, or one document. */
export type PresenceScope = { topic: string } | { type: string; id: string };

/** One connection present in a scope. */
export interface ScopedPresenceMember {
  /** The connection's id, unique across nodes; the same user's other tabs and devices are other members. */
  memberId: string;
  /** The member's user. */
  userId: string;
  /** The member's device. */
  deviceId: string;
  /** The member's state: what it last joined or updated with (JSON, at most `scopedPresenceLimits.maxStateBytes`). */
  state: unknown;
  /** When the member joined the scope, epoch ms. */
  joinedAt: number;
  /** When the member's state last changed, epoch ms. */
  updatedAt: number;
}

/** One member's change, as a batch (`presence:changes`) carries it. */
export interface ScopedPresenceMemberChange {
  /**
   * `joined`: a member came (also one coming back after a reconnection);
   * `updated`: its state changed (coalesced: at most about ten a second per
   * member, the latest state winning); `left`: it left, its subscription or
   * watch ended, it disconnected, or it vanished and its TTL passed.
   */
  change: "joined" | "updated" | "left";
  /** The member, with its state as of this change (the last one for `left`). */
  member: ScopedPresenceMember;
}

/** One member of a scope this connection has joined came, changed its state, or went: a {@link ScopedPresenceMemberChange} with its scope. */
export interface ScopedPresenceChange extends ScopedPresenceMemberChange {
  /** The scope, as the joiner named it. */
  scope: PresenceScope;
}

/**
 * Payload of `presence:changes`: what changed in one scope during one short
 * window (`scopedPresenceLimits.batchWindowMs`, 100 ms by default), sent
 * once to the whole scope. A change after a quiet window goes out at once,
 * alone; the ones that follow within the window wait for its end and go
 * together, so a member hears about one batch per window from each node
 * holding members of the scope, however many members there are.
 *
 * At most one change per member: the latest wins (`joined` then `updated`
 * is sent as `joined` with the latest state; anything then `left` as
 * `left`). A batch is at most `scopedPresenceLimits.maxBatchBytes` of
 * JSON (64 KiB by default); a busier window is sent as several. A batch may name the
 * receiving connection itself; only a `left` about itself matters to it
 * (the server ended its presence).
 */
export interface ScopedPresenceChanges {
  /** The scope, as the joiners named it. */
  scope: PresenceScope;
  /** Each member's change, in the order the members first changed in the window. */
  changes: ScopedPresenceMemberChange[];
  /**
   * `true` when the server may have missed other servers' changes (its link
   * to them was cut and is back): `changes` then lists every member now (up
   * to `maxMembersListed`), each `joined` with its state, and a member the
   * client holds that is not among them left meanwhile.
   */
  resync?: true;
}

/** A scope's members as one answer lists them, oldest first. */
export interface ScopedPresenceListing {
  /** At most `scopedPresenceLimits.maxMembersListed` members, oldest first. */
  members: ScopedPresenceMember[];
  /** How many members the scope holds; more than `members.length` when the answer was cut at the cap. */
  total: number;
}

/** Whether `value` is a well-formed {@link PresenceScope} (its topic name or document key not yet checked further). */
export function isPresenceScope(value: unknown): value is PresenceScope {
  if (typeof value !== "object" || value === null) return false;
  const scope = value as { topic?: unknown; type?: unknown; id?: unknown };
  if (scope.topic !== undefined) return typeof scope.topic === "string" && scope.type === undefined && scope.id === undefined;
  return typeof scope.type === "string" && typeof scope.id === "string";
}
