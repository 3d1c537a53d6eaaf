import { setMaxListeners } from "node:events";
import type { Server as HttpServer } from "node:http";
import type { Server as HttpsServer } from "node:https";
import { Server } from "socket.io";
import { messageOf, TrussError } from "../kernel/errors.js";
import { COMPANY_STREAM, isTopicName, MAX_MUTATION_ID_LENGTH, PROTOCOL_EVENTS, topicStream } from "@truss/protocol";
import type { BroadcastEmitter, ClientEventHandler, CompanyEmitter, PresenceApi, RealtimeEngine, TopicEmitter, UserEmitter } from "./api.js";
import type { StreamKey } from "../streams/store.js";
import { Connection, LocalConnections } from "../kernel/connection.js";
import { ADD_ENGINE_PART, type EnginePart } from "../kernel/lifecycle.js";
import { emitApplicationEvent, type EngineContext, type TrussNamespace, type TrussSocket } from "../kernel/context.js";
import { boundedParser } from "./bounded-parser.js";
import { Dispatcher, requireString, type EventHandler } from "./dispatch.js";
import { DocumentService, type DocumentsApi } from "../documents/service.js";
import { assertApplicationEvent, validateWithSchema, type ClientEventData, type ClientEventName, type EventCatalog } from "../kernel/events.js";
import { SHUTTING_DOWN, toTrussError } from "../kernel/failures.js";
import { abortableWithin, storeDeadlines } from "../kernel/deadlines.js";
import { answersInProcess } from "../kernel/in-process.js";
import type { Logger } from "../kernel/logger.js";
import { Handshake } from "../auth/handshake.js";
import { checkHealth, type HealthReport } from "./health.js";
import { InboxService } from "../inbox/service.js";
import { hasUndeliveredCalls } from "../inbox/store.js";
import { undeliveredDelayOf } from "../undelivered/options.js";
import { UndeliveredCalls } from "../undelivered/service.js";
import { createEngineMetrics, disconnectReasonLabel } from "../kernel/metrics.js";
import { assertKnownOptions } from "./known-options.js";
import { resolveOptions, type RealtimeEngineOptions, type ResolvedOptions } from "./options.js";
import { assertIds } from "../kernel/payload.js";
import { Policy } from "../policy/policy.js";
import { PresenceService } from "../presence/service.js";
import { ScopedPresenceService } from "../scoped-presence/service.js";
import { registerProtocolHandlers } from "./protocol-handlers.js";
import { Revocations, type DisconnectReason, type RevocationResult } from "../revocations/service.js";
import { StreamService } from "../streams/service.js";
import { Subscriptions } from "../topics/subscriptions.js";
import { SPAN_KIND, traced } from "../kernel/tracing.js";
import { SlowConsumerGuard } from "./slow-consumers.js";
import { UpgradeRequests } from "../auth/upgrade-request.js";
import { companyRoom, topicRoom } from "../kernel/rooms.js";

/** How long `close()` waits for running calls, then for clients to receive their goodbye, before closing transports. */
const SHUTDOWN_FLUSH_MS = 2000;
/** Where Socket.IO serves unless `socketIo.path` says otherwise. */
const DEFAULT_SOCKET_IO_PATH = "/socket.io";

/** The Socket.IO paths engines attached to each HTTP server, for good: Engine.IO's listeners stay on the server after it closes. */
const attachedPaths = new WeakMap<HttpServer | HttpsServer, Set<string>>();

/**
 * Takes `path` on `server` for one engine. Two Engine.IO servers on one path
 * (an app that mounts Truss twice, or two modules that each do) both answer
 * every upgrade, and `ws` throws on the second: the first WebSocket, even
 * without a token, would end the process. Refused here, at start-up.
 */
function claimPath(server: HttpServer | HttpsServer, path: string): void {
  let paths = attachedPaths.get(server);
  if (!paths) attachedPaths.set(server, (paths = new Set()));
  if (paths.has(path)) {
    throw new Error(`This HTTP server already serves Socket.IO at ${path}: attach one engine per server (mount Truss once), or give the second its own socketIo.path.`);
  }
  paths.add(path);
}

