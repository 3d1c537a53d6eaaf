import type { Connection } from "../kernel/connection.js";
import { clientRefusal, messageOf, TrussError } from "../kernel/errors.js";
import { idempotencyKeyOf } from "../kernel/idempotency.js";
import {
  compareInboxIds,
  isAppendResult,
  isInboxId,
  isStoredMessage,
  isUserKey,
  type InboxAppendResult,
  type InboxMessage,
  type InboxStore,
  type UserKey,
} from "./store.js";
import { PROTOCOL_EVENTS, type ErrorPayload } from "@truss/protocol";
import { ADAPTER_RESUBSCRIBED_EVENT, isClustered, onNodeEvent, type EngineContext } from "../kernel/context.js";
import { storeCall } from "../kernel/failures.js";
import { catchUpEach, retryEach } from "../kernel/catch-up.js";
import { Groups } from "../kernel/groups.js";
import { handJson, jsonCopy } from "../kernel/payload.js";
import { encodeEvent, writeEncoded, type EncodedPacket } from "../kernel/encoded.js";
import { userKeyOf } from "../kernel/rooms.js";
import { RecentKeys } from "../kernel/recent-keys.js";
import type { UndeliveredChoice } from "../undelivered/options.js";

/** Options of one `toUser(...).emit`. */
export interface InboxSendOptions {
  /**
   * Makes the send safe to retry: a repeat with the same key for the same
   * user (company and user) within the inbox TTL stores nothing new, pushes
   * nothing the user's devices were already sent, and resolves with the first
   * message (same id, ts, event and data). Use one key per logical message,
   * e.g. the id of the business event. A non-empty string of well-formed
   * Unicode, at most 200 characters. Keys are remembered for the inbox TTL
   * and, per user, for at most 10 × the inbox's `maxLength` sends; past
   * either, the key is new again.
   */
  idempotencyKey?: string;
  /**
   * Whether, and after how long, the engine's `undelivered` handler is
   * called if no device of the user acknowledges this message: `false` for
   * never, `{ afterMs }` for this delay. Default: the event's entry in
   * `undelivered.events`, else `undelivered.afterMs`. Needs the engine's
   * `undelivered` option.
   */
  undelivered?: UndeliveredChoice;
}

/** Server-side event that carries a freshly stored inbox message to the other nodes. */
const RELAY_EVENT = "truss:inbox";
/** How many messages a replay reads at a time. */
const REPLAY_PAGE = 200;
/** The most ids one `inbox:ack` may carry. */
export const MAX_ACK_IDS = 1000;
/**
 * How many (user, message id) pairs a node remembers having pushed to its
 * sockets, so that a repeated idempotent send pushes the first message only
 * to devices it was not pushed to. Past it, a repeat may push a message again
 * (same id: clients drop it), never lose one.
 */
const RECENTLY_PUSHED = 10_000;

/** What the inbox keeps for one socket: where its delivery stands. */
export interface Delivery {
  readonly connection: Connection;
  /** While a replay or catch-up reads the store, and until a failed one is read again, live messages wait here, so the device sees ids in order and never past a backlog it was not sent. */
  held: Outgoing[] | null;
  /** The length of the packets in `held`: past `maxHeldBytes` the session is ended instead (see {@link InboxService.hold}). */
  heldBytes: number;
  /** How far the store has been read for this socket: a live message up to it was sent by that read. */
  readUpTo: string | null;
  /** The newest id sent to this socket, from a read or live: its device's acks move its cursor no further. */
  sentUpTo: string | null;
}

/** Limits on what `toUser` stores. */
export interface InboxLimits {
  /** Largest message data, in bytes of JSON. */
  maxMessageBytes: number;
  /** Deepest nesting of message data. */
  maxDepth: number;
  /** Most bytes of live messages one socket may hold while its store read is pending (the engine's `maxBufferedBytes`). */
  maxHeldBytes: number;
}

