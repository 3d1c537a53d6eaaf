import {
  isPresenceScope,
  PROTOCOL_EVENTS,
  type PresenceScope,
  type ScopedPresenceChange,
  type ScopedPresenceChanges,
  type ScopedPresenceListing,
  type ScopedPresenceMember,
  type ScopedPresenceMemberChange,
} from "@truss/protocol";
import type { Connection } from "./connection.js";
import { isRetryableCode, TrussClientError } from "./errors.js";
import { Listeners } from "./listeners.js";

/**
 * How many state changes of one scope the client sends per second; the ones
 * in between are coalesced, the latest winning. The server's default
 * (`scopedPresenceLimits.updatesPerSecond`) is the same.
 */
export const PRESENCE_UPDATES_PER_SECOND = 10;

/** Rejoins after a reconnection that the server refuses with a code that may pass (its subscription not back yet) are tried this often. */
const REJOIN_DELAYS_MS = [50, 100, 200, 400, 800, 1600];

/**
 * This connection's presence in one scope (a topic it subscribed to, a
 * document it watches), as `client.presence.in(scope)`: join with a state,
 * update it, leave, and see the others.
 */
export interface ScopePresence {
  /** The scope. */
  readonly scope: PresenceScope;
  /**
   * Joins with `state` (small JSON: which field you edit, not its contents)
   * and resolves once the server accepted, with `others` filled. Subscribe
   * to the topic (or watch the document) first. The client joins again
   * after every reconnection, with its latest state, until {@link leave}.
   * Rejects with a `TrussClientError`: `FORBIDDEN` (the scope is not held,
   * or the policy refused), `PRESENCE_STATE_TOO_LARGE`, `INVALID_PAYLOAD`
   * (too deep, or a malformed scope), `TOO_MANY_PRESENCE_SCOPES`…
   */
  join(state?: unknown): Promise<void>;
  /**
   * Replaces the state. At most {@link PRESENCE_UPDATES_PER_SECOND} changes
   * go out a second, the latest winning, so it is fine to call on every
   * keystroke. Before the join is accepted (or while offline) the state
   * waits and goes with the join.
   */
  update(state: unknown): void;
  /**
   * Leaves; resolves once the server confirmed, or at once when offline. A
   * join still on its way is followed by the leave, so it cannot outlast it.
   */
  leave(): Promise<void>;
  /** Whether the server holds this connection in the scope now. */
  readonly joined: boolean;
  /** The other members (other connections: the same user's other tabs and devices included), oldest first. */
  readonly others: ScopedPresenceMember[];
  /**
   * Calls `callback` with each change the server reports (`joined`,
   * `updated`, `left`) and the others after it. A `left` about this
   * connection itself means the server ended its presence (the subscription
   * or watch ended, or the policy refused it on a token refresh). Returns an
   * unsubscribe function.
   */
  onChange(callback: (change: ScopedPresenceChange, others: ScopedPresenceMember[]) => void): () => void;
  /** Calls `callback` with the others whenever they change, and now when known. Returns an unsubscribe function. */
  subscribe(callback: (others: ScopedPresenceMember[]) => void): () => void;
}

/**
 * The scoped presences of one connection, by scope. A scope in use (joined,
 * joining, or listened to) is held here and hears the server's changes; one
 * nobody uses any more is let go of, so an app that visits ever new
 * documents does not grow the client.
 */
export class ScopedPresences {
  /** The scopes in use. */
  private readonly used = new Map<string, ScopeHandle>();
  /** Every scope's object while anything refers to it, so {@link in} hands out the same one. */
  private readonly known = new Map<string, WeakRef<ScopeHandle>>();
  private readonly collected = new FinalizationRegistry<string>((key) => {
    if (this.known.get(key)?.deref() === undefined) this.known.delete(key);
  });

  constructor(
    private readonly connection: Connection,
    private readonly onListenerFailure: (error: unknown) => void,
  ) {
    connection.socket.on(PROTOCOL_EVENTS.presenceChanges, (batch: ScopedPresenceChanges) => {
      if (!isPresenceScope(batch?.scope) || !Array.isArray(batch.changes)) return;
      this.used.get(keyOf(batch.scope))?.receive(batch.changes, batch.resync === true);
    });
    connection.socket.on("connect", () => {
      for (const scope of this.used.values()) scope.reconnected();
    });
    connection.socket.on("disconnect", () => {
      for (const scope of this.used.values()) scope.disconnected();
    });
  }

  /** The presence of `scope`: one object per scope, however often asked for. */
  in(scope: PresenceScope): ScopePresence {
    if (!isPresenceScope(scope)) throw new TrussClientError("INVALID_PAYLOAD", `A presence scope is { topic } or { type, id }; got ${JSON.stringify(scope)}.`);
    const key = keyOf(scope);
    let handle = this.used.get(key) ?? this.known.get(key)?.deref();
    if (!handle) {
      const ownScope = "topic" in scope ? { topic: scope.topic } : { type: scope.type, id: scope.id };
      handle = new ScopeHandle(this.connection, ownScope, this.onListenerFailure, (changed) => this.track(key, changed));
      this.known.set(key, new WeakRef(handle));
      this.collected.register(handle, key);
    }
    return handle;
  }