/**
 * Creates an engine. Nothing listens until `attach` or `bind`.
 *
 * @example
 * ```ts
 * const engine = createRealtimeEngine({
 *   auth: jwtAuth({ secret: process.env.JWT_SECRET!, algorithms: ["HS256"] }),
 * });
 * engine.attach(httpServer);
 * engine.toCompany("acme").emit("project:updated", { id: "p1", name: "Tower B" });
 * ```
 */
export function createRealtimeEngine<C extends EventCatalog = EventCatalog, T extends string = string>(options: RealtimeEngineOptions<C, T>): RealtimeEngine<C> {
  return new TrussEngine<C>(options as RealtimeEngineOptions<C>);
}

/**
 * Wires the engine's parts together; each part owns its state and its file:
 * the handshake (who may connect, until when), the dispatcher (every client
 * event, its limits and its answer), the policy and subscriptions (what a
 * connection may touch and hear inside its company), revocations, presence,
 * the inbox, documents, and the slow-consumer guard.
 */
class TrussEngine<C extends EventCatalog> implements RealtimeEngine<C> {
  io: Server | undefined;
  readonly documents: DocumentsApi;
  readonly presence: PresenceApi;
  private nsp: TrussNamespace | undefined;
  private ownsIo = false;
  private closing = false;
  private closed: Promise<void> | undefined;
  private readonly startedAt = Date.now();
  private readonly resolved: ResolvedOptions;
  private readonly connections = new LocalConnections();
  private readonly upgradeRequests = new UpgradeRequests();
  private readonly handlers = new Map<string, EventHandler>();
  /** Aborted once `close()` stops waiting for the application's work (see EngineContext.abandoned). */
  private readonly abandoned = new AbortController();
  /** Background store calls (presence, replays) that `close()` waits for. */
  private readonly pending = new Set<Promise<unknown>>();
  /** The parts with a lifecycle, started, opened, closed and stopped in this order. */
  private readonly parts: EnginePart[];
  private readonly ctx: EngineContext;
  private readonly handshake: Handshake;
  private readonly dispatcher: Dispatcher;
  private readonly presenceService: PresenceService;
  private readonly scopedPresence: ScopedPresenceService;
  private readonly inboxService: InboxService;
  private readonly documentService: DocumentService;
  private readonly slowConsumers: SlowConsumerGuard;
  private readonly policy: Policy;
  private readonly subscriptions: Subscriptions;
  private readonly revocations: Revocations;
  private readonly streams: StreamService;

