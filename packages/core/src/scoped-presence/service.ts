import { isPresenceScope, isTopicName, PROTOCOL_EVENTS, type PresenceScope, type ScopedPresenceChanges, type ScopedPresenceListing, type ScopedPresenceMemberChange } from "@truss/protocol";
import type { Connection } from "../kernel/connection.js";
import { ADAPTER_RESUBSCRIBED_EVENT, type EngineContext } from "../kernel/context.js";
import { catchUpEach } from "../kernel/catch-up.js";
import { StoreCallOrder } from "../kernel/deadlines.js";
import { RequestOrder } from "../kernel/request-order.js";
import { isTrussError, messageOf, TrussError } from "../kernel/errors.js";
import { BestEffortStore, storeCall } from "../kernel/failures.js";
import type { EnginePart } from "../kernel/lifecycle.js";
import { jsonCopy } from "../kernel/payload.js";
import { documentRoom, presenceRoom, topicRoom } from "../kernel/rooms.js";
import type { Policy, PresenceRequest } from "../policy/policy.js";
import { ScopeChangeBatches } from "./batches.js";
import { isScopeListing, scopeKey, scopeOfKey, type ScopedPresenceEntry, type ScopedPresenceMember, type ScopedPresenceStore } from "./store.js";

/** Bounds of scoped presence, the `scopedPresenceLimits` option. */
export interface ScopedPresenceLimits {
  /**
   * Largest state of one member, in bytes of its JSON. A larger one is
   * refused with `PRESENCE_STATE_TOO_LARGE`.
   *
   * @default 1024
   */
  maxStateBytes?: number;
  /**
   * Deepest nesting of objects and arrays in a state. A deeper one is
   * refused with `INVALID_PAYLOAD`.
   *
   * @default 4
   */
  maxStateDepth?: number;
  /**
   * Most scopes one socket may be present in at once. A further join is
   * refused with `TOO_MANY_PRESENCE_SCOPES`; leaving one makes room.
   *
   * @default 20
   */
  maxScopesPerConnection?: number;
  /**
   * Most members one answer (`presence:join`, `presence:members`) lists,
   * oldest first; its `total` says how many there are.
   *
   * @default 100
   */
  maxMembersListed?: number;
  /**
   * State changes of one socket in one scope that go out per second; the
   * ones in between are coalesced, the latest state winning, so a typing
   * indicator cannot flood a scope.
   *
   * @default 10
   */
  updatesPerSecond?: number;
  /**
   * How long, in ms, a scope's changes are collected on a node before they
   * go out together as one `presence:changes` to the whole scope. The first
   * change after a quiet window goes out at once; so each member hears
   * about `1000 / batchWindowMs` batches a second from each node holding
   * members of the scope, however many members change.
   *
   * @default 100
   */
  batchWindowMs?: number;
  /**
   * Largest `presence:changes`, in bytes of its JSON; a window with more
   * goes out as several batches (a single change larger than this, with a
   * `maxStateBytes` raised past it, goes alone). As much as a client may
   * send (`limits.maxPayloadBytes`), room for about 350 changes with small
   * states: in the presence benchmark, 1,000 members' batches of about
   * 85 KiB reached them later and fewer than twice as many of 64 KiB.
   *
   * @default 65536 (64 KiB)
   */
  maxBatchBytes?: number;
}

/** The defaults of {@link ScopedPresenceLimits}. */
export const DEFAULT_SCOPED_PRESENCE_LIMITS = {
  maxStateBytes: 1024,
  maxStateDepth: 4,
  maxScopesPerConnection: 20,
  maxMembersListed: 100,
  updatesPerSecond: 10,
  batchWindowMs: 100,
  maxBatchBytes: 64 * 1024,
} as const satisfies Required<ScopedPresenceLimits>;

/** One scope's presence, as the server sees it: `engine.presence.in(companyId, scope)`. */
export interface ScopePresenceApi {
  /** The scope's members on every node, oldest first. */
  list(): Promise<ScopedPresenceMember[]>;
}

/** The presence timing scoped presence shares with company presence. */
export interface ScopedPresenceTiming {
  ttlMs: number;
  heartbeatIntervalMs: number;
  sweepIntervalMs: number;
}

