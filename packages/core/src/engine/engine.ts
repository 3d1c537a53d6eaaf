import { hostname } from "node:os";
import type { Server as HttpServer, IncomingMessage } from "node:http";
import type { Server as HttpsServer } from "node:https";
import { Server, type Namespace, type Socket } from "socket.io";
import type { Authenticator, Principal } from "../auth/authenticator.js";
import { jwtAuth } from "../auth/jwt.js";
import { memoryDocumentStore } from "../documents/memory.js";
import { fieldMerge } from "../documents/resolvers.js";
import type { DocumentVersion } from "../documents/store.js";
import { isTrussError, TrussError, type ErrorPayload } from "../errors.js";
import { memoryInbox } from "../inbox/memory.js";
import type { InboxMessage } from "../inbox/store.js";
import { memoryPresenceStore } from "../presence/memory.js";
import type { PresenceUser } from "../presence/store.js";
import { PROTOCOL_EVENTS, RESERVED_EVENTS, type DocumentUpdateResult } from "../protocol.js";
import { assertSamePrincipal, authenticate, authRequestFrom, connectError, expiredPayload, scheduleExpiry } from "./auth-session.js";
import { Connection } from "./connection.js";
import { companyRoom, userRoom, type EngineContext, type EngineStores } from "./context.js";
import { Dispatcher, type EventHandler } from "./dispatch.js";
import { registerProtocolHandlers } from "./protocol-handlers.js";
import { UpgradeRequests } from "./upgrade-request.js";
import { DocumentService, type DocumentUpdate } from "./documents.js";
import {
  validateWithSchema,
  type ClientEventData,
  type ClientEventName,
  type EventCatalog,
  type ServerEventData,
  type ServerEventName,
} from "./events.js";
import { checkHealth, type HealthReport } from "./health.js";
import { InboxService } from "./inbox.js";
import { isOriginAllowed, originOf, packetBytes } from "./limits.js";
import { createEngineMetrics } from "./metrics.js";
import {
  consoleLogger,
  DEFAULT_AUTH_WARN_BEFORE_MS,
  DEFAULT_LIMITS,
  DEFAULT_PRESENCE_TTL_MS,
  silentLogger,
  type RealtimeEngineOptions,
} from "./options.js";
import { PresenceService } from "./presence.js";
import { SlowConsumerGuard } from "./slow-consumers.js";

const MISSING_EXPIRY = "The token has no exp claim; a connection whose token expires needs a token that expires too. Issue tokens with exp.";

/** How long `close()` waits for running calls, then for clients to receive their goodbye, before closing transports. */
const SHUTDOWN_FLUSH_MS = 2000;

/** Emits an application event to every connected device of one company. */
export interface CompanyEmitter<C extends EventCatalog> {
  /** Live, at-most-once, like a Socket.IO room broadcast; crosses nodes through the adapter. */
  emit<E extends ServerEventName<C>>(event: E, data: ServerEventData<C, E>): void;
}

/** Sends an application event to every device of one user, durably. */
export interface UserEmitter<C extends EventCatalog> {
  /**
   * Appends to the user's inbox, then pushes to each online device. Resolves
   * once the message is stored. Rejects with `INVALID_PAYLOAD` (not JSON, or
   * nested past `limits.maxDepth`) or `PAYLOAD_TOO_LARGE` (past
   * `limits.maxUserMessageBytes`) before anything is stored, and with
   * `STORE_UNAVAILABLE` when the store did not confirm the append.
   */
  emit<E extends ServerEventName<C>>(event: E, data: ServerEventData<C, E>): Promise<InboxMessage>;
}

/** What an application event handler is given besides the payload. */
export interface HandlerContext<C extends EventCatalog> {
  /** The verified sender. */
  principal: Principal;
  /** Emits to the sender's company, except the sender's own socket (e.g. `user:typing`). */
  broadcast<E extends ServerEventName<C>>(event: E, data: ServerEventData<C, E>): void;
}

