import {
  DEFAULT_DOCUMENT_HISTORY,
  DEFAULT_DOCUMENT_HISTORY_BYTES,
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

// KEYS: latest, history, historyBytes.
// ARGV: expectedVersion, nextVersion, document JSON, maxHistory, data bytes, maxHistoryBytes.
// The version check, the write and the history push and trim are one script,
// so two writers expecting the same version can never both commit. The
// document JSON and its data's size are computed by the caller, so the script
// needs no JSON library and reads only the sizes, never the history itself.
// The trim keeps the newest versions whose sizes add up to maxHistoryBytes,
// at most maxHistory of them, and always the one just written.
// Returns { 1 } when committed, { 0, current JSON or '' } when not.
const COMPARE_AND_SET = luaScript(`
local current = redis.call('HGET', KEYS[1], 'version')
if tonumber(current or '0') ~= tonumber(ARGV[1]) then
  return { 0, redis.call('HGET', KEYS[1], 'document') or '' }
end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'document', ARGV[3])
if redis.call('LLEN', KEYS[3]) ~= redis.call('LLEN', KEYS[2]) then
  -- A history written before sizes were kept: its entries count whole.
  redis.call('DEL', KEYS[3])
  local entries = redis.call('LRANGE', KEYS[2], 0, -1)
  for i = 1, #entries do redis.call('RPUSH', KEYS[3], tostring(#entries[i])) end
end
redis.call('LPUSH', KEYS[2], ARGV[3])
redis.call('LPUSH', KEYS[3], ARGV[5])
local sizes = redis.call('LRANGE', KEYS[3], 0, tonumber(ARGV[4]) - 1)
local maxBytes = tonumber(ARGV[6])
local kept, bytes = 1, tonumber(sizes[1])
while kept < #sizes and bytes + tonumber(sizes[kept + 1]) <= maxBytes do
  kept = kept + 1
  bytes = bytes + tonumber(sizes[kept])
end
redis.call('LTRIM', KEYS[2], 0, kept - 1)
redis.call('LTRIM', KEYS[3], 0, kept - 1)
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
 * `maxHistory` versions and `maxHistoryBytes` bytes, with a list of their
 * sizes beside it; all share the hash tag `{<prefix>:doc:<company>:<type>:<id>}`,
 * so the compare-and-set script runs unchanged on Redis Cluster. Data is
 * stored as JSON, so what callers pass in or get back is always a copy.
 *
 * A version's size is the UTF-8 length of its `data` as JSON, exactly as the
 * in-memory store counts it; the metadata stored beside the data (type, id,
 * version, `updatedAt`, `updatedBy`) is not counted. Versions committed before
 * sizes were kept count whole, metadata included.
 *
 * @throws RangeError when `maxHistory` or `maxHistoryBytes` is not a positive integer.
 * @throws TypeError from `compareAndSet` when the data is not a JSON object; nothing is written.
 */
export function redisDocumentStore(options: RedisDocumentStoreOptions): DocumentStore {
  const { redis } = options;
  const prefix = checkPrefix(options.prefix ?? DEFAULT_PREFIX);
  const maxHistory = options.maxHistory ?? DEFAULT_DOCUMENT_HISTORY;
  const maxHistoryBytes = options.maxHistoryBytes ?? DEFAULT_DOCUMENT_HISTORY_BYTES;
  const now = options.now ?? Date.now;
  if (!(Number.isInteger(maxHistory) && maxHistory > 0)) {
    throw new RangeError(`redisDocumentStore: maxHistory must be a positive integer, got ${maxHistory}`);
  }
  if (!(Number.isInteger(maxHistoryBytes) && maxHistoryBytes > 0)) {
    throw new RangeError(`redisDocumentStore: maxHistoryBytes must be a positive integer, got ${maxHistoryBytes}`);
  }
  const keysOf = (key: DocumentKey) => {
    const keys = documentKeys(prefix, key);
    return [keys.latest, keys.history, keys.historyBytes];
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
      const dataJson = JSON.stringify(data) as string | undefined;
      if (typeof dataJson !== "string" || dataJson[0] !== "{") {
        throw new TypeError("redisDocumentStore: document data must be a JSON object");
      }
      const version = expectedVersion + 1;
      const json = versionJson(key, version, dataJson, now(), updatedBy);
      const [committed, current] = (await runScript(redis, COMPARE_AND_SET, keysOf(key), [
        expectedVersion,
        version,
        json,
        maxHistory,
        Buffer.byteLength(dataJson),
        maxHistoryBytes,
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

/**
 * The version as `JSON.stringify` would write it, with the data spliced in
 * already serialised, so the data is serialised once for both text and size.
 */
function versionJson(key: DocumentKey, version: number, dataJson: string, updatedAt: number, updatedBy: string | null): string {
  const head = JSON.stringify({ type: key.type, id: key.id, version });
  const tail = JSON.stringify({ updatedAt, updatedBy });
  return `${head.slice(0, -1)},"data":${dataJson},${tail.slice(1)}`;
}

function parseVersion(json: string | null): DocumentVersion | null {
  return json ? (JSON.parse(json) as DocumentVersion) : null;
}
