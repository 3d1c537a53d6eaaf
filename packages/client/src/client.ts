import type { Socket } from "socket.io-client";
import { isTopicName, RESERVED_EVENTS, topicStream, type InboxMessage } from "@truss/protocol";
import type { ClientEventName, EventCatalog, ServerEventData, ServerEventName } from "@truss/protocol";
import { Connection, handlerError, type ConnectionOptions, type ConnectionStatus, type StatusChange } from "./connection.js";
import { memoryDedupStore, type DedupStore } from "./dedup.js";
import { DocumentSync, type ConflictHandler, type DocumentsClient } from "./documents.js";
import type { TrussClientError } from "./errors.js";
import { InboxReceiver } from "./inbox.js";
import { Listeners } from "./listeners.js";
import { isStreamPosition, type StreamResync } from "./ordered-stream.js";
import { DEFAULT_EVENT_ACK_TIMEOUT_MS, Outbox, type OutboxClient } from "./outbox.js";
import { memoryOutboxStore, type OutboxStore } from "./outbox-stores.js";
import { memoryPositionStore, type PositionStore } from "./positions.js";
import { PresenceTracker, type PresenceClient } from "./presence.js";
import { StreamRecovery } from "./recovery.js";
import type { DroppedSubscription } from "./subscriptions.js";
import { TopicSubscriptions } from "./topics.js";

/** Everything {@link connect} accepts. `deviceId` and one of `token`/`getToken` are required. */
export interface ConnectOptions extends ConnectionOptions {
  /**
   * Remembers handled inbox ids so replays reach the app once. Default
   * `memoryDedupStore(1000)`; in browsers, `localStorageDedupStore(key)`
   * also covers page reloads.
   */
  dedupStore?: DedupStore;
  /**
   * Remembers, per company and topic stream, the last broadcast handed to
   * the app, so a reconnection reads exactly what was missed. Default
   * `memoryPositionStore()`; in browsers, `localStoragePositionStore(key)`
   * also recovers across page reloads.
   */
  positionStore?: PositionStore;
  /**
   * Settles `documents.update` conflicts (ask the user, or a rule); without
   * it conflicts are returned as they are. It also settles the conflicts of
   * writes an earlier page queued, whose own `onConflict` did not survive.
   */
  onConflict?: ConflictHandler;
  /** Where writes wait until the server committed them, and which application events queue like document updates. */
  outbox?: OutboxOptions;
}

/** The outbox's options. */
export interface OutboxOptions {
  /**
   * Keeps the pending writes. Default `memoryOutboxStore()`, which survives
   * reconnections; `localStorageOutboxStore(key)` or
   * `indexedDbOutboxStore(name)` also survive a reload or a closed tab: the
   * next page of the same browser profile sends them.
   */
  store?: OutboxStore;
  /**
   * Application events that `emit` queues in the outbox like document
   * updates: kept while offline, sent in order with a mutation id (the
   * handler's `context.mutationId`), and resolved with the handler's result
   * once it answered. Other events fail fast when offline, as before.
   */
  events?: readonly string[];
  /**
   * How many times in a row the server may refuse one write with a code
   * that may be the write's own failure (`@truss/protocol`'s
   * `SUSPECT_RETRY_CODES`: `INTERNAL_ERROR`) before the outbox gives up on
   * it: the write's promise rejects with that code (and `onSettled` hears of
   * it), and the writes behind it go on. Every passing refusal is reported
   * to `onError`. A write the server fails on every time would otherwise be
   * sent again for ever, holding back every write behind it. A store down,
   * a restart or a rate limit, and sends that get no answer (`DISCONNECTED`,
   * `TIMEOUT`, offline), never count: they are waited out. `Infinity` never
   * gives up.
   * @default 5
   */
  maxRefusedAttempts?: number;
  /**
   * How long a queued application event waits for the server's answer
   * before it is sent again (with its mutation id), in ms. Keep it above the
   * server's `limits.handlerTimeoutMs` (30 s by default): the server then
   * answers a handler that hangs with `HANDLER_ERROR`, which gives the write
   * up, where a shorter wait would run the handler again and again and hold
   * the writes behind it. Queued document updates use `ackTimeoutMs`.
   * @default 35000
   */
  eventAckTimeoutMs?: number;
  /**
   * The largest write the outbox takes, in bytes of its JSON. A bigger one
   * is refused at once with `PAYLOAD_TOO_LARGE`, nothing queued: past
   * Socket.IO's buffer (`maxHttpBufferSize`, which Truss sets to four times
   * the server's `limits.maxPayloadBytes` and at least 1 MiB) the server
   * closes the connection instead of answering, and the write would be sent
   * again on every reconnection, holding the writes behind it for good.
   * Raise it with the server's `limits.maxPayloadBytes`.
   * @default 1048576
   */
  maxWriteBytes?: number;
}