/**
 * Durable per-user delivery. A message is appended to the inbox before it is
 * pushed, so a resolved `send` means it is stored; devices that were offline
 * get it on reconnect, after their cursor, in order.
 *
 * Live pushes go to each local socket of the user rather than through a room,
 * so a socket that is still replaying its backlog can hold them back and the
 * device sees ids in order; other nodes get the message as a server-side event.
 */
export class InboxService {
  /** User (company and id) → this node's deliveries to their sockets. */
  private readonly byUser = new Groups<string, Delivery>();
  private readonly deliveries = new WeakMap<Connection, Delivery>();
  /** `<id> <user key>` of messages recently pushed to this node's sockets, oldest first. */
  private readonly recentlyPushed = new RecentKeys(RECENTLY_PUSHED);
  private clustered = false;

  constructor(
    private readonly ctx: EngineContext,
    private readonly store: InboxStore,
    private readonly limits: InboxLimits,
    /** The delay of a send's undelivered call, or `undefined` for none (see `undeliveredDelayOf`). */
    private readonly undeliveredDelay: (event: string, choice: UndeliveredChoice | undefined) => number | undefined = () => undefined,
  ) {}

  /** Listens for messages stored on other nodes. */
  start(): void {
    const namespace = this.ctx.namespace();
    this.clustered = isClustered(namespace);
    // A node of an earlier release relays no third argument: its message may have had a key.
    onNodeEvent(this.ctx, RELAY_EVENT, (user, message, keyed) => {
      if (!isUserKey(user) || !isStoredMessage(message)) return false;
      this.deliverLocally(user, message, keyed !== false);
      return true;
    });
    namespace.adapter.on(ADAPTER_RESUBSCRIBED_EVENT, () => void this.catchUpAll());
  }

  /**
   * Stores a message for a user of a company and pushes it to every device of
   * theirs that is online. The data is copied at the call; data that is not
   * JSON (named by its path), too deep or too large, and a malformed
   * idempotency key, are refused before the store sees them, so one bad
   * message can never block a user's replay.
   *
   * A duplicate (the idempotency key was used for this user within the TTL)
   * stores nothing. It is still offered to the user's online devices, on
   * every node, because the first send may have been stored without being
   * confirmed, and so without being pushed; each node pushes it only to
   * devices it has not already pushed it to (see {@link RECENTLY_PUSHED}).
   */
  async send(user: UserKey, event: string, data: unknown, options?: InboxSendOptions): Promise<InboxAppendResult> {
    // Before the first await, so at the call: what the app does to `data` once it has its promise changes nothing stored or sent.
    const { value, json } = jsonCopy(data, { maxDepth: this.limits.maxDepth, maxBytes: this.limits.maxMessageBytes }, `The data of "${event}"`);
    const idempotencyKey = idempotencyKeyOf(options, "toUser(companyId, userId).emit");
    const undeliveredAfterMs = this.undeliveredDelay(event, options?.undelivered);
    const key = { companyId: user.companyId, userId: user.userId };
    const appendOptions =
      idempotencyKey === undefined && undeliveredAfterMs === undefined
        ? undefined
        : { ...(idempotencyKey === undefined ? {} : { idempotencyKey }), ...(undeliveredAfterMs === undefined ? {} : { undeliveredAfterMs }) };
    const keyed = idempotencyKey !== undefined;
    const stored = ({ message, duplicate }: InboxAppendResult) => {
      this.ctx.metrics.inc(duplicate ? "truss_inbox_duplicates_total" : "truss_inbox_appended_total");
      // The text checked at the call is the data's JSON only while the store hands back that same data (not a duplicate's).
      this.deliverLocally(key, message, keyed, message.data === value ? json : undefined);
      if (this.clustered) this.ctx.namespace().serverSideEmit(RELAY_EVENT, key, message, keyed);
    };
    // The store runs at once: the text goes with the call, not into a WeakMap that outlives it. A message stored
    // after the store's deadline (the caller was told STORE_UNAVAILABLE) is still pushed to the devices online.
    const result = await handJson(value, json, () =>
      storeCall(this.ctx, "inbox", "append", () => this.store.append(key, event, value, appendOptions), isAppendResult, stored),
    );
    stored(result);
    return result;
  }