  /** Holds `handle` while it is in use; once it is not, only what the app keeps of it does. */
  private track(key: string, handle: ScopeHandle): void {
    if (handle.inUse) this.used.set(key, handle);
    else if (this.used.get(key) === handle) this.used.delete(key);
  }

  /** Lets go of every scope, here only. */
  forget(): void {
    for (const ref of this.known.values()) ref.deref()?.forget();
  }
}

class ScopeHandle implements ScopePresence {
  private wanted = false;
  private isJoined = false;
  private state: unknown = null;
  /** A state given while joined that has not gone out yet. */
  private unsent = false;
  private sentAt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private rejoinAttempt = 0;
  /** Whether the server accepted a join since the app last joined: a refusal after that is a failed rejoin, not the caller's answer. */
  private accepted = false;
  /** A join on its way (socket.io-client holds one made offline until it connects). */
  private sending = false;
  /** Bumped by every join and leave, so an answer to an older request is ignored. */
  private generation = 0;
  private readonly members = new Map<string, ScopedPresenceMember>();
  private readonly changeListeners: Listeners<[ScopedPresenceChange, ScopedPresenceMember[]]>;
  private readonly listListeners: Listeners<[ScopedPresenceMember[]]>;

  /**
   * @param track - told after every change of {@link inUse}.
   */
  constructor(
    private readonly connection: Connection,
    readonly scope: PresenceScope,
    onListenerFailure: (error: unknown) => void,
    private readonly track: (handle: ScopeHandle) => void,
  ) {
    this.changeListeners = new Listeners(onListenerFailure);
    this.listListeners = new Listeners(onListenerFailure);
  }

  /** Whether the app is in the scope (or on its way in), or listens to it: then the server's changes must reach it. */
  get inUse(): boolean {
    return this.wanted || this.isJoined || this.changeListeners.size > 0 || this.listListeners.size > 0;
  }

  get joined(): boolean {
    return this.isJoined;
  }

  get others(): ScopedPresenceMember[] {
    const own = this.connection.socket.id;
    return [...this.members.values()].filter((member) => member.memberId !== own).sort(byAge);
  }

  async join(state: unknown = null): Promise<void> {
    this.wanted = true;
    this.track(this);
    this.state = state;
    this.unsent = false;
    this.rejoinAttempt = 0;
    await this.send();
  }

  update(state: unknown): void {
    this.state = state;
    if (!this.isJoined || !this.connection.socket.connected) return;
    this.unsent = true;
    if (this.timer !== undefined) return;
    const wait = this.sentAt + 1000 / PRESENCE_UPDATES_PER_SECOND - Date.now();
    if (wait <= 0) this.flush();
    else this.timer = setTimeout(() => this.flush(), wait);
  }

  async leave(): Promise<void> {
    const wasJoined = this.isJoined;
    // A join still on its way (or waiting to go out) is told to leave too: the server takes a socket's join and leave
    // of a scope in the order sent, so the join cannot outlast the leave.
    const joinOnItsWay = this.sending;
    this.forget();
    if (!joinOnItsWay && (!wasJoined || !this.connection.socket.connected)) return;
    const leaving = this.connection.request(PROTOCOL_EVENTS.presenceLeave, { scope: this.scope });
    // Offline, the leave waits to go out behind the join, and the app is not kept waiting for it.
    if (!this.connection.socket.connected) return void leaving.catch(() => undefined);
    try {
      await leaving;
    } catch (error) {
      // Without the connection the server left the scope anyway.
      if (this.connection.socket.connected) throw error;
    }
  }

  /** Stops wanting the scope and lets go of its members, here only: what `leave` does before it tells the server. */
  forget(): void {
    this.wanted = false;
    this.accepted = false;
    this.sending = false;
    this.generation += 1;
    this.stopTimer();
    this.isJoined = false;
    this.members.clear();
    this.listListeners.emit([]);
    this.track(this);
  }

  onChange(callback: (change: ScopedPresenceChange, others: ScopedPresenceMember[]) => void): () => void {
    return this.listen(this.changeListeners.add(callback));
  }

  subscribe(callback: (others: ScopedPresenceMember[]) => void): () => void {
    const unsubscribe = this.listen(this.listListeners.add(callback));
    if (this.isJoined) {
      queueMicrotask(() => {
        if (this.isJoined) callback(this.others);
      });
    }
    return unsubscribe;
  }

  /** A listener was added: the scope is in use until `remove`, which the returned function calls, lets go of it. */
  private listen(remove: () => void): () => void {
    this.track(this);
    return () => {
      remove();
      this.track(this);
    };
  }

  /**
   * The changes of one batch the server reported about this scope, applied
   * in order: each one the app hears of (not this connection's own join or
   * update) goes to `onChange` with the others after it, and the list
   * listeners hear the others once, after the batch. A `resync` lists every
   * member: it is applied as what changed against the members held.
   */
  receive(changes: readonly ScopedPresenceMemberChange[], resync = false): void {
    let changed = false;
    for (const { change, member } of resync ? this.changedSince(changes) : changes) {
      if (typeof member?.memberId !== "string" || !this.apply(change, member)) continue;
      changed = true;
      if (this.changeListeners.size > 0) this.changeListeners.emit({ scope: this.scope, change, member }, this.others);
    }
    if (changed) this.listListeners.emit(this.others);
  }