  constructor(private readonly options: RealtimeEngineOptions<C>) {
    // Refused by name before anything is resolved: a misspelled option would otherwise just take its default.
    assertKnownOptions(options);
    const resolved = (this.resolved = resolveOptions(options));
    const { limits } = resolved;
    const deadlines = storeDeadlines(limits.storeTimeoutMs, [
      ["presence", resolved.stores.presence],
      ["presence", resolved.scopedPresence.store],
      ["inbox", resolved.stores.inbox],
      ["documents", resolved.stores.documents],
      ["streams", resolved.stores.streams],
      ["revocations", resolved.stores.revocations],
    ]);
    if (options.adapter !== undefined) warnOfStoresPerNode(resolved.logger, { ...resolved.stores, scopedPresence: resolved.scopedPresence.store });
    // One listener per running handler or authenticator that read its signal: bounded by the limits, not a leak.
    setMaxListeners(0, this.abandoned.signal);
    this.ctx = {
      namespace: () => {
        if (!this.nsp) throw new Error("The engine is not attached yet: call engine.attach(httpServer) or engine.bind(io) first.");
        return this.nsp;
      },
      metrics: createEngineMetrics(() => this.connections.size, resolved.stores, deadlines, options.metrics),
      logger: resolved.logger,
      storeDeadlines: deadlines,
      abandoned: this.abandoned.signal,
    };
    this.policy = new Policy(this.ctx, resolved.authorize, limits.authorizeTimeoutMs);
    this.subscriptions = new Subscriptions(this.ctx, this.policy, resolved.topics.patterns, limits.maxSubscriptionsPerConnection, (connection, topic) =>
      this.revocations.topicRefusal(connection, topic),
    );
    this.revocations = new Revocations(this.ctx, resolved.stores.revocations, resolved.revocationTiming, (userKey, visit) => this.connections.forEachOf(userKey, visit), this.subscriptions);
    this.streams = new StreamService(this.ctx, resolved.stores.streams, {
      maxDepth: limits.maxDepth,
      maxMessageBytes: limits.maxMessageBytes,
      maxReplay: resolved.maxReplay,
    });
    this.presenceService = new PresenceService(this.ctx, resolved.stores.presence, resolved.presenceTiming);
    this.scopedPresence = new ScopedPresenceService(this.ctx, resolved.scopedPresence.store, this.policy, resolved.presenceTiming, resolved.scopedPresence.limits);
    this.presence = Object.assign((companyId: string) => this.presenceService.list(companyId), {
      in: (companyId: string, scope: Parameters<PresenceApi["in"]>[1]) => this.scopedPresence.in(companyId, scope),
    });
    const { undelivered } = resolved;
    this.inboxService = new InboxService(
      this.ctx,
      resolved.stores.inbox,
      { maxDepth: limits.maxDepth, maxMessageBytes: limits.maxMessageBytes, maxHeldBytes: limits.maxBufferedBytes },
      (event, choice) => undeliveredDelayOf(undelivered, event, choice),
    );
    this.documentService = new DocumentService(
      this.ctx,
      resolved.stores.documents,
      resolved.resolver,
      { maxDepth: limits.maxDepth, maxDocumentBytes: limits.maxDocumentBytes },
      // With a policy, only sockets whose read it allowed (watchers) hear a document's commits.
      this.policy.configured ? "watchers" : "company",
    );
    const documents = this.documentService.api();
    // Writes, like sends, are refused once close() has started; reads go on.
    this.documents = {
      ...documents,
      update: (...args) => this.unlessClosing(() => documents.update(...args)),
      rollback: (...args) => this.unlessClosing(() => documents.rollback(...args)),
    };
    this.handshake = new Handshake(this.ctx, resolved, this.presenceService, this.revocations, () => this.closing);
    this.dispatcher = new Dispatcher(this.ctx, this.handlers, limits);
    this.slowConsumers = new SlowConsumerGuard(this.ctx, limits.maxBufferedBytes, (visit) => this.connections.forEach(visit));
    // In this order: a connection's events are routed and its session armed before anything is sent to it.
    this.parts = [this.dispatcher, this.handshake, this.streams, this.slowConsumers, this.presenceService, this.scopedPresence, this.inboxService, this.revocations];
    const inbox = resolved.stores.inbox;
    if (undelivered && hasUndeliveredCalls(inbox)) {
      this.parts.push(new UndeliveredCalls(this.ctx, inbox, resolved.stores.presence, undelivered));
    }
    registerProtocolHandlers(this.handlers, {
      refreshAuth: async (connection, token) => {
        const { expiresAt } = await this.handshake.refresh(connection, token);
        const dropped = await this.subscriptions.recheck(connection);
        await this.scopedPresence.recheck(connection);
        return { expiresAt, dropped };
      },
      policy: this.policy,
      subscriptions: this.subscriptions,
      streams: this.streams,
      presence: this.presenceService,
      scopedPresence: this.scopedPresence,
      inbox: this.inboxService,
      documents: this.documentService,
    });
  }

  attach(server: HttpServer | HttpsServer): Server {
    const { socketIo = {}, adapter } = this.options;
    claimPath(server, socketIo.path ?? DEFAULT_SOCKET_IO_PATH);
    const { allowedOrigins, maxPayloadBytes } = this.resolved.limits;
    // Past this the transport drops the connection before buffering the frame (and the parser, a binary packet's
    // attachments together); below it, oversized events get a PAYLOAD_TOO_LARGE answer instead.
    const maxHttpBufferSize = Math.max(maxPayloadBytes * 4, 1024 * 1024);
    const io = new Server(server, {
      serveClient: false,
      parser: boundedParser(maxHttpBufferSize),
      ...socketIo,
      maxHttpBufferSize,
      ...(allowedOrigins && !socketIo.cors ? { cors: { origin: [...allowedOrigins], credentials: true } } : {}),
      ...(adapter ? { adapter } : {}),
    });
    this.ownsIo = true;
    this.bind(io);
    return io;
  }