/** Where the client stands as a whole, for an "offline, 2 changes waiting" or "in sync" indicator. */
export interface SyncState {
  /** The connection's status. */
  status: ConnectionStatus;
  /** Writes waiting in the outbox (the one being sent included). */
  pendingWrites: number;
  /** Whether broadcasts missed while away are being caught up on. */
  recovering: boolean;
  /** Connected, caught up, and no write waiting: everything this device did is on the server, and everything it should have heard, it heard. */
  inSync: boolean;
}

/**
 * What a client sends for client event `E`: the schema's input type (before
 * the server's validation applies defaults and transforms).
 */
export type ClientEventPayload<C extends EventCatalog, E extends ClientEventName<C>> = NonNullable<C["client"][E]["~standard"]["types"]>["input"];

/** A handler of server event `E`: `message` is set when the event came through the inbox. */
export type ServerEventHandler<C extends EventCatalog, E extends ServerEventName<C>> = (
  data: ServerEventData<C, E>,
  message?: InboxMessage<ServerEventData<C, E>>,
) => void | Promise<void>;

/**
 * A connection to a Truss server, typed by the application's event catalog.
 * Made by {@link connect}.
 */
export interface TrussClient<C extends EventCatalog = EventCatalog> {
  /**
   * Handles server event `E`, whether it was a broadcast to the company
   * (`toCompany`) or to a topic this client subscribed to (`toTopic`), or a
   * durable user message (`toUser`, through the inbox:
   * deduplicated, and acknowledged once this handler settles). Broadcasts
   * come once each, in their stream's order, including those sent while the
   * client was away (see {@link onResync} for when that cannot be); volatile
   * ones, live only. Returns an unsubscribe function.
   */
  on<E extends ServerEventName<C>>(event: E, handler: ServerEventHandler<C, E>): () => void;
  /**
   * Handles server event `E` only when it comes through `topic`'s stream
   * (`engine.toTopic(companyId, topic)`, stored or volatile), as
   * {@link on} does; the same event sent to another topic, to the company
   * or through the inbox does not reach it. It does not subscribe: pair it
   * with {@link subscribe}. Returns an unsubscribe function. Throws a
   * `TypeError` for a malformed topic name or a protocol event.
   */
  onTopic<E extends ServerEventName<C>>(topic: string, event: E, handler: (data: ServerEventData<C, E>) => void | Promise<void>): () => void;
  /**
   * Handles each inbox message once, in order, whatever its event. The
   * message is acknowledged after every handler settled; a handler that
   * throws is reported to `onError` and the message still counts as handled,
   * so one bad message cannot block the rest. Returns an unsubscribe function.
   */
  onInbox(handler: (message: InboxMessage) => void | Promise<void>): () => void;
  /**
   * Sends client event `E` and resolves with the server handler's result;
   * rejects with a {@link TrussClientError} (`INVALID_PAYLOAD`,
   * `UNKNOWN_EVENT`, `RATE_LIMITED`, `HANDLER_ERROR`, `TIMEOUT`…). An event
   * listed in `outbox.events` waits in the outbox instead: across
   * disconnections and lost answers, until the handler answered for good.
   */
  emit<E extends ClientEventName<C>, R = unknown>(event: E, data: ClientEventPayload<C, E>): Promise<R>;
  /**
   * Subscribes to a topic of the user's company (`project:p-17`) and
   * resolves once the server's `authorize` policy allowed it; from then the
   * `on(event)` handlers hear what the server sends to the topic
   * (`engine.toTopic(companyId, topic)`). The client keeps the topic until
   * {@link unsubscribe}, subscribing again after every reconnection; a topic
   * the server refuses then, or drops, is forgotten and reported to
   * {@link onDropped}. Made while offline, the call waits for the connection;
   * an answer that may pass (`TIMEOUT`, `STORE_UNAVAILABLE`, `RATE_LIMITED`:
   * a `retry` or `renew-token` code) is reported to {@link onError} and the
   * topic asked for again, with backoff, the call still waiting.
   * Rejects with a {@link TrussClientError}: `INVALID_PAYLOAD` (a malformed
   * name, refused before sending, or one the server does not offer),
   * `FORBIDDEN`, `TOO_MANY_SUBSCRIPTIONS` (topics and watched documents count
   * against one cap per connection), `CANCELLED` (unsubscribed before it was
   * sent), `CLIENT_CLOSED`. Subscribing twice is harmless.
   */
  subscribe(topic: string): Promise<void>;
  /**
   * Forgets a topic and ends its subscription on the server; resolves also
   * when it was not subscribed, and right away when offline.
   */
  unsubscribe(topic: string): Promise<void>;
  /** The topics this client wants: subscribed, or waiting for the server or the connection. A snapshot. */
  readonly subscriptions: ReadonlySet<string>;
  /**
   * Calls `callback` when the server ends a subscription of this client: a
   * topic or watched document it dropped (`ACCESS_REVOKED` after
   * `engine.unsubscribeUser`, `FORBIDDEN` when a refreshed token no longer
   * passes the policy) or refused when the client asked for it again after a
   * reconnection. The subscription is already forgotten (no longer in
   * {@link subscriptions}, not asked for again). Returns an unsubscribe
   * function.
   */
  onDropped(callback: (drop: DroppedSubscription) => void): () => void;
  /**
   * Calls `callback` when the broadcasts a stream (`company`, or a topic's
   * `topic:<name>`) sent while this client was away cannot be replayed:
   * history trimmed by its size cap (`HISTORY_TRIMMED`) or TTL
   * (`HISTORY_EXPIRED`), lost with the server's store (`EPOCH_CHANGED`), or
   * more than the server replays at once (`TOO_MANY_MISSED`). None of the
   * gap is delivered: refetch the state the stream carries. Live delivery
   * continues after it. Returns an unsubscribe function.
   */
  onResync(callback: (resync: StreamResync) => void): () => void;
  /**
   * Whether the client is catching up on broadcasts missed while it was
   * away, after a (re)connection or the resubscription of a topic. `status`
   * stays `connected` meanwhile, so code that waits for `connected` keeps
   * working; show "syncing…" from this instead.
   */
  readonly recovering: boolean;
  /** Calls `callback` with each change of {@link recovering}. Returns an unsubscribe function. */
  onRecovering(callback: (recovering: boolean) => void): () => void;
  /** Versioned documents with base-version tracking and conflict handling. */
  readonly documents: DocumentsClient;
  /** The writes waiting to be sent: document updates and queued events. */
  readonly outbox: OutboxClient;
  /** The connection, the outbox and recovery together: `inSync` or not, and why. */
  readonly sync: SyncState;
  /** Calls `callback` with each change of {@link sync}. Returns an unsubscribe function. */
  onSync(callback: (state: SyncState) => void): () => void;
  /** Who is online in the company. */
  readonly presence: PresenceClient;
  /** Where the connection stands. */
  readonly status: ConnectionStatus;
  /**
   * Calls `callback` on every status change with the new status and the
   * change (`{ status, previous, reason }`: why, as a coded error, when it was
   * not your own `close()`), so an app need not pair a `closed` status with
   * an earlier `onError`. Returns an unsubscribe function.
   */
  onStatus(callback: (status: ConnectionStatus, change: StatusChange) => void): () => void;
  /**
   * Calls `callback` with every coded error that is not the answer to a call
   * of yours: refused handshakes, failed attempts, the server's `error`
   * events, a failed token refresh, handlers that threw. Returns an
   * unsubscribe function.
   */
  onError(callback: (error: TrussClientError) => void): () => void;
  /** Disconnects for good; pending calls reject with `CLIENT_CLOSED`. Idempotent. */
  close(): void;
  /** The underlying socket.io-client socket, for what this API does not cover. Do not connect or disconnect it yourself. */
  readonly socket: Socket;
}

