/**
 * Redis stores and Socket.IO adapter wiring for Truss: run several engine
 * nodes against one Redis (or Redis Cluster) and they share presence, inboxes,
 * documents, broadcasts and their recoverable history, and revocations.
 *
 * @packageDocumentation
 */
export { redisStores } from "./stores.js";
export type { RedisStores, RedisStoresOptions } from "./stores.js";
export { DEFAULT_PRESENCE_KEY_TTL_MS, redisPresenceStore } from "./presence.js";
export type { RedisPresenceStoreOptions } from "./presence.js";
export { redisScopedPresenceStore } from "./scoped-presence.js";
export type { RedisScopedPresenceStoreOptions } from "./scoped-presence.js";
export { redisInboxStore } from "./inbox.js";
export type { RedisInboxStoreOptions } from "./inbox.js";
export { redisDocumentStore } from "./documents.js";
export type { RedisDocumentStoreOptions } from "./documents.js";
export { redisStreamStore } from "./streams.js";
export type { RedisStreamStoreOptions } from "./streams.js";
export { redisRevocationStore } from "./revocations.js";
export type { RedisRevocationStoreOptions } from "./revocations.js";
export { redisAdapter } from "./adapter.js";
export type {
  ClassicRedisAdapterOptions,
  RedisAdapterFactory,
  RedisAdapterOptions,
  ShardedAdapterOptions,
} from "./adapter.js";
export { DEFAULT_PREFIX } from "./keys.js";
export type { RedisClient } from "./script.js";