/** Handles one application client event; its return value is the ack's `result`. */
export type ClientEventHandler<C extends EventCatalog, E extends ClientEventName<C>> = (
  data: ClientEventData<C, E>,
  context: HandlerContext<C>,
) => unknown;

/** Server-side document operations, scoped to a company; the same path as the socket events. */
export interface DocumentsApi {
  /** The latest version; rejects `NOT_FOUND`. */
  get(companyId: string, type: string, id: string): Promise<DocumentVersion>;
  /** Applies an update exactly as `document:update` does, broadcasting `document:updated`. */
  update(companyId: string, type: string, id: string, update: DocumentUpdate, updatedBy?: string | null): Promise<DocumentUpdateResult>;
  /** Committed versions, newest first. */
  history(companyId: string, type: string, id: string, limit?: number): Promise<DocumentVersion[]>;
  /** Commits an earlier version's data as a new version. */
  rollback(companyId: string, type: string, id: string, toVersion: number, updatedBy?: string | null): Promise<DocumentVersion>;
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
  /** Emits to a company's room. */
  toCompany(companyId: string): CompanyEmitter<C>;
  /**
   * Sends durably to every device of one user of one company. Users are
   * scoped by company: the same user id in another company is another user.
   */
  toUser(companyId: string, userId: string): UserEmitter<C>;
  /** Registers the handler of an application client event; its schema (if any) is checked first. */
  handle<E extends ClientEventName<C>>(event: E, handler: ClientEventHandler<C, E>): this;
  /** Whether a user of a company is online on any node. */
  isOnline(companyId: string, userId: string): Promise<boolean>;
  /** The online users of a company, with their devices. */
  presence(companyId: string): Promise<PresenceUser[]>;
  /** Store reachability and connection count; `status` is `degraded` when a store is down. */
  health(): Promise<HealthReport>;
  /** Counters and gauges in the Prometheus text format. */
  metrics(): Promise<string>;
  /**
   * Tells every client `SERVER_SHUTTING_DOWN`, disconnects it, takes its
   * presence offline and stops every timer. Idempotent.
   */
  close(): Promise<void>;
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
export function createRealtimeEngine<C extends EventCatalog = EventCatalog>(options: RealtimeEngineOptions<C>): RealtimeEngine<C> {
  return new TrussEngine<C>(options);
}

class TrussEngine<C extends EventCatalog> implements RealtimeEngine<C> {
  io: Server | undefined;
  readonly documents: DocumentsApi;
  private nsp: Namespace | undefined;
  private ownsIo = false;
  private closing = false;
  private closed: Promise<void> | undefined;
  private readonly startedAt = Date.now();
  private readonly connections = new Map<string, Connection>();
  private readonly upgradeRequests = new UpgradeRequests();
  private readonly handlers = new Map<string, EventHandler>();
  private readonly pending = new Set<Promise<unknown>>();
  private readonly ctx: EngineContext;
  private readonly presenceService: PresenceService;
  private readonly inboxService: InboxService;
  private readonly documentService: DocumentService;
  private readonly allowedOrigins: ReadonlySet<string> | null;
  private readonly maxPayloadBytes: number;
  private readonly eventsPerSecond: number;
  private readonly maxDevicesPerUser: number;
  private readonly warnBeforeMs: number;
  private readonly requireExpiry: boolean;
  private readonly nodeId: string;
  private readonly authenticator: Authenticator;
  private readonly dispatcher: Dispatcher;
  private readonly slowConsumers: SlowConsumerGuard;

