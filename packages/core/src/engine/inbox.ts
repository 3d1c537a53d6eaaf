import { Adapter } from "socket.io-adapter";
import { TrussError } from "../errors.js";
import { compareInboxIds, type InboxMessage } from "../inbox/store.js";
import { PROTOCOL_EVENTS } from "../protocol.js";
import type { Connection } from "./connection.js";
import { storeCall, type EngineContext } from "./context.js";

/** Server-side event that carries a freshly stored inbox message to the other nodes. */
const RELAY_EVENT = "truss:inbox";
/** How many messages a replay reads at a time. */
const REPLAY_PAGE = 200;
const INBOX_ID = /^\d{1,16}-\d{1,16}$/;
/** The most ids one `inbox:ack` may carry. */
export const MAX_ACK_IDS = 1000;

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
  private readonly byUser = new Map<string, Set<Connection>>();
  private clustered = false;

  constructor(private readonly ctx: EngineContext) {}

  /** Listens for messages stored on other nodes. Call once the namespace exists. */
  bindNamespace(): void {
    const namespace = this.ctx.namespace();
    // The in-memory adapter has no other node to reach and warns on every call.
    this.clustered = namespace.adapter.serverSideEmit !== Adapter.prototype.serverSideEmit;
    namespace.on(RELAY_EVENT, (userId: string, message: InboxMessage) => this.deliverLocally(userId, message));
  }

  /** Stores a message for a user and pushes it to every device of theirs that is online. */
  async send(userId: string, event: string, data: unknown): Promise<InboxMessage> {
    const message = await storeCall("inbox", () => this.ctx.stores.inbox.append(userId, event, data));
    this.ctx.metrics.inc("truss_inbox_appended_total");
    this.deliverLocally(userId, message);
    if (this.clustered) this.ctx.namespace().serverSideEmit(RELAY_EVENT, userId, message);
    return message;
  }

  /** Registers a new socket and replays what its device has not acknowledged. */
  async connected(connection: Connection): Promise<void> {
    const { userId } = connection.principal;
    let connections = this.byUser.get(userId);
    if (!connections) this.byUser.set(userId, (connections = new Set()));
    connections.add(connection);
    try {
      await this.replay(connection);
    } catch (error) {
      connection.socket.emit(PROTOCOL_EVENTS.error, {
        code: "STORE_UNAVAILABLE",
        message: "Queued messages could not be loaded; reconnect to try again.",
      });
      this.ctx.logger.warn("inbox replay failed", { userId, error: error instanceof Error ? error.message : String(error) });
    } finally {
      this.flushHeld(connection);
    }
  }

  /** Forgets a socket. */
  disconnected(connection: Connection): void {
    const connections = this.byUser.get(connection.principal.userId);
    connections?.delete(connection);
    if (connections?.size === 0) this.byUser.delete(connection.principal.userId);
  }

  /** Moves the device's cursor past the acknowledged ids. */
  async ack(connection: Connection, ids: unknown): Promise<void> {
    if (!Array.isArray(ids) || ids.length === 0 || ids.length > MAX_ACK_IDS || !ids.every((id) => typeof id === "string" && INBOX_ID.test(id))) {
      throw new TrussError("INVALID_PAYLOAD", `inbox:ack takes { ids } with 1 to ${MAX_ACK_IDS} inbox ids.`);
    }
    const newest = (ids as string[]).reduce((a, b) => (compareInboxIds(a, b) >= 0 ? a : b));
    const { userId, deviceId } = connection.principal;
    await storeCall("inbox", () => this.ctx.stores.inbox.ack(userId, deviceId, newest));
  }

  private async replay(connection: Connection): Promise<void> {
    const { userId, deviceId } = connection.principal;
    let after = await storeCall("inbox", () => this.ctx.stores.inbox.cursor(userId, deviceId));
    for (;;) {
      const page = await storeCall("inbox", () => this.ctx.stores.inbox.read(userId, after, REPLAY_PAGE));
      for (const message of page) connection.socket.emit(PROTOCOL_EVENTS.inboxMessage, message);
      if (page.length > 0) after = page[page.length - 1]!.id;
      connection.lastReplayedId = after;
      if (page.length < REPLAY_PAGE || !connection.socket.connected) return;
    }
  }

  /** Sends what arrived live during the replay, minus what the replay already covered. */
  private flushHeld(connection: Connection): void {
    const held = connection.replayBuffer ?? [];
    connection.replayBuffer = null;
    held.sort((a, b) => compareInboxIds(a.id, b.id));
    for (const message of held) this.push(connection, message);
  }

  private deliverLocally(userId: string, message: InboxMessage): void {
    const connections = this.byUser.get(userId);
    if (!connections) return;
    for (const connection of connections) {
      if (connection.replayBuffer) connection.replayBuffer.push(message);
      else this.push(connection, message);
    }
  }

  private push(connection: Connection, message: InboxMessage): void {
    // Ids up to the replay's last one were in the log when it was read, so they were replayed.
    if (connection.lastReplayedId !== null && compareInboxIds(message.id, connection.lastReplayedId) <= 0) return;
    connection.socket.emit(PROTOCOL_EVENTS.inboxMessage, message);
    this.ctx.metrics.inc("truss_inbox_pushed_total");
  }
}