  /**
   * Sends a new connection what its device has not acknowledged, then what
   * arrived meanwhile: live messages for its user are held until then.
   */
  async open(connection: Connection): Promise<void> {
    const delivery: Delivery = { connection, held: [], heldBytes: 0, readUpTo: null, sentUpTo: null };
    this.deliveries.set(connection, delivery);
    this.byUser.add(connection.userKey, delivery);
    // A failed first read keeps the delivery holding: retried in the background, as after a resubscribe.
    if (!(await this.catchUp(delivery, { final: false }))) void retryEach([delivery], this.readAgain, isConnected);
  }

  /** Forgets a connection. */
  close(connection: Connection): void {
    const delivery = this.deliveries.get(connection);
    if (!delivery) return;
    this.deliveries.delete(connection);
    this.byUser.delete(connection.userKey, delivery);
  }

  /**
   * Moves the device's cursor past the acknowledged ids, but never past the
   * newest id this socket was sent: an id it was never sent (a device's bug,
   * or one far in the future) would skip every message stored up to it. An
   * ack past it is taken as an ack of it, silently, since a device may
   * acknowledge on a new socket what it got on the one before, before the
   * replay has resent it; an ack on a socket sent nothing yet moves nothing.
   */
  async ack(connection: Connection, ids: unknown): Promise<void> {
    const acked = newestAcked(ids);
    const sentUpTo = this.deliveries.get(connection)?.sentUpTo ?? null;
    if (sentUpTo === null) return;
    const newest = compareInboxIds(acked, sentUpTo) > 0 ? sentUpTo : acked;
    const { companyId, userId, deviceId } = connection.principal;
    await storeCall(this.ctx, "inbox", "ack", () => this.store.ack({ companyId, userId, deviceId }, newest));
    // Inbox ids are `<ms stored>-<seq>`: the lag of the newest acknowledged message, stored → acknowledged.
    const storedAt = Number.parseInt(newest, 10);
    if (Number.isFinite(storedAt)) this.ctx.metrics.observe("truss_inbox_delivery_lag_seconds", undefined, Math.max(0, Date.now() - storedAt) / 1000);
  }

  /**
   * Re-reads every local device's inbox past what it last got: messages
   * relayed while the adapter was cut off, a bounded number of sockets at a
   * time, and again for those whose read failed (`kernel/catch-up.ts`).
   * Those hold their live messages all the while: a device sent a live
   * message past a backlog it never got would acknowledge it, and its cursor
   * would pass the backlog for good. The last failure ends the session (see
   * {@link catchUp}).
   */
  private async catchUpAll(): Promise<void> {
    const idle = [...this.byUser.all()].filter((delivery) => delivery.held === null);
    for (const delivery of idle) delivery.held = [];
    await catchUpEach(idle, this.readAgain, isConnected);
  }

  /** {@link catchUp} as `kernel/catch-up.ts` calls it. */
  private readonly readAgain = (delivery: Delivery, final: boolean): Promise<boolean> => this.catchUp(delivery, { final });

  /**
   * Sends a socket what the store has past both its device's cursor (what the
   * device acknowledged) and what earlier reads sent, then what arrived live
   * meanwhile. A live message sent before a catch-up may come again; the
   * client drops it by id, as with any at-least-once delivery. The delivery
   * must be holding (`held` not null) when this is called, and stays holding
   * when the store could not be read, for the next try. Resolves whether it
   * could; when it could not and this was the `final` try, the session is
   * ended with `STORE_UNAVAILABLE`, so the client reconnects and replays.
   */
  private async catchUp(delivery: Delivery, { final }: { final: boolean }): Promise<boolean> {
    try {
      await this.readFromStore(delivery);
    } catch (error) {
      this.ctx.logger.warn("inbox replay failed", {
        userId: delivery.connection.principal.userId,
        error: messageOf(error),
      });
      if (final) endSession(delivery.connection);
      return false;
    }
    this.flushHeld(delivery);
    return true;
  }