  bind(io: Server): void {
    if (this.nsp) throw new Error("This engine is already attached; create one engine per Socket.IO server.");
    this.io = io;
    this.nsp = io.of(this.resolved.namespace) as unknown as TrussNamespace;
    this.handshake.guardOrigins(io);
    this.upgradeRequests.track(io);
    this.nsp.use((socket, next) => void this.admit(socket).then(() => next(), next));
    this.nsp.on("connection", (socket) => this.onConnection(socket));
    for (const part of this.parts) part.start?.();
  }

  /** The namespace middleware: the handshake's checks, then where the company's stream stands, before the socket joins its company's room (see StreamService.prepare). */
  private async admit(socket: TrussSocket): Promise<void> {
    const principal = await this.handshake.admit(socket);
    socket.data.principal = principal;
    await this.streams.prepare(socket, principal.companyId);
  }

  /** A part made outside the engine (the outbox relay) joins first; one that joins a bound engine starts itself. */
  [ADD_ENGINE_PART](part: EnginePart): Pick<EngineContext, "logger" | "metrics"> {
    // Its stop would never be called, and the engine takes no new work.
    if (this.closing) throw new Error("This engine is closing (engine.close() was called): it takes no outbox relay. Start the relay before closing the engine.");
    this.parts.unshift(part);
    return { logger: this.ctx.logger, metrics: this.ctx.metrics };
  }

  toCompany(companyId: string): CompanyEmitter<C> {
    assertIds("toCompany(companyId)", { companyId });
    return this.broadcaster("company", { companyId, stream: COMPANY_STREAM }, companyRoom(companyId));
  }

  toTopic(companyId: string, topic: string): TopicEmitter<C> {
    assertIds("toTopic(companyId, topic)", { companyId });
    if (!isTopicName(topic)) throw new TypeError(`toTopic(companyId, topic): ${JSON.stringify(topic)} is not a topic name (letters, digits, _ . @ - in parts joined by : or /).`);
    return this.broadcaster("topic", { companyId, stream: topicStream(topic) }, topicRoom(companyId, topic));
  }

  /** The emitter of one stream: stored with a position, or volatile (live only). */
  private broadcaster(scope: "company" | "topic", key: StreamKey, room: string): BroadcastEmitter<C> {
    return {
      emit: (event, data, options) => {
        assertApplicationEvent(event);
        // Without a key an emit never rejects (routes fire and forget it): while closing it is dropped and resolves `null`,
        // as when its store fails; with one the caller awaits a position, and is told.
        if (this.closing && options?.idempotencyKey === undefined) return Promise.resolve(null);
        return this.unlessClosing(() => {
          const published = this.streams.publish(key, room, event, data, options);
          this.countBroadcast(key.companyId, scope);
          return published;
        });
      },
      volatile: {
        emit: (event, data) => {
          assertApplicationEvent(event);
          this.streams.publishVolatile(key, room, event, data);
          this.countBroadcast(key.companyId, `${scope}_volatile`);
        },
      },
    };
  }

  /** Counts one application event emitted, and per company when `metrics.companyLabel` is on. */
  private countBroadcast(companyId: string, scope: string): void {
    this.ctx.metrics.inc("truss_broadcasts_total", { scope });
    const company = this.ctx.metrics.company(companyId);
    if (company !== null) this.ctx.metrics.inc("truss_company_broadcasts_total", { company, scope });
  }

  disconnectUser(companyId: string, userId: string, reason?: DisconnectReason): Promise<RevocationResult> {
    return this.revocations.disconnectUser(companyId, userId, reason);
  }

  unsubscribeUser(companyId: string, userId: string, topic: string): Promise<RevocationResult> {
    return this.revocations.unsubscribeUser(companyId, userId, topic);
  }

