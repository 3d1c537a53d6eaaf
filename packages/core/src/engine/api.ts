import type { Server as HttpServer } from "node:http";
import type { Server as HttpsServer } from "node:https";
import type { Server } from "socket.io";
import type { Principal } from "../kernel/principal.js";
import type { DocumentVersion } from "../documents/store.js";
import type { InboxMessage } from "../inbox/store.js";
import type { PresenceUser } from "../presence/store.js";
import type { PresenceScope } from "../scoped-presence/store.js";
import type { ScopePresenceApi } from "../scoped-presence/service.js";
import type { StreamPosition } from "@truss/protocol";
import type { DocumentsApi } from "../documents/service.js";
import type { InboxSendOptions } from "../inbox/service.js";
import type { BroadcastSendOptions } from "../streams/service.js";
import type { ClientEventData, ClientEventName, EventCatalog, ServerEventData, ServerEventName } from "../kernel/events.js";
import type { HealthReport } from "./health.js";
import type { DisconnectReason, RevocationResult } from "../revocations/service.js";

/**
 * Emits application events to one stream's sockets: a company's (`toCompany`)
 * or one topic's subscribers in a company (`toTopic`). Crosses nodes through
 * the adapter.
 */
export interface BroadcastEmitter<C extends EventCatalog> {
  /**
   * Stores the event in the stream's history with the next offset, then
   * sends it live with its position, so a device that was away catches up
   * on reconnect (or is told to resync). Resolves with the position. Without
   * an idempotency key it never rejects: when the stream store cannot take
   * it, the event still goes out live without a position, and `null` comes
   * back.
   *
   * With `options.idempotencyKey` it resolves with a position, never `null`:
   * a repeat within the stream TTL stores nothing and resolves with the
   * first broadcast's `{ stream, epoch, offset }`, and sends the first entry
   * to the room again under that position (the first may have been stored
   * but never sent; `@truss/client` drops an offset it already has). When
   * the store does not confirm the append, nothing is sent and it rejects
   * with `STORE_UNAVAILABLE`: retry with the same key.
   *
   * @throws TrussError `INVALID_PAYLOAD` (not JSON, nested past
   * `limits.maxDepth`, or an idempotency key that is not a non-empty string
   * of well-formed Unicode of at most 200 characters) or
   * `PAYLOAD_TOO_LARGE` (past `limits.maxMessageBytes`), before anything is
   * stored or sent.
   */
  emit<E extends ServerEventName<C>>(event: E, data: ServerEventData<C, E>, options?: BroadcastSendOptions): Promise<StreamPosition | null>;
  /**
   * Live only, at-most-once, outside the stream: for what is stale a second
   * later (typing indicators, cursors). A device that was away never gets it.
   */
  readonly volatile: {
    emit<E extends ServerEventName<C>>(event: E, data: ServerEventData<C, E>): void;
  };
}

/** Emits an application event to every connected device of one company. */
export type CompanyEmitter<C extends EventCatalog> = BroadcastEmitter<C>;

/** Emits an application event to the sockets of one company subscribed to one topic, and nobody else. */
export type TopicEmitter<C extends EventCatalog> = BroadcastEmitter<C>;

/** Sends an application event to every device of one user, durably. */
export interface UserEmitter<C extends EventCatalog> {
  /**
   * Appends to the user's inbox, then pushes to each online device; `data`
   * is copied at the call, so changing it afterwards changes nothing. Resolves
   * once the message is stored. Rejects with `INVALID_PAYLOAD` (not JSON: a
   * function, symbol, BigInt, `NaN`, binary data, a `Map` or a cycle, named
   * by its path; or nested past `limits.maxDepth`) or `PAYLOAD_TOO_LARGE` (past
   * `limits.maxMessageBytes`) before anything is stored, and with
   * `STORE_UNAVAILABLE` when the store did not confirm the append: the
   * message may or may not be stored, so retry it with the same
   * `options.idempotencyKey` to have it stored once.
   *
   * With an idempotency key, a repeat within the inbox TTL resolves with the
   * first message and stores nothing (`truss_inbox_duplicates_total` counts
   * it). If the first send's append landed but was not confirmed, the repeat
   * is what pushes the message to the devices online now; a device already
   * sent it is not sent it again by this node. When the inbox's length cap
   * already dropped the first message, the repeat still stores nothing and
   * resolves with the first id and ts, carrying this call's event and data.
   *
   * @throws TypeError (as a rejection, nothing stored) when `options` is not
   * an object or `idempotencyKey` is not a non-empty string of well-formed
   * Unicode of at most 200 characters.
   */
  emit<E extends ServerEventName<C>>(event: E, data: ServerEventData<C, E>, options?: InboxSendOptions): Promise<InboxMessage>;
}

/** What an application event handler is given besides the payload. */
export interface HandlerContext<C extends EventCatalog> {
  /** The verified sender. */
  principal: Principal;
  /**
   * The write's mutation id when the client queued the event in its outbox
   * (`connect({ outbox: { events } })`): the same on every resend of one
   * write. Truss cannot make your handler's own effects happen once; store
   * it with them (a unique column) and answer a repeat with the first
   * result. Unique per user, not across users.
   */
  mutationId?: string;
  /** Emits to the sender's company, except the sender's own socket, live only and outside the stream (e.g. `user:typing`). */
  broadcast<E extends ServerEventName<C>>(event: E, data: ServerEventData<C, E>): void;
  /**
   * Aborted when the handler has not answered within `limits.handlerTimeoutMs`
   * (the client has then been answered `HANDLER_ERROR`; the reason is that
   * error), or when `engine.close()` stops waiting for it, 2 s into the
   * shutdown (the client has then been answered `SERVER_SHUTTING_DOWN`, the
   * reason): pass it to `fetch` or your database client so their work stops
   * too.
   */
  readonly signal: AbortSignal;
}

