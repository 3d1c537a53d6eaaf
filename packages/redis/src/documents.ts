import {
  DEFAULT_DOCUMENT_HISTORY,
  type DocumentKey,
  type DocumentStore,
  type DocumentStoreOptions,
  type DocumentVersion,
} from "@truss/core";
import { checkPrefix, DEFAULT_PREFIX, documentKeys } from "./keys.js";
import { luaScript, runScript, type RedisClient } from "./script.js";

/** Options of {@link redisDocumentStore}. */
export interface RedisDocumentStoreOptions extends DocumentStoreOptions {
  /** The ioredis client (or Cluster). See the README for the recommended options. */
  redis: RedisClient;
  /** Prefix of every key. Default `"truss"`. */
  prefix?: string;
  /** Clock in epoch ms for `updatedAt`, for tests. Default `Date.now`. */
  now?: () => number;
}

// KEYS: latest, history. ARGV: expectedVersion, nextVersion, document JSON, maxHistory.
// The version check, the write and the history push are one script, so two
// writers expecting the same version can never both commit. The document JSON
// is built by the caller, so the script needs no JSON library.
// Returns { 1 } when committed, { 0, current JSON or '' } when not.
const COMPARE_AND_SET = luaScript(`
local current = redis.call('HGET', KEYS[1], 'version')
if tonumber(current or '0') ~= tonumber(ARGV[1]) then
  return { 0, redis.call('HGET', KEYS[1], 'document') or '' }
end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'document', ARGV[3])
redis.call('LPUSH', KEYS[2], ARGV[3])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1)
return { 1 }
`);

// KEYS: latest, history. ARGV: version.
// History is newest first with no gaps, so version v sits at (latest - v).
// Returns the JSON, or '' when the version was never committed or is trimmed.
const GET_VERSION = luaScript(`
local latest = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
local offset = latest - tonumber(ARGV[1])
if tonumber(ARGV[1]) < 1 or offset < 0 then return '' end
return redis.call('LINDEX', KEYS[2], offset) or ''
`);

/**
 * A {@link DocumentStore} on Redis. Each document is a hash with its latest
 * version and a list of committed versions, newest first, trimmed to
 * `maxHistory`; both share the hash tag `{<prefix>:doc:<company>:<type>:<id>}`,
 * so the compare-and-set script runs unchanged on Redis Cluster. Data is
 * stored as JSON, so what callers pass in or get back is always a copy.
 *
 * @throws RangeError when `maxHistory` is not a positive integer.
 */
export function redisDocumentStore(options: RedisDocumentStoreOptions): DocumentStore {
  const { redis } = options;
  const prefix = checkPrefix(options.prefix ?? DEFAULT_PREFIX);
  const maxHistory = options.maxHistory ?? DEFAULT_DOCUMENT_HISTORY;
  const now = options.now ?? Date.now;
  if (!(Number.isInteger(maxHistory) && maxHistory > 0)) {
    throw new RangeError(`redisDocumentStore: maxHistory must be a positive integer, got ${maxHistory}`);
  }
  const keysOf = (key: DocumentKey) => {
    const keys = documentKeys(prefix, key);
    return [keys.latest, keys.history];
  };

  return {
    async get(key) {
      return parseVersion(await redis.hget(documentKeys(prefix, key).latest, "document"));
    },

    async getVersion(key, version) {
      if (!Number.isInteger(version)) return null;
      const found = parseVersion(String(await runScript(redis, GET_VERSION, keysOf(key), [version])));
      // The history has no gaps by construction; checking costs nothing and
      // keeps a hand-edited key from answering for the wrong version.
      return found?.version === version ? found : null;
    },

    async compareAndSet(key, expectedVersion, data, updatedBy) {
      const document: DocumentVersion = {
        type: key.type,
        id: key.id,
        version: expectedVersion + 1,
        data,
        updatedAt: now(),
        updatedBy,
      };
      const json = JSON.stringify(document);
      const [committed, current] = (await runScript(redis, COMPARE_AND_SET, keysOf(key), [
        expectedVersion,
        document.version,
        json,
        maxHistory,
      ])) as [number, string?];
      if (Number(committed) === 1) return { ok: true, document: JSON.parse(json) as DocumentVersion };
      return { ok: false, current: parseVersion(current ?? "") };
    },

    async history(key, limit) {
      if (limit <= 0) return [];
      const entries = await redis.lrange(documentKeys(prefix, key).history, 0, Math.floor(limit) - 1);
      return entries.map((entry) => JSON.parse(entry) as DocumentVersion);
    },

    async ping() {
      await redis.ping();
    },
  };
}

function parseVersion(json: string | null): DocumentVersion | null {
  return json ? (JSON.parse(json) as DocumentVersion) : null;
}