/**
 * Opens a connection to a Truss server. Listeners registered right after
 * this call, in the same tick, see everything the server replays on connect;
 * register them before any `await`.
 *
 * @example
 * ```ts
 * const client = connect<typeof events>("https://erp.example.com", {
 *   getToken: () => auth.currentToken(),
 *   deviceId: deviceIdFromStorage(),
 *   dedupStore: localStorageDedupStore(`truss:inbox:${userId}`),
 *   positionStore: localStoragePositionStore(`truss:streams:${companyId}:${userId}`),
 * });
 * client.onResync(({ stream }) => refetch(stream));
 * client.on("project:updated", (project) => render(project));
 * client.onInbox((message) => notify(message.event, message.data));
 * ```
 * @throws TypeError when `deviceId` or both `token` and `getToken` are missing.
 */
export function connect<C extends EventCatalog = EventCatalog>(url: string, options: ConnectOptions): TrussClient<C> {
  return new Client<C>(url, options);
}

class Client<C extends EventCatalog> implements TrussClient<C> {
  readonly documents: DocumentSync;
  readonly outbox: Outbox;
  readonly presence: PresenceTracker;
  private readonly connection: Connection;
  private readonly handlers = new Map<string, Listeners<[unknown, InboxMessage?]>>();
  /** `onTopic` handlers by stream (`topic:<name>`), then by event. */
  private readonly topicHandlers = new Map<string, Map<string, Listeners<[unknown]>>>();
  private readonly inboxHandlers: Listeners<[InboxMessage]>;
  private readonly droppedHandlers: Listeners<[DroppedSubscription]>;
  private readonly topics: TopicSubscriptions;
  private readonly streams: StreamRecovery;
  private readonly queuedEvents: ReadonlySet<string>;
  private readonly syncListeners: Listeners<[SyncState]>;
  private lastSync: SyncState | undefined;