  /**
   * A resync's listing as changes to the members held: `left` for each one
   * it no longer lists, `joined` for each new one, `updated` for each whose
   * state differs. This connection itself is never dropped by a resync: its
   * own presence ends only by a `left` about it.
   */
  private changedSince(listed: readonly ScopedPresenceMemberChange[]): ScopedPresenceMemberChange[] {
    const now = new Map<string, ScopedPresenceMember>();
    for (const { member } of listed) if (typeof member?.memberId === "string") now.set(member.memberId, member);
    const changes: ScopedPresenceMemberChange[] = [];
    for (const [memberId, member] of this.members) if (!now.has(memberId) && memberId !== this.connection.socket.id) changes.push({ change: "left", member });
    for (const [memberId, member] of now) {
      const held = this.members.get(memberId);
      if (!held) changes.push({ change: "joined", member });
      else if (JSON.stringify(held.state) !== JSON.stringify(member.state)) changes.push({ change: "updated", member });
    }
    return changes;
  }

  /** Applies one member's change; `false` when it is none of the app's business. */
  private apply(change: ScopedPresenceMemberChange["change"], member: ScopedPresenceMember): boolean {
    const own = member.memberId === this.connection.socket.id;
    if (change === "left") {
      this.members.delete(member.memberId);
      if (own) {
        // The server ended this connection's presence; joining again is the app's call.
        this.wanted = false;
        this.accepted = false;
        this.isJoined = false;
        this.stopTimer();
        this.track(this);
      }
      return true;
    }
    if (!this.isJoined || own) return false;
    this.members.set(member.memberId, member);
    return true;
  }

  reconnected(): void {
    // A join made while offline goes out with this connection already; sending another would leave its caller unanswered.
    if (this.wanted && !this.sending) void this.send().catch(() => undefined);
  }

  disconnected(): void {
    this.isJoined = false;
    this.stopTimer();
    if (!this.wanted) this.members.clear();
  }

  /** Sends the join with the latest state (now, or once connected); rejoins after a reconnection go through here too. */
  private async send(): Promise<void> {
    const generation = ++this.generation;
    this.stopTimer();
    const state = this.state;
    let listing: ScopedPresenceListing;
    this.sending = true;
    try {
      listing = await this.connection.request(PROTOCOL_EVENTS.presenceJoin, { scope: this.scope, state });
    } catch (error) {
      if (generation === this.generation) this.sending = false;
      if (generation !== this.generation) return;
      this.refused(error as TrussClientError);
      throw error;
    }
    if (generation !== this.generation) return;
    this.sending = false;
    if (!this.wanted) return;
    this.isJoined = true;
    this.accepted = true;
    this.rejoinAttempt = 0;
    this.sentAt = Date.now();
    this.members.clear();
    for (const member of listing.members) this.members.set(member.memberId, member);
    this.listListeners.emit(this.others);
    // A state given while the join was on its way goes out now, coalesced.
    if (this.state !== state) this.update(this.state);
  }

  /**
   * A refused join. After a reconnection the subscription it stands on may
   * not be back on the server yet (`FORBIDDEN` until it is), so a rejoin is
   * tried a few more times; a first join's refusal is the caller's.
   */
  private refused(error: TrussClientError): void {
    const rejoining = this.accepted;
    const delay = REJOIN_DELAYS_MS[this.rejoinAttempt];
    if (this.wanted && rejoining && delay !== undefined && (error.code === "FORBIDDEN" || isRetryableCode(error.code))) {
      this.rejoinAttempt += 1;
      this.timer = setTimeout(() => {
        this.timer = undefined;
        if (this.wanted && this.connection.socket.connected) void this.send().catch(() => undefined);
      }, delay);
      return;
    }
    if (rejoining) this.connection.report(error);
    this.wanted = false;
    this.accepted = false;
    this.isJoined = false;
    this.track(this);
  }

  private flush(): void {
    this.timer = undefined;
    if (!this.unsent || !this.isJoined) return;
    this.unsent = false;
    this.sentAt = Date.now();
    this.connection.request(PROTOCOL_EVENTS.presenceSet, { scope: this.scope, state: this.state }).catch((error: TrussClientError) => {
      // No answer: the next connection joins again with the latest state. The server's refusals are news.
      if (error.code !== "DISCONNECTED" && error.code !== "CLIENT_CLOSED" && error.code !== "TIMEOUT") this.connection.report(error);
    });
  }

  private stopTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** The key one scope is known by here. */
function keyOf(scope: PresenceScope): string {
  return "topic" in scope ? `t:${scope.topic}` : `d:${scope.type.length}:${scope.type}:${scope.id}`;
}

function byAge(a: ScopedPresenceMember, b: ScopedPresenceMember): number {
  return a.joinedAt - b.joinedAt || (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0);
}