/** One socket present in one scope. */
interface Membership {
  readonly scope: PresenceScope;
  readonly key: string;
  /** The socket's room for the topic or document; leaving it leaves the presence. */
  readonly subscriptionRoom: string;
  /** The room every member of the scope is in. */
  readonly room: string;
  /** The member as last stored and announced. */
  member: ScopedPresenceMember;
  /** Whether the scope was told the member joined; only then does it hear that it left. */
  announced: boolean;
  /** A state waiting for its turn to go out (coalesced), if any. */
  pending: { state: unknown } | undefined;
  timer: NodeJS.Timeout | undefined;
  /** When the member's last change went out, epoch ms. */
  sentAt: number;
  /** Steps of this membership (a store call, then its announcement) run in order: a leave never overtakes its join. */
  queue: Promise<unknown>;
}

/** A socket's memberships, by the room of the topic or document each stands on. */
interface SocketPresence {
  connection: Connection;
  memberships: Map<string, Membership>;
}

/**
 * Presence in scopes: a socket joins the presence of a topic it is
 * subscribed to, or a document it watches, with a small JSON state; the
 * other members hear each join, state change (coalesced per socket) and
 * leave, batched per scope ({@link ScopeChangeBatches}). Dropping the subscription or watch (unsubscribe, refresh,
 * revocation) leaves the presence, seen on the adapter's `leave-room`, so no
 * other part needs to know; a disconnect leaves every scope; a node that
 * died stops holding its members once their TTL passes, and a sweep on
 * another node announces them gone.
 */
export class ScopedPresenceService implements EnginePart {
  private readonly sockets = new Map<string, SocketPresence>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly intervalMs: number;
  private readonly batches: ScopeChangeBatches;

  /** Best effort while the store is down, as company presence is: the outage is logged once. */
  private readonly stores: BestEffortStore;
  /** A member's put that lands past its deadline still lands before the member's next put or remove, by {@link orderKey}. */
  private readonly order: StoreCallOrder;
  /** A socket's join, set and leave of one scope take effect in the order it sent them. */
  private readonly requests = new RequestOrder();

  constructor(
    private readonly ctx: EngineContext,
    private readonly store: ScopedPresenceStore,
    private readonly policy: Policy,
    private readonly timing: ScopedPresenceTiming,
    private readonly limits: Required<ScopedPresenceLimits>,
  ) {
    this.intervalMs = Math.ceil(1000 / limits.updatesPerSecond);
    this.stores = new BestEffortStore(ctx, "presence", "scoped presence");
    this.order = new StoreCallOrder(ctx.storeDeadlines, "presence", timing.ttlMs);
    this.batches = new ScopeChangeBatches((room, batch, except) => this.sendBatch(room, batch, except), limits.batchWindowMs, limits.maxBatchBytes);
  }