  constructor(private readonly options: RealtimeEngineOptions<C>) {
    if (!options?.auth) {
      throw new TypeError("createRealtimeEngine needs `auth`: an Authenticator, or jwtAuth options such as { secret, algorithms: [\"HS256\"] }.");
    }
    this.authenticator = "authenticate" in options.auth ? options.auth : jwtAuth(options.auth);
    const limits = options.limits ?? {};
    this.allowedOrigins = limits.allowedOrigins ? new Set(limits.allowedOrigins) : null;
    this.maxPayloadBytes = positive(limits.maxPayloadBytes, DEFAULT_LIMITS.maxPayloadBytes, "limits.maxPayloadBytes");
    this.eventsPerSecond = positive(limits.eventsPerSecond, DEFAULT_LIMITS.eventsPerSecond, "limits.eventsPerSecond");
    this.maxDevicesPerUser = positive(limits.maxDevicesPerUser, DEFAULT_LIMITS.maxDevicesPerUser, "limits.maxDevicesPerUser");
    const maxDepth = positive(limits.maxDepth, DEFAULT_LIMITS.maxDepth, "limits.maxDepth");
    this.warnBeforeMs = options.authExpiry?.warnBeforeMs ?? DEFAULT_AUTH_WARN_BEFORE_MS;
    this.requireExpiry = options.authExpiry?.requireExpiry === true;
    this.nodeId = options.nodeId ?? `${hostname()}:${process.pid}`;
    const ttlMs = positive(options.presenceTiming?.ttlMs, DEFAULT_PRESENCE_TTL_MS, "presenceTiming.ttlMs");

    const stores: EngineStores = {
      presence: options.presence ?? memoryPresenceStore(),
      inbox: options.inbox ?? memoryInbox(),
      documents: options.documents ?? memoryDocumentStore(),
    };
    const metrics = createEngineMetrics(() => this.connections.size);
    this.ctx = {
      namespace: () => {
        if (!this.nsp) throw new Error("The engine is not attached yet: call engine.attach(httpServer) or engine.bind(io) first.");
        return this.nsp;
      },
      stores,
      resolver: options.resolver ?? fieldMerge(),
      metrics,
      logger: options.logger === false ? silentLogger : (options.logger ?? consoleLogger),
    };
    this.presenceService = new PresenceService(
      this.ctx,
      ttlMs,
      options.presenceTiming?.heartbeatIntervalMs ?? Math.max(100, Math.floor(ttlMs / 3)),
      options.presenceTiming?.sweepIntervalMs ?? Math.max(100, Math.floor(ttlMs / 2)),
    );
    this.inboxService = new InboxService(this.ctx, {
      maxDepth,
      maxMessageBytes: positive(limits.maxUserMessageBytes, DEFAULT_LIMITS.maxUserMessageBytes, "limits.maxUserMessageBytes"),
    });
    this.documentService = new DocumentService(this.ctx, {
      maxDepth,
      maxDocumentBytes: positive(limits.maxDocumentBytes, DEFAULT_LIMITS.maxDocumentBytes, "limits.maxDocumentBytes"),
    });
    this.documents = this.createDocumentsApi();
    this.dispatcher = new Dispatcher(this.ctx, this.handlers, { maxPayloadBytes: this.maxPayloadBytes, maxDepth });
    this.slowConsumers = new SlowConsumerGuard(
      this.ctx,
      positive(limits.maxBufferedBytes, DEFAULT_LIMITS.maxBufferedBytes, "limits.maxBufferedBytes"),
      () => this.connections.values(),
    );
    registerProtocolHandlers(this.handlers, {
      refreshAuth: (connection, token) => this.refreshAuth(connection, token),
      presence: this.presenceService,
      inbox: this.inboxService,
      documents: this.documentService,
    });
  }

  attach(server: HttpServer | HttpsServer): Server {
    const { socketIo = {} } = this.options;
    const io = new Server(server, {
      serveClient: false,
      ...socketIo,
      // Past this the transport drops the connection before buffering the frame;
      // below it, oversized events get a PAYLOAD_TOO_LARGE answer instead.
      maxHttpBufferSize: Math.max(this.maxPayloadBytes * 4, 1024 * 1024),
      ...(this.allowedOrigins && !socketIo.cors ? { cors: { origin: [...this.allowedOrigins], credentials: true } } : {}),
      ...(this.options.adapter ? { adapter: this.options.adapter } : {}),
    });
    this.ownsIo = true;
    this.bind(io);
    return io;
  }