  toUser(companyId: string, userId: string): UserEmitter<C> {
    // Users are scoped by company: the same user id in another company is another user.
    assertIds("toUser(companyId, userId)", { companyId, userId });
    return {
      emit: (event, data, options) =>
        this.unlessClosing(() =>
          traced("truss.to_user", SPAN_KIND.internal, { "truss.event": String(event).slice(0, 100), "truss.company_id": companyId }, async (span) => {
            assertApplicationEvent(event);
            const { message, duplicate } = await this.inboxService.send({ companyId, userId }, event, data, options);
            span.set("truss.inbox.duplicate", duplicate);
            span.set("truss.inbox.message_id", message.id);
            // A repeat of an idempotent send is not a new event.
            if (!duplicate) this.countBroadcast(companyId, "user");
            return message;
          }),
        ),
    };
  }

  /**
   * Runs a server API call that stores something (a send, a document write),
   * or rejects it with `SERVER_SHUTTING_DOWN` once `close()` has started: an
   * engine going away takes no new work, and the caller (a job still running
   * at shutdown) must not be told it was stored.
   */
  private unlessClosing<T>(call: () => Promise<T>): Promise<T> {
    return this.closing ? Promise.reject(new TrussError(SHUTTING_DOWN.code, SHUTTING_DOWN.message)) : call();
  }

  handle<E extends ClientEventName<C>>(event: E, handler: ClientEventHandler<C, E>): this {
    assertApplicationEvent(event);
    const catalog = this.options.events;
    const schema = catalog?.client[event];
    if (catalog && !schema) {
      throw new TypeError(`"${event}" is not in the event catalog's client events; add it with its schema.`);
    }
    const failed = { code: "HANDLER_ERROR" as const, message: `"${event}" could not be handled; the server logged why.` };
    const { handlerTimeoutMs } = this.resolved.limits;
    /** `signal` makes the handler's AbortSignal when the handler first reads it, so a handler that never does costs none. */
    const run = async (connection: Connection, payload: unknown, meta: unknown, signal: () => AbortSignal): Promise<object> => {
      const mutationId = mutationIdOf(meta);
      const pending = this.policy.check(connection.principal, { action: "event", event });
      if (pending) await pending;
      let data = payload;
      if (schema) {
        const validation = await validateWithSchema(event, schema, payload);
        if (!validation.ok) throw new TrussError(validation.error.code, validation.error.message);
        data = validation.value;
      }
      const { socket, principal } = connection;
      try {
        const result = await handler(data as ClientEventData<C, E>, {
          principal,
          ...(mutationId === undefined ? {} : { mutationId }),
          broadcast: (name, body) => {
            assertApplicationEvent(name);
            emitApplicationEvent(socket.to(companyRoom(principal.companyId)), name, body);
          },
          get signal() {
            return signal();
          },
        });
        return result === undefined ? {} : { result };
      } catch (error) {
        throw toTrussError(error, failed, { logger: this.ctx.logger, what: `handler for "${event}" threw` });
      }
    };
    const timedOut = () => {
      this.ctx.logger.warn(`the handler for "${event}" did not answer in time; answered HANDLER_ERROR`, { timeoutMs: handlerTimeoutMs });
      return new TrussError("HANDLER_ERROR", `"${event}" did not answer within ${handlerTimeoutMs} ms; it may still finish on the server.`);
    };
    const abandoned = this.abandoned.signal;
    this.handlers.set(event, (connection, payload, meta) => abortableWithin(handlerTimeoutMs, (signal) => run(connection, payload, meta, signal), timedOut, abandoned));
    return this;
  }

  isOnline(companyId: string, userId: string): Promise<boolean> {
    return this.presenceService.isOnline(companyId, userId);
  }

  health(): Promise<HealthReport> {
    return checkHealth(this.resolved.stores, {
      nodeId: this.resolved.nodeId,
      connections: this.connections.size,
      uptimeMs: Date.now() - this.startedAt,
      closing: this.closing,
    });
  }

  metrics(): Promise<string> {
    // Store totals (inbox and stream drops) are read by the registry's collect callbacks at each scrape.
    return this.ctx.metrics.render();
  }

  /**
   * The content type of `metrics()` output: the registry's (Prometheus text,
   * or OpenMetrics for an OpenMetrics registry). Not part of `RealtimeEngine`
   * (wrappers forward its members); the metrics route reads it when present.
   */
  get metricsContentType(): string {
    return this.ctx.metrics.contentType;
  }