  constructor(url: string, options: ConnectOptions) {
    this.connection = new Connection(url, options);
    const report = (where: string) => (error: unknown) => this.connection.report(handlerError(where, error));
    this.inboxHandlers = new Listeners(report("onInbox"));
    this.droppedHandlers = new Listeners(report("onDropped"));
    const dropped = (drop: DroppedSubscription) => this.droppedHandlers.emit(drop);
    const deliver = (event: string, data: unknown, stream: string | undefined) => {
      this.handlers.get(event)?.emit(data);
      if (stream !== undefined) this.topicHandlers.get(stream)?.get(event)?.emit(data);
    };
    this.streams = new StreamRecovery(this.connection, options.positionStore ?? memoryPositionStore(), deliver, report);
    this.topics = new TopicSubscriptions(this.connection, dropped, this.streams);
    this.queuedEvents = new Set(options.outbox?.events ?? []);
    for (const event of this.queuedEvents) assertApplicationEvent(event);
    const eventAckTimeoutMs = options.outbox?.eventAckTimeoutMs ?? DEFAULT_EVENT_ACK_TIMEOUT_MS;
    if (!(eventAckTimeoutMs > 0)) throw new TypeError(`outbox.eventAckTimeoutMs must be a positive number; got ${String(options.outbox?.eventAckTimeoutMs)}.`);
    this.outbox = new Outbox(
      this.connection,
      options.outbox?.store ?? memoryOutboxStore(),
      async (write, persist) =>
        write.kind === "document"
          ? this.documents.send(write, persist)
          : (await this.connection.call(write.event, write.data, { mutationId: write.mutationId }, eventAckTimeoutMs)).result,
      report,
      { maxRefusedAttempts: options.outbox?.maxRefusedAttempts, maxWriteBytes: options.outbox?.maxWriteBytes },
    );
    this.documents = new DocumentSync(this.connection, this.outbox, options.onConflict, report("documents.onUpdated"), dropped);
    this.syncListeners = new Listeners(report("onSync"));
    const syncChanged = () => {
      const state = this.sync;
      const last = this.lastSync;
      if (last && last.status === state.status && last.pendingWrites === state.pendingWrites && last.recovering === state.recovering) return;
      this.lastSync = state;
      this.syncListeners.emit(state);
    };
    this.connection.onStatus(syncChanged);
    this.outbox.onChange(syncChanged);
    this.streams.onRecovering(syncChanged);
    this.presence = new PresenceTracker(this.connection, report("presence.subscribe"));
    // Ended because its session passed to another user or company (signed out and in while this client was away): an
    // app still showing this client shows nothing of the first one. What it queued stays in the outbox store.
    this.connection.onStatus((status, { reason }) => {
      if (status !== "closed" || reason?.code !== "AUTH_PRINCIPAL_MISMATCH") return;
      this.documents.forget();
      this.presence.forget();
      this.outbox.forget();
    });
    new InboxReceiver(this.connection, options.dedupStore ?? memoryDedupStore(), (message) => this.deliverInbox(message));
    this.connection.socket.onAny((event: string, data: unknown, position?: unknown) => {
      if (RESERVED_EVENTS.has(event)) return;
      // Stored broadcasts carry their stream position; volatile ones, and those the server could not store, go straight
      // through, a topic's with its stream's name.
      if (isStreamPosition(position)) this.streams.receive(event, data, position);
      else deliver(event, data, streamLabelOf(position));
    });
    this.connection.start();
  }

  get status(): ConnectionStatus {
    return this.connection.status;
  }

  get socket(): Socket {
    return this.connection.socket;
  }