  bind(io: Server): void {
    if (this.nsp) throw new Error("This engine is already attached; create one engine per Socket.IO server.");
    this.io = io;
    this.nsp = io.of(this.options.namespace ?? "/");
    this.guardOrigins(io);
    this.upgradeRequests.track(io);
    this.nsp.use((socket, next) => void this.admit(socket).then(() => next(), next));
    this.nsp.on("connection", (socket) => this.onConnection(socket));
    this.inboxService.bindNamespace();
    this.presenceService.start();
    this.slowConsumers.start();
  }

  toCompany(companyId: string): CompanyEmitter<C> {
    return {
      emit: (event, data) => {
        assertApplicationEvent(event);
        this.ctx.namespace().to(companyRoom(companyId)).emit(event, data);
        this.ctx.metrics.inc("truss_broadcasts_total", { scope: "company" });
      },
    };
  }

  toUser(companyId: string, userId: string): UserEmitter<C> {
    if (typeof companyId !== "string" || typeof userId !== "string") {
      throw new TypeError("toUser(companyId, userId) takes the user's company id and user id: users are scoped by company.");
    }
    return {
      emit: async (event, data) => {
        assertApplicationEvent(event);
        const message = await this.inboxService.send({ companyId, userId }, event, data);
        this.ctx.metrics.inc("truss_broadcasts_total", { scope: "user" });
        return message;
      },
    };
  }