  /** Follows the sockets' rooms and the adapter's resubscriptions, starts heartbeats and sweeps. */
  start(): void {
    const { adapter } = this.ctx.namespace();
    adapter.on("leave-room", (room: string, socketId: string) => {
      const presence = this.sockets.get(socketId);
      const membership = presence?.memberships.get(room);
      if (presence && membership) this.drop(presence, membership, true);
    });
    adapter.on(ADAPTER_RESUBSCRIBED_EVENT, () => void this.resync());
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.timing.heartbeatIntervalMs).unref();
    this.sweepTimer = setInterval(() => void this.sweep(), this.timing.sweepIntervalMs).unref();
  }

  /**
   * After the adapter's subscriber was cut off, the changes other nodes
   * announced meanwhile never reached this node's members: each scope with a
   * member here is listed again and sent to them as a `presence:changes`
   * with `resync: true`, every member now as `joined`, so a client drops the
   * members it holds who are not among them. Nothing is kept per member for it.
   */
  private async resync(): Promise<void> {
    const scopes = new Map<string, { companyId: string; scope: PresenceScope; key: string; room: string }>();
    for (const { connection, memberships } of this.sockets.values()) {
      for (const { scope, key, room } of memberships.values()) scopes.set(room, { companyId: connection.principal.companyId, scope, key, room });
    }
    const { adapter } = this.ctx.namespace();
    await catchUpEach([...scopes.values()], (scope, final) => this.resyncScope(scope, final), ({ room }) => (adapter.rooms.get(room)?.size ?? 0) > 0);
  }

  private async resyncScope({ companyId, scope, key, room }: { companyId: string; scope: PresenceScope; key: string; room: string }, final: boolean): Promise<boolean> {
    let listing: ScopedPresenceListing;
    try {
      listing = await this.listing(companyId, key);
    } catch (error) {
      if (final) this.ctx.logger.warn("scoped presence could not be listed again after the adapter resubscribed", { companyId, error: messageOf(error) });
      return false;
    }
    const resync: ScopedPresenceChanges = { scope, changes: listing.members.map((member) => ({ change: "joined", member })), resync: true };
    this.ctx.namespace().local.to(room).emit(PROTOCOL_EVENTS.presenceChanges, resync);
    return true;
  }

  /** Stops the timers and sends the batches waiting; members leave as their sockets close. */
  stop(): void {
    clearInterval(this.heartbeatTimer);
    clearInterval(this.sweepTimer);
    this.order.stop();
    this.batches.stop();
  }

  /** Leaves every scope of a closed socket. */
  close(connection: Connection): Promise<unknown> | void {
    const presence = this.sockets.get(connection.socket.id);
    if (!presence) return;
    this.sockets.delete(connection.socket.id);
    const left = [...presence.memberships.values()].map((membership) => this.drop(presence, membership, false));
    return Promise.all(left);
  }

  /**
   * Joins the socket to a scope's presence with `state`, or replaces its
   * state when it is there already, and lists the scope's members.
   */
  async join(connection: Connection, payload: unknown): Promise<ScopedPresenceListing> {
    try {
      const scoped = this.scopeOf(connection, payload);
      const state = this.stateOf(payload);
      return await this.requests.run(connection, scoped.subscriptionRoom, () => this.joinOrUpdate(connection, scoped, state));
    } catch (error) {
      throw this.refusal(error);
    }
  }

  /**
   * Replaces the socket's state in a scope it joined; the change goes out
   * coalesced. Sent while the socket's join of the scope is still on its
   * way, it applies once the join is in.
   */
  set(connection: Connection, payload: unknown): void | Promise<void> {
    try {
      const { subscriptionRoom, scope } = this.scopeOf(connection, payload);
      const state = this.stateOf(payload);
      const applied = this.requests.run(connection, subscriptionRoom, () => {
        const membership = this.sockets.get(connection.socket.id)?.memberships.get(subscriptionRoom);
        if (!membership) throw new TrussError("NOT_FOUND", `This connection is not present in ${describe(scope)}; send presence:join first.`);
        this.setState(membership, state);
      });
      return applied instanceof Promise ? applied.catch((error: unknown) => Promise.reject(this.refusal(error))) : applied;
    } catch (error) {
      throw this.refusal(error);
    }
  }

  private async joinOrUpdate(
    connection: Connection,
    { scope, key, subscriptionRoom }: { scope: PresenceScope; key: string; subscriptionRoom: string },
    state: unknown,
  ): Promise<ScopedPresenceListing> {
    const { companyId } = connection.principal;
    if (!this.sockets.get(connection.socket.id)?.memberships.has(subscriptionRoom)) {
      this.assertHolds(connection, scope, subscriptionRoom);
      this.assertRoomForOneMore(connection);
      await this.authorize(connection, { action: "presence:join", scope });
    }
    // Checked again after the policy's answer: the subscription may have ended, or the socket gone, meanwhile.
    const existing = this.sockets.get(connection.socket.id)?.memberships.get(subscriptionRoom);
    if (existing) {
      this.setState(existing, state);
      await existing.queue;
      return this.listing(companyId, key);
    }
    this.assertHolds(connection, scope, subscriptionRoom);
    this.assertRoomForOneMore(connection);
    const presence = this.presenceOf(connection);
    const at = Date.now();
    const { principal, socket } = connection;
    const membership: Membership = {
      scope,
      key,
      subscriptionRoom,
      room: presenceRoom(companyId, key),
      member: { memberId: socket.id, userId: principal.userId, deviceId: principal.deviceId, state, joinedAt: at, updatedAt: at },
      announced: false,
      pending: undefined,
      timer: undefined,
      sentAt: at,
      queue: Promise.resolve(),
    };
    presence.memberships.set(subscriptionRoom, membership);
    this.ctx.metrics.scopedPresenceMembers += 1;
    void socket.join(membership.room);
    try {
      await this.enqueue(membership, async () => {
        await storeCall(this.ctx, "presence", "scopePut", () =>
          this.order.after(orderKey(membership), () => this.store.put(this.entryOf(companyId, membership), this.timing.ttlMs)),
        );
        membership.announced = true;
        this.announce(membership, "joined", membership.member, socket.id);
      });
      return await this.listing(companyId, key);
    } catch (error) {
      // Answered with an error, the socket is not present: the member is taken back, after its put (which may
      // still land past its deadline), so no member the client does not know of stays listed or heartbeated.
      if (presence.memberships.get(subscriptionRoom) === membership) void this.drop(presence, membership, false);
      throw error;
    }
  }

  /**
   * Leaves a scope's presence; a scope the socket was not in is fine. Sent
   * while the socket's join of the scope is still on its way, it leaves once
   * the join is in, so the join cannot outlast it.
   */
  async leave(connection: Connection, payload: unknown): Promise<void> {
    const { subscriptionRoom } = this.scopeOf(connection, payload);
    await this.requests.run(connection, subscriptionRoom, async () => {
      const presence = this.sockets.get(connection.socket.id);
      const membership = presence?.memberships.get(subscriptionRoom);
      if (presence && membership) await this.drop(presence, membership, false);
    });
  }

  /** Lists a scope's members for a socket that holds the scope, once the policy allowed `presence:read`. */
  async members(connection: Connection, payload: unknown): Promise<ScopedPresenceListing> {
    const { scope, key, subscriptionRoom } = this.scopeOf(connection, payload);
    if (!this.sockets.get(connection.socket.id)?.memberships.has(subscriptionRoom)) {
      this.assertHolds(connection, scope, subscriptionRoom);
      await this.authorize(connection, { action: "presence:read", scope });
    }
    return this.listing(connection.principal.companyId, key);
  }

  /**
   * Asks the policy again, with a refreshed principal, about every scope the
   * socket is present in, and leaves those it now refuses (the socket hears
   * its own `left`).
   */
  async recheck(connection: Connection): Promise<void> {
    const presence = this.sockets.get(connection.socket.id);
    if (!presence) return;
    const { principal } = connection;
    await Promise.all(
      [...presence.memberships.values()].map(async (membership) => {
        const refusal = await this.policy.decide(principal, { action: "presence:join", scope: membership.scope });
        if (refusal && presence.memberships.get(membership.subscriptionRoom) === membership) await this.drop(presence, membership, true);
      }),
    );
  }

  /** The server's view of one scope: `engine.presence.in(companyId, scope)`. */
  in(companyId: string, scope: PresenceScope): ScopePresenceApi {
    if (typeof companyId !== "string" || companyId.length === 0) throw new TypeError("presence.in(companyId, scope): companyId must be a non-empty string.");
    const key = scopeKey(checkScope(scope, (message) => new TypeError(`presence.in(companyId, scope): ${message}`)));
    return {
      list: async () => (await storeCall(this.ctx, "presence", "scopeList", () => this.store.list(companyId, key), isScopeListing)).members,
    };
  }

  /** Extends the TTL of every member on this node, and tells scopes of members the store had lost that they are back. */
  async heartbeat(): Promise<void> {
    const entries: ScopedPresenceEntry[] = [];
    for (const { connection, memberships } of this.sockets.values()) {
      for (const membership of memberships.values()) entries.push(this.entryOf(connection.principal.companyId, membership));
    }
    if (entries.length === 0) return;
    const readded = await this.stores.call("scopeHeartbeat", () => this.store.heartbeat(entries, this.timing.ttlMs));
    this.stores.forEachAnswer("scopeHeartbeat", readded, (entry) => this.announceBack(entry));
  }

  /** Tells a scope a member is back; one still held here (its join's put on its way) is thereby announced, and its leave goes out too. */
  private announceBack(entry: ScopedPresenceEntry): void {
    for (const membership of this.sockets.get(entry.member.memberId)?.memberships.values() ?? []) {
      if (membership.key === entry.scope) membership.announced = true;
    }
    this.announceEntry(entry, "joined", entry.member.memberId);
  }

  /** Announces members whose TTL passed (their node stopped heartbeating) as gone. */
  async sweep(): Promise<void> {
    const swept = await this.stores.call("scopeSweep", () => this.store.sweepExpired());
    this.stores.forEachAnswer("scopeSweep", swept, (entry) => this.announceEntry(entry, "left"));
  }

  /**
   * Takes a membership away: at once here (so no later update goes out for
   * it), then in the store, then tells the scope. `told`: the socket itself
   * hears its `left` too, because it did not ask to leave (its subscription
   * ended, or the policy refused it on a refresh).
   */
  private drop(presence: SocketPresence, membership: Membership, told: boolean): Promise<void> {
    presence.memberships.delete(membership.subscriptionRoom);
    this.ctx.metrics.scopedPresenceMembers -= 1;
    this.forgetIfEmpty(presence);
    clearTimeout(membership.timer);
    membership.pending = undefined;
    const { socket, principal } = presence.connection;
    if (socket.connected) void socket.leave(membership.room);
    return this.enqueue(membership, async () => {
      const removed = await this.stores.call("scopeRemove", () =>
        this.order.after(orderKey(membership), () => this.store.remove(principal.companyId, membership.key, membership.member.memberId)),
      );
      // The store not answering is no reason to keep the scope waiting: its TTL ends the member anyway, and a sweep would report it again.
      if (removed === null || !membership.announced) return;
      const change: ScopedPresenceMemberChange = { change: "left", member: removed?.member ?? membership.member };
      this.batches.add(membership.room, membership.scope, change);
      if (told && socket.connected) socket.emit(PROTOCOL_EVENTS.presenceChanges, { scope: membership.scope, changes: [change] } satisfies ScopedPresenceChanges);
    });
  }

  /** Takes the latest state; sends it now when the socket's last change went out long enough ago, else when it did. */
  private setState(membership: Membership, state: unknown): void {
    if (membership.pending) this.ctx.metrics.inc("truss_scoped_presence_updates_total", { outcome: "coalesced" });
    membership.pending = { state };
    if (membership.timer !== undefined) return;
    const wait = membership.sentAt + this.intervalMs - Date.now();
    if (wait <= 0) this.flush(membership);
    else membership.timer = setTimeout(() => this.flush(membership), wait).unref();
  }

  private flush(membership: Membership): void {
    membership.timer = undefined;
    const pending = membership.pending;
    if (!pending) return;
    membership.pending = undefined;
    const presence = this.sockets.get(membership.member.memberId);
    if (presence?.memberships.get(membership.subscriptionRoom) !== membership) return;
    const at = Date.now();
    membership.sentAt = at;
    membership.member = { ...membership.member, state: pending.state, updatedAt: at };
    const { companyId } = presence.connection.principal;
    const member = membership.member;
    void this.enqueue(membership, async () => {
      // Best effort, as heartbeats are: a lost update is replaced by the next one, or restored by the heartbeat.
      await this.stores.call("scopePut", () =>
        this.order.after(orderKey(membership), () => this.store.put({ companyId, scope: membership.key, member }, this.timing.ttlMs)),
      );
      if (presence.memberships.get(membership.subscriptionRoom) !== membership) return;
      this.announce(membership, "updated", member, member.memberId);
      this.ctx.metrics.inc("truss_scoped_presence_updates_total", { outcome: "sent" });
    }).catch(() => undefined);
  }

  private announce(membership: Membership, change: ScopedPresenceMemberChange["change"], member: ScopedPresenceMember, except: string): void {
    this.batches.add(membership.room, membership.scope, { change, member }, except);
  }

  /** Announces a member a heartbeat brought back or a sweep found gone, from the store's entry. */
  private announceEntry(entry: ScopedPresenceEntry, change: ScopedPresenceMemberChange["change"], except?: string): void {
    const scope = scopeOfKey(entry.scope) ?? { topic: entry.scope };
    this.batches.add(presenceRoom(entry.companyId, entry.scope), scope, { change, member: entry.member }, except);
  }

  /**
   * Sends a scope's batch to its room, less the `left`s of members present
   * here again by now (a socket that left and joined again within the
   * window): the socket is back in the room, and would take its own `left`
   * for the server ending its presence; its join goes out next.
   */
  private sendBatch(room: string, batch: ScopedPresenceChanges, except: string | undefined): void {
    const changes = batch.changes.filter((change) => change.change !== "left" || !this.isPresentHere(change.member.memberId, room));
    if (changes.length === 0) return;
    const target = except === undefined ? this.ctx.namespace().to(room) : this.ctx.namespace().to(room).except(except);
    target.emit(PROTOCOL_EVENTS.presenceChanges, changes.length === batch.changes.length ? batch : { scope: batch.scope, changes });
  }

  private isPresentHere(memberId: string, room: string): boolean {
    const presence = this.sockets.get(memberId);
    if (!presence) return false;
    for (const membership of presence.memberships.values()) if (membership.room === room) return true;
    return false;
  }

  /** Counts a refused `presence:join` or `presence:set` by its code; returns the error to throw. */
  private refusal(error: unknown): unknown {
    if (isTrussError(error)) this.ctx.metrics.inc("truss_scoped_presence_refused_total", { code: error.code });
    return error;
  }

  private async listing(companyId: string, key: string): Promise<ScopedPresenceListing> {
    return storeCall(this.ctx, "presence", "scopeList", () => this.store.list(companyId, key, this.limits.maxMembersListed), isScopeListing);
  }

  private enqueue(membership: Membership, call: () => Promise<void>): Promise<void> {
    const next = membership.queue.then(call);
    membership.queue = next.catch(() => undefined);
    return next;
  }

  private presenceOf(connection: Connection): SocketPresence {
    let presence = this.sockets.get(connection.socket.id);
    if (!presence) {
      presence = { connection, memberships: new Map() };
      this.sockets.set(connection.socket.id, presence);
    }
    return presence;
  }

  private forgetIfEmpty(presence: SocketPresence): void {
    if (presence.memberships.size === 0) this.sockets.delete(presence.connection.socket.id);
  }

  private entryOf(companyId: string, membership: Membership): ScopedPresenceEntry {
    return { companyId, scope: membership.key, member: membership.member };
  }

  /** The scope a payload names, its key, and the socket's room that holds it. */
  private scopeOf(connection: Connection, payload: unknown): { scope: PresenceScope; key: string; subscriptionRoom: string } {
    const scope = checkScope((payload as { scope?: unknown } | null | undefined)?.scope, (message) => new TrussError("INVALID_PAYLOAD", message));
    const { companyId } = connection.principal;
    const subscriptionRoom = "topic" in scope ? topicRoom(companyId, scope.topic) : documentRoom(companyId, scope.type, scope.id);
    return { scope, key: scopeKey(scope), subscriptionRoom };
  }

  /** The state, checked and copied: JSON, at most `maxStateDepth` deep and `maxStateBytes` long. */
  private stateOf(payload: unknown): unknown {
    const state = (payload as { state?: unknown } | null | undefined)?.state ?? null;
    try {
      // No store reads the state's text (`snapshotJson`): the copy alone, without recording it.
      return jsonCopy(state, { maxDepth: this.limits.maxStateDepth, maxBytes: this.limits.maxStateBytes }, "The presence state").value;
    } catch (error) {
      if (error instanceof TrussError && error.code === "PAYLOAD_TOO_LARGE") throw new TrussError("PRESENCE_STATE_TOO_LARGE", `${error.message} Send which field, not its contents.`);
      throw error;
    }
  }

  private assertHolds(connection: Connection, scope: PresenceScope, subscriptionRoom: string): void {
    if (connection.socket.rooms.has(subscriptionRoom)) return;
    const how = "topic" in scope ? "subscribe to the topic" : "watch the document";
    throw new TrussError("FORBIDDEN", `This connection does not hold ${describe(scope)}; ${how} before using its presence.`);
  }

  private assertRoomForOneMore(connection: Connection): void {
    const held = this.sockets.get(connection.socket.id)?.memberships.size ?? 0;
    const max = this.limits.maxScopesPerConnection;
    if (held >= max) throw new TrussError("TOO_MANY_PRESENCE_SCOPES", `This connection is already present in ${max} scopes; leave one first.`);
  }

  /** Asks the policy with the connection's principal, and again if an `auth:refresh` replaced it meanwhile. */
  private async authorize(connection: Connection, request: PresenceRequest): Promise<void> {
    for (;;) {
      const { principal } = connection;
      await this.policy.check(principal, request);
      if (connection.principal === principal) return;
    }
  }

}

/** A scope checked: a topic name, or a document's type and id of 1 to 200 characters. */
function checkScope(value: unknown, fail: (message: string) => Error): PresenceScope {
  if (!isPresenceScope(value)) throw fail(`"scope" must be { topic } or { type, id }.`);
  if ("topic" in value) {
    if (!isTopicName(value.topic)) throw fail(`${JSON.stringify(value.topic).slice(0, 220)} is not a topic name.`);
    return { topic: value.topic };
  }
  for (const field of ["type", "id"] as const) {
    const text = value[field];
    if (text.length === 0 || text.length > 200) throw fail(`The scope's "${field}" must be 1 to 200 characters.`);
  }
  return { type: value.type, id: value.id };
}

/** What a member's store calls are ordered by: the scope (of its company) and the member. */
function orderKey(membership: Membership): string {
  return `${membership.room} ${membership.member.memberId}`;
}

function describe(scope: PresenceScope): string {
  return "topic" in scope ? `topic "${scope.topic}"` : `${scope.type}/${scope.id}`;
}
