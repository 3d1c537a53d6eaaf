import type { ServerOptions } from "socket.io";
import type { Authenticator } from "../auth/authenticator.js";
import type { JwtAuthOptions } from "../auth/jwt.js";
import type { ConflictResolver } from "../documents/resolver.js";
import type { DocumentStore } from "../documents/store.js";
import type { Inbox } from "../inbox/store.js";
import type { PresenceStore } from "../presence/store.js";
import type { EventCatalog } from "./events.js";

/** What the engine writes to its log; `console` fits. */
export interface Logger {
  /** Something went wrong but the engine carries on (a store call failed, a handler threw). */
  warn(message: string, context?: Record<string, unknown>): void;
  /** Something went wrong that an operator should look at. */
  error(message: string, context?: Record<string, unknown>): void;
}

/** Protective limits applied to every connection. */
export interface LimitOptions {
  /**
   * Origins allowed to open a connection (`https://erp.example.com`), checked
   * for the polling and the WebSocket handshake alike. Requests without an
   * Origin header (servers, native apps) are allowed. Default: any origin.
   */
  allowedOrigins?: readonly string[];
  /**
   * Largest client event, in bytes of its encoded packet. A larger event is
   * refused with `PAYLOAD_TOO_LARGE` and the connection stays up; anything
   * past four times this (at least 1 MiB) closes the connection before it
   * is buffered. Default 64 KiB.
   */
  maxPayloadBytes?: number;
  /** Events a socket may send per second (a token bucket of that size). Default 50. */
  eventsPerSecond?: number;
}

/** Presence timing. */
export interface PresenceOptions {
  /** How long a device stays online without a heartbeat, in ms. Default 30 s. */
  ttlMs?: number;
  /** How often this node heartbeats its devices, in ms. Default a third of the TTL. */
  heartbeatIntervalMs?: number;
  /** How often this node sweeps expired devices (other nodes' crashed users). Default half the TTL. */
  sweepIntervalMs?: number;
}

/** Token-expiry behaviour on live connections. */
export interface AuthExpiryOptions {
  /** How long before expiry `auth:expiring` is sent, in ms. Default 60 s. */
  warnBeforeMs?: number;
}

/** Everything `createRealtimeEngine` accepts. Only `auth` is required. */
export interface RealtimeEngineOptions<TCatalog extends EventCatalog = EventCatalog> {
  /**
   * Proves who connects: the application's own {@link Authenticator}, or
   * `jwtAuth` options (`{ secret, algorithms: ["HS256"], issuer }`), which the
   * engine turns into `jwtAuth(options)`.
   */
  auth: Authenticator | JwtAuthOptions;
  /** Presence store; default in-memory (one process). */
  presence?: PresenceStore;
  /** User inbox; default in-memory (one process). */
  inbox?: Inbox;
  /** Document store; default in-memory (one process). */
  documents?: DocumentStore;
  /** Decides stale-base document updates. Default `fieldMerge()`. */
  resolver?: ConflictResolver;
  /** A Socket.IO adapter constructor (e.g. `redisAdapter(pub, sub)` from `@truss/redis`) for several nodes. */
  adapter?: ServerOptions["adapter"];
  /** Protective limits. */
  limits?: LimitOptions;
  /** Presence timing. */
  presenceTiming?: PresenceOptions;
  /** Token-expiry behaviour. */
  authExpiry?: AuthExpiryOptions;
  /** The application's typed, schema-validated events. */
  events?: TCatalog;
  /** The Socket.IO namespace Truss serves. Default `/`. */
  namespace?: string;
  /** Extra Socket.IO server options for `attach` (path, transports, cors…). */
  socketIo?: Partial<ServerOptions>;
  /** Where warnings and errors go. Default `console`; `false` silences them. */
  logger?: Logger | false;
  /** This node's name in logs and health. Default `<hostname>:<pid>`. */
  nodeId?: string;
}

/** Default limits. */
export const DEFAULT_LIMITS = {
  maxPayloadBytes: 64 * 1024,
  eventsPerSecond: 50,
} as const;

/** Default presence TTL. */
export const DEFAULT_PRESENCE_TTL_MS = 30_000;
/** Default warning lead before a token expires. */
export const DEFAULT_AUTH_WARN_BEFORE_MS = 60_000;

/** A logger that drops everything. */
export const silentLogger: Logger = { warn() {}, error() {} };

/** The default logger: `console`, prefixed. */
export const consoleLogger: Logger = {
  warn: (message, context) => console.warn(`[truss] ${message}`, context ?? ""),
  error: (message, context) => console.error(`[truss] ${message}`, context ?? ""),
};