  handle<E extends ClientEventName<C>>(event: E, handler: ClientEventHandler<C, E>): this {
    assertApplicationEvent(event);
    const catalog = this.options.events;
    const schema = catalog?.client[event];
    if (catalog && !schema) {
      throw new TypeError(`"${event}" is not in the event catalog's client events; add it with its schema.`);
    }
    this.handlers.set(event, async (connection, payload) => {
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
          broadcast: (name, body) => {
            assertApplicationEvent(name);
            socket.to(companyRoom(principal.companyId)).emit(name, body);
          },
        });
        return result === undefined ? {} : { result };
      } catch (error) {
        if (isTrussError(error)) throw error;
        this.ctx.logger.error(`handler for "${event}" threw`, { error: error instanceof Error ? error.stack : String(error) });
        throw new TrussError("HANDLER_ERROR", `"${event}" could not be handled; the server logged why.`, { cause: error });
      }
    });
    return this;
  }

  isOnline(companyId: string, userId: string): Promise<boolean> {
    return this.presenceService.isOnline(companyId, userId);
  }

  presence(companyId: string): Promise<PresenceUser[]> {
    return this.presenceService.list(companyId);
  }

  health(): Promise<HealthReport> {
    return checkHealth(this.ctx.stores, {
      nodeId: this.nodeId,
      connections: this.connections.size,
      uptimeMs: Date.now() - this.startedAt,
      closing: this.closing,
    });
  }

  async metrics(): Promise<string> {
    let dropped: { expired: number; overCap: number } | null = null;
    try {
      dropped = await this.ctx.stores.inbox.dropped();
    } catch {
      // The inbox is down; the store error counter already says so.
    }
    return this.ctx.metrics.render(
      dropped
        ? [
            {
              name: "truss_inbox_dropped_total",
              help: "Inbox messages dropped unread, by reason (TTL or length cap), across all nodes sharing the store.",
              type: "counter",
              values: [
                [{ reason: "expired" }, dropped.expired],
                [{ reason: "over_cap" }, dropped.overCap],
              ],
            },
          ]
        : [],
    );
  }

  close(): Promise<void> {
    this.closed ??= this.shutdown();
    return this.closed;
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    this.presenceService.stop();
    this.slowConsumers.stop();
    // Calls already running get their answer (or SERVER_SHUTTING_DOWN) before their socket goes.
    await this.dispatcher.drain(SHUTDOWN_FLUSH_MS);
    const goodbye: ErrorPayload = { code: "SERVER_SHUTTING_DOWN", message: "The server is shutting down; reconnect shortly." };
    const transports = [...this.connections.values()].map((connection) => connection.socket.conn);
    for (const connection of this.connections.values()) {
      connection.clearTimers();
      connection.socket.emit(PROTOCOL_EVENTS.error, goodbye);
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

  /** Handshake: origin, then credential. Failures become a coded `connect_error`. */
  private async admit(socket: Socket): Promise<void> {
    if (this.closing) {
      throw connectError({ code: "SERVER_SHUTTING_DOWN", message: "The server is shutting down; reconnect shortly." });
    }
    if (!isOriginAllowed(originOf(socket.handshake), this.allowedOrigins)) {
      this.ctx.metrics.inc("truss_auth_failures_total", { code: "ORIGIN_NOT_ALLOWED" });
      throw connectError(originRefusal(originOf(socket.handshake)));
    }
    try {
      const principal = await authenticate(this.authenticator, authRequestFrom(socket.handshake));
      if (principal.expiresAt !== null && principal.expiresAt <= Date.now()) throw new TrussError("AUTH_TOKEN_EXPIRED", expiredPayload(principal.expiresAt).message);
      if (principal.expiresAt === null && this.requireExpiry) throw new TrussError("AUTH_MISSING_CLAIMS", MISSING_EXPIRY);
      if (!(await this.presenceService.admitsDevice(principal, this.maxDevicesPerUser))) {
        throw new TrussError("TOO_MANY_DEVICES", tooManyDevices(this.maxDevicesPerUser).message);
      }
      socket.data.principal = principal;
    } catch (error) {
      const payload = isTrussError(error) ? error.toJSON() : { code: "AUTH_INVALID_TOKEN" as const, message: "The token could not be verified." };
      this.ctx.metrics.inc("truss_auth_failures_total", { code: payload.code });
      throw connectError(payload);
    }
  }

  private onConnection(socket: Socket): void {
    const principal = socket.data.principal as Principal;
    this.upgradeRequests.release(socket);
    if (!this.presenceService.admitsDeviceLocally(principal, this.maxDevicesPerUser)) {
      this.ctx.metrics.inc("truss_auth_failures_total", { code: "TOO_MANY_DEVICES" });
      socket.emit(PROTOCOL_EVENTS.error, tooManyDevices(this.maxDevicesPerUser));
      socket.disconnect(true);
      return;
    }
    const connection = new Connection(socket, principal, this.eventsPerSecond);
    this.connections.set(socket.id, connection);
    this.ctx.metrics.inc("truss_connections_total");
    socket.join([companyRoom(principal.companyId), userRoom(principal.companyId, principal.userId)]);
    socket.conn.on("packet", (packet: { type: string; data?: unknown }) => {
      if (packet.type === "message") connection.lastPacketBytes = packetBytes(packet.data);
    });
    socket.use((packet) => this.dispatcher.dispatch(connection, packet));
    scheduleExpiry(connection, this.warnBeforeMs, () => this.expire(connection));
    socket.on("disconnect", () => {
      connection.clearTimers();
      this.connections.delete(socket.id);
      this.inboxService.disconnected(socket);
      this.track(this.presenceService.disconnected(connection.principal));
    });
    this.track(this.presenceService.connected(principal));
    this.track(this.inboxService.connected(socket, principal));
  }

  private expire(connection: Connection): void {
    const { expiresAt } = connection.principal;
    if (expiresAt === null || expiresAt > Date.now()) return;
    this.ctx.metrics.inc("truss_auth_expired_total");
    connection.socket.emit(PROTOCOL_EVENTS.error, expiredPayload(expiresAt));
    connection.socket.disconnect(true);
  }

  private track(promise: Promise<unknown>): void {
    const tracked = promise.catch((error: unknown) =>
      this.ctx.logger.warn("background store call failed", { error: error instanceof Error ? error.message : String(error) }),
    );
    this.pending.add(tracked);
    void tracked.finally(() => this.pending.delete(tracked));
  }

  /** Refuses foreign Origins at the Engine.IO level, for the polling and the WebSocket handshake. */
  private guardOrigins(io: Server): void {
    const engine = io.engine as { opts: { allowRequest?: (req: IncomingMessage, fn: (err: string | null | undefined, ok: boolean) => void) => void } } | undefined;
    if (!engine || !this.allowedOrigins) return;
    // allowRequest runs for handshakes only; polling requests and the WebSocket
    // upgrade of an existing session (with a `sid`) are checked here.
    (engine as { use?: (middleware: (req: IncomingMessage, res: unknown, next: (error?: Error) => void) => void) => void }).use?.(
      (request, _response, next) => {
        if (!request.url?.includes("sid=") || isOriginAllowed(originOf(request), this.allowedOrigins)) return next();
        this.ctx.metrics.inc("truss_auth_failures_total", { code: "ORIGIN_NOT_ALLOWED" });
        next(new Error(originRefusal(originOf(request)).message));
      },
    );
    const previous = engine.opts.allowRequest;
    engine.opts.allowRequest = (request, callback) => {
      const origin = originOf(request);
      if (!isOriginAllowed(origin, this.allowedOrigins)) {
        this.ctx.metrics.inc("truss_auth_failures_total", { code: "ORIGIN_NOT_ALLOWED" });
        return callback(JSON.stringify(originRefusal(origin)), false);
      }
      if (previous) previous(request, callback);
      else callback(null, true);
    };
  }

  /** Verifies a fresh token for a live connection and re-arms its expiry. */
  private async refreshAuth(connection: Connection, token: string): Promise<{ expiresAt: number | null }> {
    const next = await authenticate(this.authenticator, { ...authRequestFrom(connection.socket.handshake), token });
    assertSamePrincipal(connection.principal, next);
    if (next.expiresAt === null && (this.requireExpiry || connection.principal.expiresAt !== null)) {
      throw new TrussError("AUTH_MISSING_CLAIMS", MISSING_EXPIRY);
    }
    connection.principal = { ...next, deviceId: connection.principal.deviceId };
    connection.socket.data.principal = connection.principal;
    scheduleExpiry(connection, this.warnBeforeMs, () => this.expire(connection));
    this.ctx.metrics.inc("truss_auth_refreshed_total");
    return { expiresAt: next.expiresAt };
  }

  private createDocumentsApi(): DocumentsApi {
    const service = this.documentService;
    return {
      get: (companyId, type, id) => service.get({ companyId, type, id }),
      update: (companyId, type, id, update, updatedBy = null) => service.update({ companyId, type, id }, update, { userId: updatedBy }),
      history: (companyId, type, id, limit) => service.history({ companyId, type, id }, limit),
      rollback: (companyId, type, id, toVersion, updatedBy = null) =>
        service.rollback({ companyId, type, id }, toVersion, { userId: updatedBy }),
    };
  }
}

function assertApplicationEvent(event: string): void {
  if (RESERVED_EVENTS.has(event)) throw new TypeError(`"${event}" is a Truss protocol event and cannot be emitted by the application.`);
}

function tooManyDevices(max: number): ErrorPayload {
  return { code: "TOO_MANY_DEVICES", message: `This user already has ${max} devices connected; disconnect one, or raise limits.maxDevicesPerUser.` };
}

function originRefusal(origin: string | undefined): ErrorPayload {
  return { code: "ORIGIN_NOT_ALLOWED", message: `Origin ${origin ?? "(none)"} may not connect; add it to limits.allowedOrigins.` };
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!(typeof value === "number" && value > 0)) throw new TypeError(`${name} must be a positive number; got ${String(value)}.`);
  return value;
}
