/**
 * `@truss/client`: the typed browser and Node client of the Truss real-time
 * engine, on socket.io-client. It depends on `@truss/protocol` (no
 * dependencies of its own), never on `@truss/core`, so an app installs and
 * bundles no server code.
 *
 * @module
 */
export { connect } from "./client.js";
export type { ClientEventPayload, ConnectOptions, OutboxOptions, ServerEventHandler, SyncState, TrussClient } from "./client.js";
export { indexedDbOutboxStore, localStorageOutboxStore, memoryOutboxStore } from "./outbox-stores.js";
export type { OutboxStore, PendingDocumentWrite, PendingEventWrite, PendingWrite } from "./outbox-stores.js";
export { DEFAULT_MAX_REFUSED_ATTEMPTS } from "./errors.js";
export { DEFAULT_EVENT_ACK_TIMEOUT_MS, DEFAULT_MAX_WRITE_BYTES } from "./outbox.js";
export type { OutboxClient, SettledWrite } from "./outbox.js";
export type { ConnectionOptions, ConnectionStatus, StatusChange } from "./connection.js";
export { DEFAULT_ACK_TIMEOUT_MS, DEFAULT_CALLBACK_TIMEOUT_MS } from "./connection.js";
export { Backoff, DEFAULT_RECONNECT } from "./backoff.js";
export type { ReconnectOptions } from "./backoff.js";
export { DEFAULT_DEDUP_MAX, localStorageDedupStore, memoryDedupStore } from "./dedup.js";
export type { DedupStore, KeyValueStorage } from "./dedup.js";
export { DEFAULT_POSITION_MAX, localStoragePositionStore, memoryPositionStore } from "./positions.js";
export type { PositionStore, StoredPosition } from "./positions.js";
export type { StreamResync } from "./ordered-stream.js";
export type {
  ConflictHandler,
  ConflictResolution,
  DocumentConflict,
  DocumentsClient,
  DocumentSnapshot,
  DocumentUpdateOptions,
  DocumentUpdateOutcome,
} from "./documents.js";
export type { PresenceClient } from "./presence.js";
export { PRESENCE_UPDATES_PER_SECOND } from "./scoped-presence.js";
export type { ScopePresence } from "./scoped-presence.js";
export type { DroppedSubscription } from "./subscriptions.js";
export { CLIENT_ERROR_ACTIONS, CLIENT_ERROR_CODES, errorAction, isRetryableCode, isTrussClientError, TrussClientError } from "./errors.js";
export type { ClientErrorCode, ClientOnlyErrorCode } from "./errors.js";
export { COMPANY_STREAM, ERROR_ACTIONS, ERROR_CODES, isTopicName, MAX_TOPIC_LENGTH, RESYNC_REASONS, topicStream } from "@truss/protocol";
export type {
  DocumentData,
  DocumentUpdated,
  DocumentVersion,
  ErrorAction,
  EventCatalog,
  ErrorCode,
  FieldConflict,
  InboxMessage,
  PresenceDevice,
  PresenceScope,
  PresenceUpdate,
  PresenceUser,
  ResyncReason,
  ScopedPresenceChange,
  ScopedPresenceMember,
  StreamLabel,
  StreamPosition,
} from "@truss/protocol";
