/**
 * The Truss server: `createRealtimeEngine`, the store contracts with their
 * in-memory stores, JWT auth, the conflict resolvers and every default in
 * {@link DEFAULTS}. The wire protocol (payload types such as `InboxMessage`
 * or `DocumentUpdateResult`, `ERROR_CODES`, `defineEvents`) comes from
 * `@truss/protocol`, a dependency of this package.
 *
 * @module
 */
export { isTrussError, TrussError } from "./kernel/errors.js";
export type { Authenticator, AuthRequest } from "./auth/authenticator.js";
export type { Principal } from "./kernel/principal.js";
export type {
  DeviceRef,
  PresenceStore,
  PresenceTransition,
} from "./presence/store.js";
export type {
  InboxAppendOptions,
  InboxAppendResult,
  InboxDropStats,
  InboxOptions,
  InboxStore,
  UndeliveredClaim,
  UndeliveredOutcome,
  UserKey,
} from "./inbox/store.js";
export { hasUndeliveredCalls, INBOX_IDEMPOTENCY_KEYS_PER_MESSAGE, undeliveredAfterMsOf } from "./inbox/store.js";
export type { UndeliveredCall, UndeliveredChoice, UndeliveredHandler, UndeliveredOptions } from "./undelivered/options.js";
export { idempotencyKeyOf, isIdempotencyKey, MAX_IDEMPOTENCY_KEY_LENGTH } from "./kernel/idempotency.js";
export type {
  CompareAndSetResult,
  DocumentKey,
  DocumentStore,
  DocumentStoreOptions,
  MutationRef,
  MutationState,
  ResolvedDocumentStoreOptions,
} from "./documents/store.js";
export {
  MUTATION_HORIZONS_PER_WRITER,
  mutationMayBeForgotten,
  resolveDocumentStoreOptions,
} from "./documents/store.js";
export type {
  StreamAppendOptions,
  StreamAppendResult,
  StreamEntry,
  StreamGapReason,
  StreamKey,
  StreamRead,
  StreamStore,
  StreamStoreOptions,
  StreamTrimStats,
} from "./streams/store.js";
export { resolveStreamStoreOptions, STREAM_IDEMPOTENCY_KEYS_PER_ENTRY } from "./streams/store.js";
export type { ConflictResolver, Resolution, ResolveInput } from "./documents/conflict-resolver.js";
export { snapshotJson } from "./kernel/payload.js";
export { memoryPresenceStore } from "./presence/memory.js";
export type { PresenceScope, ScopedPresenceEntry, ScopedPresenceListing, ScopedPresenceMember, ScopedPresenceStore } from "./scoped-presence/store.js";
export { compareMembers, scopeKey, scopeOfKey } from "./scoped-presence/store.js";
export { memoryScopedPresenceStore } from "./scoped-presence/memory.js";
export type { ScopedPresenceLimits, ScopePresenceApi } from "./scoped-presence/service.js";
export { memoryInboxStore } from "./inbox/memory.js";
export type { MemoryInboxStoreOptions } from "./inbox/memory.js";
export { memoryDocumentStore } from "./documents/memory.js";
export type { MemoryDocumentStoreOptions } from "./documents/memory.js";
export { memoryStreamStore } from "./streams/memory.js";
export type { MemoryStreamStoreOptions } from "./streams/memory.js";
export type { DisconnectRevocation, RevocationPage, RevocationRecord, RevocationStore, UnsubscribeRevocation } from "./revocations/store.js";
export { isRevocationRecord, revocationSlot } from "./revocations/store.js";
export { memoryRevocationStore } from "./revocations/memory.js";
export type { MemoryRevocationStoreOptions } from "./revocations/memory.js";
export { fieldMerge, lastWriteWins, rejectOnConflict } from "./documents/resolvers.js";
export { jwtAuth } from "./auth/jwt.js";
export type { JwtAlgorithm, JwtAuthOptions, JwtClaimMapper, JwtClaimNames, JwtClaims } from "./auth/jwt.js";
export { createRealtimeEngine } from "./engine/engine.js";
export { DEFAULTS } from "./defaults.js";
export { ADAPTER_RESUBSCRIBED_EVENT } from "./kernel/context.js";
export type { DocumentsApi } from "./documents/service.js";
export type { InboxSendOptions } from "./inbox/service.js";
export type { BroadcastSendOptions } from "./streams/service.js";
export type {
  ClientEventHandler,
  CompanyEmitter,
  HandlerContext,
  BroadcastEmitter,
  PresenceApi,
  RealtimeEngine,
  TopicEmitter,
  UserEmitter,
} from "./engine/api.js";
export type {
  AuthorizationRefusal,
  AuthorizationRequest,
  AuthorizationResult,
  AuthorizePolicy,
  DocumentRequest,
  EventRequest,
  PresenceRequest,
  TopicSubscribeRequest,
} from "./policy/policy.js";
export type { TopicOptions, TopicParamNames, TopicParams, TopicPatternDeclaration } from "./topics/patterns.js";
export type { DisconnectCode, DisconnectReason, RevocationResult } from "./revocations/service.js";
export type { DocumentUpdate } from "./documents/service.js";
export type { HealthReport, StoreHealth } from "./engine/health.js";
export type { MetricsOptions } from "./kernel/metrics.js";
export type { EngineStores } from "./engine/options.js";
export type { PresenceTimingOptions } from "./presence/service.js";
export type { Logger } from "./kernel/logger.js";
export type {
  AuthExpiryOptions,
  LimitOptions,
  RealtimeEngineOptions,
  RecoveryOptions,
  RevocationTimingOptions,
} from "./engine/options.js";
export { relay } from "./outbox/relay.js";
export type { OutboxRelay, OutboxRelayOptions, OutboxRelayStats } from "./outbox/relay.js";
export type { OutboxBatch, OutboxFailure, OutboxOutcome, OutboxRow, OutboxSource, OutboxTarget } from "./outbox/source.js";
export { outboxEntry, outboxStream } from "./outbox/entry.js";
export type { OutboxEmitOptions, OutboxEntry, OutboxLimits, OutboxUserEmitOptions } from "./outbox/entry.js";