  close(): Promise<void> {
    this.closed ??= this.shutdown();
    return this.closed;
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    for (const part of this.parts) await part.stop?.();
    // Calls already running get their answer (or SERVER_SHUTTING_DOWN) before their socket goes.
    await this.dispatcher.drain(SHUTDOWN_FLUSH_MS);
    // Handlers still running were answered SERVER_SHUTTING_DOWN; their signals (and in-flight authenticators') say so.
    this.abandoned.abort(new TrussError(SHUTTING_DOWN.code, SHUTTING_DOWN.message));
    const transports = [...this.connections].map((connection) => connection.socket.conn);
    for (const connection of this.connections) {
      connection.socket.emit(PROTOCOL_EVENTS.error, SHUTTING_DOWN);
      connection.socket.disconnect(true);
    }
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
    if (this.nsp) await this.nsp.adapter.close?.();
    // Let our clients' transports flush the goodbye before anything is forced
    // shut; other namespaces' clients (a NestJS gateway's) are not ours to wait for.
    const deadline = Date.now() + SHUTDOWN_FLUSH_MS;
    while (transports.some((transport) => transport.readyState !== "closed") && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    if (this.ownsIo && this.io) this.io.engine.close();
  }

  private onConnection(socket: TrussSocket): void {
    const { principal } = socket.data;
    this.upgradeRequests.release(socket);
    if (!this.handshake.seat(socket, principal) || this.revocations.revokedWhileJoining(socket, principal)) return;
    const connection = new Connection(socket, principal);
    this.connections.add(connection);
    this.ctx.metrics.inc("truss_connections_total");
    socket.join(companyRoom(principal.companyId));
    socket.on("disconnect", this.onDisconnect);
    for (const part of this.parts) this.track(part.open?.(connection));
  }

  /** Every socket's one "disconnect" listener, called with the socket as `this`: no closure kept per connection. */
  private readonly onDisconnect = ((engine) =>
    function (this: TrussSocket, reason: string) {
      engine.closeConnection(this, reason);
    })(this);

  private closeConnection(socket: TrussSocket, reason: string): void {
    this.ctx.metrics.inc("truss_disconnects_total", { reason: disconnectReasonLabel(reason) });
    const connection = this.connections.ofSocket(socket);
    if (!connection) return;
    this.connections.delete(connection);
    for (const part of this.parts) this.track(part.close?.(connection));
  }


  /**
   * Tracks a part's background work, if it started any: logged if it fails,
   * waited for by `close()`. One `then` per piece of work (a `catch` and a
   * `finally` made four promises and two more turns, twice a connection).
   */
  private track(work: void | Promise<unknown>): void {
    if (!work) return;
    const tracked: Promise<void> = work.then(
      () => void this.pending.delete(tracked),
      (error: unknown) => {
        this.pending.delete(tracked);
        this.ctx.logger.warn("background store call failed", { error: messageOf(error) });
      },
    );
    this.pending.add(tracked);
  }

}

/** The mutation id an application event may carry in its second argument (`{ mutationId }`, sent by `@truss/client`'s outbox). */
function mutationIdOf(meta: unknown): string | undefined {
  if (meta === undefined || meta === null) return undefined;
  return requireString(meta, "mutationId", MAX_MUTATION_ID_LENGTH);
}

/**
 * Warns, at creation, of the in-memory stores of an engine given an adapter
 * (several nodes): each node keeps its own, so what one node stores the
 * others never see. Company and topic broadcasts carry their node's stream
 * epoch, which `@truss/client` on another node takes for another history
 * and drops; presence, inboxes and documents differ by node.
 */
function warnOfStoresPerNode(logger: Logger, stores: Record<string, object>): void {
  const inMemory = Object.keys(stores).filter((name) => answersInProcess(stores[name]!));
  if (inMemory.length === 0) return;
  logger.warn(
    `An adapter is set, so this engine runs as one of several nodes, but these stores are in memory, each node its own: ${inMemory.join(", ")}. ` +
      "Devices on one node miss what is stored on another (company and topic broadcasts are dropped as another history). " +
      "Give every node the same shared stores, e.g. createRealtimeEngine({ ...redisStores(redis), adapter }) or postgresStores(pool).",
    { stores: inMemory },
  );
}