/** Handles one application client event; its return value is the ack's `result`. */
export type ClientEventHandler<C extends EventCatalog, E extends ClientEventName<C>> = (
  data: ClientEventData<C, E>,
  context: HandlerContext<C>,
) => unknown;

/**
 * Who is here. Called with a company, the company's online users with their
 * devices (company presence); `in(companyId, scope)`, the members present
 * in one topic or document with their state (scoped presence).
 */
export interface PresenceApi {
  /** The online users of a company, with their devices. */
  (companyId: string): Promise<PresenceUser[]>;
  /**
   * One scope's presence: `engine.presence.in("acme", { type: "site-report", id: "r-1" }).list()`.
   *
   * @throws TypeError when `companyId` is empty or `scope` is not `{ topic }` or `{ type, id }`.
   */
  in(companyId: string, scope: PresenceScope): ScopePresenceApi;
}

/**
 * The Truss engine: authenticated Socket.IO connections in server-decided
 * rooms, with presence, durable user inboxes and versioned documents.
 */
export interface RealtimeEngine<C extends EventCatalog = EventCatalog> {
  /** Creates a Socket.IO server on `server` (your HTTP server stays yours: `close()` does not close it). */
  attach(server: HttpServer | HttpsServer): Server;
  /** Serves Truss on an existing Socket.IO server (e.g. NestJS's). */
  bind(io: Server): void;
  /** The Socket.IO server, once attached or bound. */
  readonly io: Server | undefined;
  /** Server-side document operations. */
  readonly documents: DocumentsApi;
  /**
   * Emits to a company's room.
   *
   * @throws TypeError when `companyId` is not a non-empty string of well-formed Unicode.
   */
  toCompany(companyId: string): CompanyEmitter<C>;
  /**
   * Emits to the sockets of one company subscribed to `topic`
   * (`client.subscribe(topic)`, allowed by the `authorize` policy). The same
   * topic name in another company is another topic.
   *
   * @throws TypeError when `topic` is not a topic name, or `companyId` not a non-empty string of well-formed Unicode.
   */
  toTopic(companyId: string, topic: string): TopicEmitter<C>;
  /**
   * Disconnects every device of a user of a company, on every node, telling
   * each client why (`ACCESS_REVOKED` by default, which stops
   * `@truss/client` instead of reconnecting). Resolves with how many sockets
   * it reached. To keep the user out, the authenticator (or the policy) must
   * refuse them from now on too: a disconnect does not invalidate a token.
   */
  disconnectUser(companyId: string, userId: string, reason?: DisconnectReason): Promise<RevocationResult>;
  /**
   * Ends a user's subscription to `topic` on every device and node, with
   * `topic:dropped` (`ACCESS_REVOKED`) to each. Resolves with how many sockets
   * held it. Make the policy refuse the topic too, or the client may
   * subscribe again.
   */
  unsubscribeUser(companyId: string, userId: string, topic: string): Promise<RevocationResult>;
  /**
   * Sends durably to every device of one user of one company. Users are
   * scoped by company: the same user id in another company is another user.
   *
   * @throws TypeError when an id is not a non-empty string of well-formed Unicode (no token names an empty one).
   */
  toUser(companyId: string, userId: string): UserEmitter<C>;
  /**
   * Registers the handler of an application client event; its schema (if
   * any) is checked first. A schema and handler that have not settled within
   * `limits.handlerTimeoutMs` (30 s) are answered `HANDLER_ERROR`, and the
   * handler's `signal` is aborted.
   */
  handle<E extends ClientEventName<C>>(event: E, handler: ClientEventHandler<C, E>): this;
  /** Whether a user of a company is online on any node. */
  isOnline(companyId: string, userId: string): Promise<boolean>;
  /**
   * The online users of a company, with their devices (`engine.presence(companyId)`),
   * and the members of one topic or document (`engine.presence.in(companyId, scope).list()`).
   */
  readonly presence: PresenceApi;
  /** Store reachability and connection count; `status` is `degraded` when a store is down. */
  health(): Promise<HealthReport>;
  /**
   * Every metric of the engine's prom-client registry (counters, gauges,
   * histograms) in its text format: the engine's own registry by default,
   * or the whole application registry given as `metrics.registry`.
   */
  metrics(): Promise<string>;

  /**
   * Tells every client `SERVER_SHUTTING_DOWN`, disconnects it, takes its
   * presence offline and stops every timer. Idempotent. From the call on,
   * `toUser` emits, `toCompany` and `toTopic` emits with an idempotency key,
   * and `documents.update` and `rollback` reject with
   * `SERVER_SHUTTING_DOWN` and store nothing; a `toCompany` or `toTopic`
   * emit without a key, which never rejects, is dropped and resolves `null`.
   */
  close(): Promise<void>;
}
