import type { PresenceScope, ScopedPresenceChanges, ScopedPresenceMemberChange } from "@truss/protocol";

/** Sends one batch to a scope's room; `except`, when given, is a socket that must not hear it. */
export type SendScopeChanges = (room: string, batch: ScopedPresenceChanges, except: string | undefined) => void;

/** A member's latest change in a window, and the socket that must not hear it (the member itself, for its own join or update). */
interface QueuedChange {
  readonly change: ScopedPresenceMemberChange;
  readonly except: string | undefined;
}

/** One scope's window on this node: the changes queued since its last batch went out. */
interface ScopeWindow {
  readonly scope: PresenceScope;
  /** Member id → the member's latest change in the window; a Map keeps the order members first changed in. */
  readonly queued: Map<string, QueuedChange>;
  readonly timer: NodeJS.Timeout;
}

/**
 * Bounds what one scope sends, whatever its number of members: the first
 * change after a quiet window goes out at once, alone (a two-person document
 * hears a typing indicator without delay), and opens a window of
 * `windowMs`; the changes made during it go out when it ends, in one room
 * broadcast (encoded once for every member), split into several batches
 * where one would pass `maxBytes` of JSON,
 * and open the next window while the burst lasts. So a member hears at most
 * one batch per window from each node holding members of the scope, where
 * one message per change and member would be N × (N − 1) frames.
 *
 * Each node batches the changes of its own members (and those its sweeps
 * find gone); the Socket.IO adapter carries each batch to the scope's
 * members on the other nodes, as any room broadcast.
 *
 * A batch of one member's changes (one person typing, the common case) is
 * not sent to that member. A batch of several members' changes goes to
 * every member, each hearing its own change too: leaving each out would
 * cost one broadcast, and one encoding, per member instead of one per
 * window. `@truss/client` drops a member's own join and update.
 */
export class ScopeChangeBatches {
  /** By the scope's room. */
  private readonly windows = new Map<string, ScopeWindow>();
  /** After `stop()` changes go out one by one: no window timer may outlive the engine. */
  private stopped = false;

  constructor(
    private readonly send: SendScopeChanges,
    private readonly windowMs: number,
    private readonly maxBytes: number,
  ) {}

  /**
   * Sends `change` now when the scope's window is quiet (not to `except`,
   * the member itself, for whom its own join or update is no news), or
   * queues it for the window's batch, replacing the member's earlier change
   * of the window.
   */
  add(room: string, scope: PresenceScope, change: ScopedPresenceMemberChange, except?: string): void {
    const window = this.windows.get(room);
    if (window) {
      const { memberId } = change.member;
      window.queued.set(memberId, { change: merge(window.queued.get(memberId)?.change, change), except });
      return;
    }
    this.send(room, { scope, changes: [change] }, except);
    if (!this.stopped) this.open(room, scope);
  }

  /** Sends every window's batch now; later changes go out one by one. */
  stop(): void {
    this.stopped = true;
    for (const [room, window] of [...this.windows]) {
      clearTimeout(window.timer);
      this.flush(room);
    }
  }

  private open(room: string, scope: PresenceScope): void {
    const timer = setTimeout(() => this.flush(room), this.windowMs).unref();
    this.windows.set(room, { scope, queued: new Map(), timer });
  }

  private flush(room: string): void {
    const window = this.windows.get(room);
    this.windows.delete(room);
    if (!window || window.queued.size === 0) return;
    const emptyBytes = jsonBytes({ scope: window.scope, changes: [] });
    const except = window.queued.size === 1 ? [...window.queued.values()][0]!.except : undefined;
    let changes: ScopedPresenceMemberChange[] = [];
    let bytes = emptyBytes;
    for (const { change } of window.queued.values()) {
      // The comma before each change after the first; a change larger than the cap on its own still goes, alone.
      const size = jsonBytes(change) + 1;
      if (changes.length > 0 && bytes + size > this.maxBytes) {
        this.send(room, { scope: window.scope, changes }, except);
        changes = [];
        bytes = emptyBytes;
      }
      changes.push(change);
      bytes += size;
    }
    this.send(room, { scope: window.scope, changes }, except);
    // Keep collecting while the burst lasts.
    if (!this.stopped) this.open(room, window.scope);
  }
}

/**
 * A member's change in a window, given its earlier one: the latest state
 * wins, and a member that joined in the window is still a join. A join then
 * a leave is sent as the leave, not dropped: a member that listed the scope
 * meanwhile (its own join's answer) may hold the newcomer already.
 */
function merge(earlier: ScopedPresenceMemberChange | undefined, later: ScopedPresenceMemberChange): ScopedPresenceMemberChange {
  if (earlier?.change === "joined" && later.change === "updated") return { change: "joined", member: later.member };
  return later;
}

/** Bytes of a value's JSON, as it goes on the wire. */
function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value));
}