  private async readFromStore(delivery: Delivery): Promise<void> {
    const { companyId, userId, deviceId } = delivery.connection.principal;
    const user = { companyId, userId };
    const cursor = await storeCall(this.ctx, "inbox", "cursor", () => this.store.cursor({ ...user, deviceId }));
    let after = newer(cursor, delivery.readUpTo);
    for (;;) {
      const page = await storeCall(this.ctx, "inbox", "read", () => this.store.read(user, after, REPLAY_PAGE));
      for (const message of page) this.emit(delivery, new Outgoing(message));
      if (page.length > 0) after = page[page.length - 1]!.id;
      delivery.readUpTo = after;
      if (page.length < REPLAY_PAGE || !delivery.connection.socket.connected) return;
    }
  }

  /** Sends what arrived live during the read, minus what the read already covered. */
  private flushHeld(delivery: Delivery): void {
    const held = delivery.held ?? [];
    delivery.held = null;
    delivery.heldBytes = 0;
    held.sort((a, b) => compareInboxIds(a.message.id, b.message.id));
    for (const outgoing of held) this.push(delivery, outgoing);
  }

  /**
   * Holds a live message back until the delivery's store read is done. Past
   * `maxHeldBytes` held, the session is ended with `STORE_UNAVAILABLE`
   * instead, as when the read's retries run out: what it held is dropped,
   * since every live message was stored before it was pushed, and the
   * client's reconnection replays it. Without that, sends to a user during a
   * store outage would grow every one of their stuck sockets for the
   * retries' half minute.
   */
  private hold(delivery: Delivery, held: Outgoing[], outgoing: Outgoing): void {
    const { connection } = delivery;
    delivery.heldBytes += outgoing.length(connection.socket.nsp.name);
    if (delivery.heldBytes <= this.limits.maxHeldBytes) {
      held.push(outgoing);
      return;
    }
    delivery.held = [];
    delivery.heldBytes = 0;
    this.ctx.logger.warn("inbox replay held too many live messages; the session is ended", {
      userId: connection.principal.userId,
      maxHeldBytes: this.limits.maxHeldBytes,
    });
    endSession(connection);
  }

  /**
   * Pushes a stored message to this node's sockets of the user, unless this
   * node already did: a repeated idempotent send offers the first message
   * again. Only a message stored with an idempotency key (`keyed`) can be
   * offered twice, so only those are remembered. Ids of one user's inbox
   * never repeat, so this never holds back a new message.
   */
  private deliverLocally(user: UserKey, message: InboxMessage, keyed: boolean, dataJson?: string): void {
    const userKey = userKeyOf(user);
    // `<id> <user key>`: ids never hold a space, so it reads one way.
    if (this.byUser.sizeOf(userKey) === 0 || (keyed && !this.recentlyPushed.addNew(`${message.id} ${userKey}`))) return;
    const outgoing = new Outgoing(message, dataJson);
    this.byUser.forEach(userKey, (delivery) => {
      if (delivery.held) this.hold(delivery, delivery.held, outgoing);
      else this.push(delivery, outgoing);
    });
  }

  private push(delivery: Delivery, outgoing: Outgoing): void {
    // Ids up to the last one read were in the log when it was read, so they were sent.
    if (delivery.readUpTo !== null && compareInboxIds(outgoing.message.id, delivery.readUpTo) <= 0) return;
    this.emit(delivery, outgoing);
    this.ctx.metrics.inc("truss_inbox_pushed_total");
  }