  on<E extends ServerEventName<C>>(event: E, handler: ServerEventHandler<C, E>): () => void {
    assertApplicationEvent(event);
    return this.addListener(this.handlers, event, `"${event}"`, handler as (data: unknown, message?: InboxMessage) => unknown);
  }

  onTopic<E extends ServerEventName<C>>(topic: string, event: E, handler: (data: ServerEventData<C, E>) => void | Promise<void>): () => void {
    if (!isTopicName(topic)) throw new TypeError(`onTopic(topic, event, handler): ${JSON.stringify(topic)} is not a topic name.`);
    assertApplicationEvent(event);
    const stream = topicStream(topic);
    let byEvent = this.topicHandlers.get(stream);
    if (!byEvent) this.topicHandlers.set(stream, (byEvent = new Map()));
    const remove = this.addListener(byEvent, event, `"${event}" of topic "${topic}"`, handler as (data: unknown) => unknown);
    return () => {
      remove();
      if (byEvent.size === 0 && this.topicHandlers.get(stream) === byEvent) this.topicHandlers.delete(stream);
    };
  }

  /**
   * Adds `handler` to the listeners of `event` in `table`, made on first use;
   * a failing handler is reported as `where`. The returned function removes
   * it, and the event's entry with its last handler, so an app that handles
   * ever new events does not grow the table.
   */
  private addListener<A extends unknown[]>(table: Map<string, Listeners<A>>, event: string, where: string, handler: (...args: A) => unknown): () => void {
    let listeners = table.get(event);
    if (!listeners) {
      listeners = new Listeners<A>((error) => this.connection.report(handlerError(where, error)));
      table.set(event, listeners);
    }
    const held = listeners;
    const remove = held.add(handler);
    return () => {
      remove();
      if (held.size === 0 && table.get(event) === held) table.delete(event);
    };
  }

  onInbox(handler: (message: InboxMessage) => void | Promise<void>): () => void {
    return this.inboxHandlers.add(handler);
  }

  async emit<E extends ClientEventName<C>, R = unknown>(event: E, data: ClientEventPayload<C, E>): Promise<R> {
    assertApplicationEvent(event);
    if (this.queuedEvents.has(event)) return (await this.outbox.add({ kind: "event", event, data })) as R;
    const body = await this.connection.call(event, data);
    return body.result as R;
  }

  get sync(): SyncState {
    const status = this.connection.status;
    const pendingWrites = this.outbox.size;
    const recovering = this.streams.recovering;
    return { status, pendingWrites, recovering, inSync: status === "connected" && pendingWrites === 0 && !recovering };
  }

  onSync(callback: (state: SyncState) => void): () => void {
    return this.syncListeners.add(callback);
  }

  subscribe(topic: string): Promise<void> {
    return this.topics.subscribe(topic);
  }

  unsubscribe(topic: string): Promise<void> {
    return this.topics.unsubscribe(topic);
  }

  get subscriptions(): ReadonlySet<string> {
    return this.topics.topics;
  }

  onDropped(callback: (drop: DroppedSubscription) => void): () => void {
    return this.droppedHandlers.add(callback);
  }

  onResync(callback: (resync: StreamResync) => void): () => void {
    return this.streams.onResync(callback);
  }

  get recovering(): boolean {
    return this.streams.recovering;
  }

  onRecovering(callback: (recovering: boolean) => void): () => void {
    return this.streams.onRecovering(callback);
  }

  onStatus(callback: (status: ConnectionStatus, change: StatusChange) => void): () => void {
    return this.connection.onStatus(callback);
  }

  onError(callback: (error: TrussClientError) => void): () => void {
    return this.connection.onError(callback);
  }

  close(): void {
    this.connection.close();
  }

  private async deliverInbox(message: InboxMessage): Promise<void> {
    await Promise.all([
      this.inboxHandlers.emitAndWait(this.connection.callbackTimeoutMs, message),
      this.handlers.get(message.event)?.emitAndWait(this.connection.callbackTimeoutMs, message.data, message),
    ]);
  }
}

/** The stream a broadcast without a position names in its third argument (a topic's; see `StreamLabel`), or `undefined`. */
function streamLabelOf(label: unknown): string | undefined {
  const stream = (label as { stream?: unknown } | null | undefined)?.stream;
  return typeof stream === "string" ? stream : undefined;
}

function assertApplicationEvent(event: string): void {
  if (typeof event !== "string" || event.length === 0) throw new TypeError("An event name must be a non-empty string.");
  if (RESERVED_EVENTS.has(event)) {
    throw new TypeError(`"${event}" is a Truss protocol event; use client.subscribe, client.documents, client.presence or onInbox/onError/onDropped instead.`);
  }
}