  /** One message to one socket; a message that cannot be encoded is skipped and logged, never a stall. */
  private emit(delivery: Delivery, outgoing: Outgoing): void {
    const { message } = outgoing;
    try {
      const { socket } = delivery.connection;
      if (!writeEncoded(socket, outgoing)) socket.emit(PROTOCOL_EVENTS.inboxMessage, message);
      if (delivery.sentUpTo === null || compareInboxIds(message.id, delivery.sentUpTo) > 0) delivery.sentUpTo = message.id;
    } catch (error) {
      this.ctx.metrics.inc("truss_inbox_undeliverable_total");
      this.ctx.logger.error("an inbox message could not be encoded and was skipped", {
        id: message.id,
        event: message.event,
        error: messageOf(error),
      });
    }
  }
}

/**
 * A message on its way to this node's sockets, encoded as an `inbox:message`
 * packet once, when the first socket takes it, for all of them. The data's
 * JSON comes with it when the engine made it at the call; a message read
 * from the store or relayed from another node is encoded here.
 */
class Outgoing implements EncodedPacket {
  private text: string | undefined;

  constructor(
    readonly message: InboxMessage,
    private readonly dataJson?: string,
  ) {}

  /** The packet's text for a socket of `namespace` (a node serves one). */
  encoded(namespace: string): string {
    if (this.text !== undefined) return this.text;
    const { id, event, data, ts } = this.message;
    const json = this.dataJson ?? (JSON.stringify(data) as string | undefined);
    const payload = `{"id":${JSON.stringify(id)},"event":${JSON.stringify(event)}${json === undefined ? "" : `,"data":${json}`},"ts":${JSON.stringify(ts)}}`;
    return (this.text = encodeEvent(namespace, PROTOCOL_EVENTS.inboxMessage, payload));
  }

  /** The length of the packet's text (its bytes, for ASCII), to count what a socket holds; 0 when it cannot be encoded, since it will be skipped. */
  length(namespace: string): number {
    try {
      return this.encoded(namespace).length;
    } catch {
      return 0;
    }
  }
}

/**
 * The newest of the ids an `inbox:ack` carries, each checked in the same pass.
 *
 * @throws TrussError `INVALID_PAYLOAD` unless `ids` is an array of 1 to {@link MAX_ACK_IDS} inbox ids.
 */
function newestAcked(ids: unknown): string {
  if (Array.isArray(ids) && ids.length > 0 && ids.length <= MAX_ACK_IDS) {
    let newest: unknown = ids[0];
    let index = 0;
    for (; index < ids.length; index++) {
      const id: unknown = ids[index];
      if (!isInboxId(id)) break;
      if (index > 0 && compareInboxIds(id, newest as string) > 0) newest = id;
    }
    if (index === ids.length) return newest as string;
  }
  throw clientRefusal("INVALID_PAYLOAD", `inbox:ack takes { ids } with 1 to ${MAX_ACK_IDS} inbox ids.`);
}

/** Whether a delivery's socket is still there to catch up. */
function isConnected(delivery: Delivery): boolean {
  return delivery.connection.socket.connected;
}

/** Why a session whose backlog could not be read is ended: a session-ending code, so clients reconnect with backoff. */
const REPLAY_FAILED: ErrorPayload = {
  code: "STORE_UNAVAILABLE",
  message: "Queued messages could not be loaded; this session ends so that the client reconnects and loads them.",
};

/**
 * Ends a session whose backlog the store would not give: the live messages
 * it held are dropped (the store keeps them), and the client's reconnection
 * replays from its cursor. Left open, the device would be sent live messages
 * past the backlog, acknowledge them, and never be sent the backlog.
 */
function endSession({ socket }: Connection): void {
  socket.emit(PROTOCOL_EVENTS.error, REPLAY_FAILED);
  socket.disconnect(true);
}

function newer(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return compareInboxIds(a, b) >= 0 ? a : b;
}
