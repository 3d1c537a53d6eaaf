import {
  mutationMayBeForgotten,
  resolveDocumentStoreOptions,
  type CompareAndSetResult,
  type DocumentKey,
  type DocumentStore,
  type DocumentStoreOptions,
  snapshotJson,
} from "@truss/core";
import type { DocumentVersion } from "@truss/protocol";
import { checkPrefix, DEFAULT_PREFIX, documentKeys } from "./keys.js";
import { luaScript, runScript, type RedisClient } from "./script.js";

/** Options of {@link redisDocumentStore}. */
export interface RedisDocumentStoreOptions extends DocumentStoreOptions {
  /** The ioredis client (or Cluster). See the README for the recommended options. */
  redis: RedisClient;
  /** Prefix of every key. Default `"truss"`. */
  prefix?: string;
  /** Clock in epoch ms for `updatedAt` and for mutation record times and their TTL, for tests. Default `Date.now`. */
  now?: () => number;
}

// KEYS: latest, history, historyBytes, mutations, mutationTimes, mutationLog,
// mutationWriters, mutationHorizons (only the first three without a mutation id).
// ARGV: expectedVersion, nextVersion, document JSON, maxHistory, data bytes,
// maxHistoryBytes, mutation id ('' = none), madeAt, now, TTL cut-off (now -
// mutationTtlMs), maxMutations, the record's log member after the writer's
// tag ('<recorded at, 16 digits>:<version, 16 digits>:<id>'),
// maxMutationWriters, the number of horizons kept, writer.
// The mutation check, the version check, the write, the history push and
// trim and the mutation's record are one script, so two writers expecting the
// same version, or carrying the same mutation, can never both commit. The
// document JSON, its data's size and the cut-off are computed by the caller,
// so the script needs no JSON library and reads only the sizes, never the
// history itself. The trim keeps the newest versions whose sizes add up to
// maxHistoryBytes, at most maxHistory of them, and always the one just written.
// A commit with a mutation records it under its writer, then forgets, as
// DocumentStore.compareAndSet says: the writer's records past the TTL and
// its cap (raising its horizon), writers idle past the TTL or past
// maxMutationWriters (leaving their horizon), horizons past the TTL or past
// their cap (raising the document's `forgotten`). Each step forgets at most
// 1,000 records per commit, so a lowered cap is reached over a few commits.
// Returns { 1 } when committed; { 0, current JSON or '' } on another version;
// { 2, current, version } when the mutation committed that version before;
// { 3, current } when it is too old to tell.
const COMPARE_AND_SET = luaScript(`
local mutation, writer = ARGV[7], ARGV[15]
local function horizonOf(name)
  return math.max(tonumber(redis.call('HGET', KEYS[1], 'forgotten') or '0'), tonumber(redis.call('ZSCORE', KEYS[8], name) or '0'))
end
if mutation ~= '' then
  local committed = redis.call('HGET', KEYS[4], mutation)
  if committed then
    return { 2, redis.call('HGET', KEYS[1], 'document') or '', committed }
  end
  local madeAt = tonumber(ARGV[8])
  if madeAt <= horizonOf(writer) or madeAt < tonumber(ARGV[10]) then
    return { 3, redis.call('HGET', KEYS[1], 'document') or '' }
  end
end
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
if mutation == '' then return { 1 } end

local now, cutoff = tonumber(ARGV[9]), tonumber(ARGV[10])
local function raise(name, horizon)
  if horizon > tonumber(redis.call('ZSCORE', KEYS[8], name) or '0') then redis.call('ZADD', KEYS[8], horizon, name) end
end
-- A writer's records sit together in the log under a tag that no other writer's tag starts with.
local function rangeOf(name)
  local tag = #name .. ':' .. name .. ':'
  return tag, '[' .. tag, '(' .. tag .. '\\255'
end
local function forgetRecords(members, tag)
  for i = 1, #members do
    redis.call('ZREM', KEYS[6], members[i])
    -- After the tag: 16 digits of time, ':', 16 of version, ':', then the id.
    redis.call('HDEL', KEYS[4], string.sub(members[i], #tag + 35))
  end
end

redis.call('HSET', KEYS[4], mutation, ARGV[2])
local tag, first, last = rangeOf(writer)
redis.call('ZADD', KEYS[6], 0, tag .. ARGV[12])
if now > tonumber(redis.call('ZSCORE', KEYS[7], writer) or '0') then redis.call('ZADD', KEYS[7], now, writer) end

-- 1. The writer's own records past the TTL, then past its cap, oldest first.
for _ = 1, 1000 do
  local oldest = redis.call('ZRANGEBYLEX', KEYS[6], first, last, 'LIMIT', 0, 1)[1]
  if not oldest or tonumber(string.sub(oldest, #tag + 1, #tag + 16)) >= cutoff then break end
  forgetRecords({ oldest }, tag)
end
local over = redis.call('ZRANGEBYLEX', KEYS[6], first, last, 'LIMIT', tonumber(ARGV[11]), 1000)
if #over > 0 then
  local pushed = redis.call('ZRANGEBYLEX', KEYS[6], first, last, 'LIMIT', 0, #over)
  forgetRecords(pushed, tag)
  raise(writer, tonumber(string.sub(pushed[#pushed], #tag + 1, #tag + 16)))
end

-- 2. Writers idle past the TTL, then the least recently committed past maxMutationWriters.
for _ = 1, 8 do
  local oldest = redis.call('ZRANGE', KEYS[7], 0, 1, 'WITHSCORES')
  local name, newest = oldest[1], tonumber(oldest[2])
  if name == writer then name, newest = oldest[3], tonumber(oldest[4]) end
  if not name then break end
  local idle = newest < cutoff
  if not idle and redis.call('ZCARD', KEYS[7]) <= tonumber(ARGV[13]) then break end
  local otherTag, otherFirst, otherLast = rangeOf(name)
  forgetRecords(redis.call('ZRANGEBYLEX', KEYS[6], otherFirst, otherLast), otherTag)
  redis.call('ZREM', KEYS[7], name)
  -- An idle writer needs no horizon: the TTL answers for all its mutations.
  if not idle then raise(name, newest) end
end

-- 3. Horizons past the TTL, then the oldest past their cap, into the document's.
redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', '(' .. ARGV[10])
local surplus = redis.call('ZCARD', KEYS[8]) - tonumber(ARGV[14])
if surplus > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[8], surplus)
  local forgotten = redis.call('HGET', KEYS[1], 'forgotten') or '0'
  for i = 2, #popped, 2 do
    if tonumber(popped[i]) > tonumber(forgotten) then forgotten = popped[i] end
  end
  redis.call('HSET', KEYS[1], 'forgotten', forgotten)
end

-- Records from before they were kept per writer: only ever forgotten, past the TTL.
local legacy = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', '(' .. ARGV[10], 'LIMIT', 0, 1000)
for i = 1, #legacy do redis.call('HDEL', KEYS[4], string.sub(legacy[i], 18)) end
if #legacy > 0 then redis.call('ZREMRANGEBYRANK', KEYS[5], 0, #legacy - 1) end
return { 1 }
`);

// KEYS: latest, mutations, mutationHorizons. ARGV: mutation id, writer.
// Reads the mutation's record and the writer's and the document's horizons
// in one step; the caller decides between new and expired.
// Returns { version or '', forgotten or '0', writer's horizon or '0' }.
const MUTATION = luaScript(`
return { redis.call('HGET', KEYS[2], ARGV[1]) or '', redis.call('HGET', KEYS[1], 'forgotten') or '0', redis.call('ZSCORE', KEYS[3], ARGV[2]) or '0' }
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
 * sizes beside it, and the mutations it remembers: a hash of mutation id to
 * the version it committed, a log of them grouped by writer, the writers by
 * their latest record and the writers' horizons (see `DocumentKeys`). All share
 * the hash tag `{<prefix>:doc:<company>:<type>:<id>}`, so the compare-and-set
 * script runs unchanged on Redis Cluster. Data is stored as JSON, so what
 * callers pass in or get back is always a copy.
 *
 * A version's size is the UTF-8 length of its `data` as JSON, exactly as the
 * in-memory store counts it; the metadata stored beside the data (type, id,
 * version, `updatedAt`, `updatedBy`) is not counted. Versions committed before
 * sizes were kept count whole, metadata included.
 *
 * A mutation is checked, and on commit recorded, in the compare-and-set
 * script. Records are timed by this node's clock (`now`), as `updatedAt` is;
 * nodes whose clocks disagree by a lot shift the `mutationTtlMs` cut-off by
 * that much. Records are kept per writer: a writer's records older than
 * `mutationTtlMs`, and its oldest past `maxMutations`, are forgotten when it
 * next commits to the document with a mutation, at most 1,000 per commit;
 * past `maxMutationWriters` writers the least recently committed are
 * forgotten whole, keeping only their horizon (see
 * `DocumentStore.compareAndSet`). Records written before they were kept per
 * writer are still found, and forgotten past the TTL.
 *
 * @param options.maxHistory Versions kept per document; default 100 (`DEFAULTS.documents.maxHistory`).
 * @param options.maxHistoryBytes Bytes of versions kept per document; default 4 MiB (`DEFAULTS.documents.maxHistoryBytes`).
 * @param options.maxMutations Mutation ids remembered per writer of a document; default 1,000 (`DEFAULTS.documents.maxMutations`).
 * @param options.maxMutationWriters Writers whose mutation ids a document keeps; default 100.
 * @param options.mutationTtlMs How long a mutation id is remembered; default 7 days (`DEFAULTS.documents.mutationTtlMs`).
 * @throws RangeError when `maxHistory`, `maxHistoryBytes`, `maxMutations`, `maxMutationWriters` or `mutationTtlMs` is not a positive integer.
 * @throws TypeError from `compareAndSet` when the data is not a JSON object, or the mutation id is empty; nothing is written.
 */
export function redisDocumentStore(options: RedisDocumentStoreOptions): DocumentStore {
  const { redis } = options;
  const prefix = checkPrefix(options.prefix ?? DEFAULT_PREFIX);
  const { maxHistory, maxHistoryBytes, maxMutations, maxMutationWriters, maxMutationHorizons, mutationTtlMs } = resolveDocumentStoreOptions("redisDocumentStore", options);
  const now = options.now ?? Date.now;

  return {
    async get(key) {
      return parseVersion(await redis.hget(documentKeys(prefix, key).latest, "document"));
    },

    async getVersion(key, version) {
      if (!Number.isInteger(version)) return null;
      const keys = documentKeys(prefix, key);
      const found = parseVersion(String(await runScript(redis, GET_VERSION, [keys.latest, keys.history], [version])));
      // The history has no gaps by construction; checking costs nothing and
      // keeps a hand-edited key from answering for the wrong version.
      return found?.version === version ? found : null;
    },

    async mutation(key, mutation) {
      const keys = documentKeys(prefix, key);
      const [version, forgotten, horizon] = (await runScript(redis, MUTATION, [keys.latest, keys.mutations, keys.mutationHorizons], [mutation.id, mutation.writer])) as [
        string,
        string,
        string,
      ];
      if (version !== "") return { state: "committed", version: Number(version) };
      const forgottenBefore = Math.max(Number(forgotten), Number(horizon));
      return mutationMayBeForgotten(mutation.madeAt, forgottenBefore, now(), mutationTtlMs) ? { state: "expired" } : { state: "new" };
    },

    async compareAndSet(key, expectedVersion, data, updatedBy, mutation): Promise<CompareAndSetResult> {
      // Data the engine merged comes with its JSON: encoded once, and handed back without a decode.
      const known = snapshotJson(data);
      const dataJson = known ?? (JSON.stringify(data) as string | undefined);
      if (typeof dataJson !== "string" || dataJson[0] !== "{") {
        throw new TypeError("redisDocumentStore: document data must be a JSON object");
      }
      // The script reads an empty id as "no mutation", so one must never reach it.
      if (mutation && mutation.id === "") throw new TypeError("redisDocumentStore: a mutation id must not be empty");
      const version = expectedVersion + 1;
      const at = now();
      const json = versionJson(key, version, dataJson, at, updatedBy);
      const keys = documentKeys(prefix, key);
      // Without a mutation id the script touches only the first three keys: only those are named.
      const [outcome, current, committedVersion] = (await runScript(
        redis,
        COMPARE_AND_SET,
        mutation
          ? [keys.latest, keys.history, keys.historyBytes, keys.mutations, keys.mutationTimes, keys.mutationLog, keys.mutationWriters, keys.mutationHorizons]
          : [keys.latest, keys.history, keys.historyBytes],
        [
          expectedVersion,
          version,
          json,
          maxHistory,
          Buffer.byteLength(dataJson),
          maxHistoryBytes,
          mutation?.id ?? "",
          mutation?.madeAt ?? 0,
          at,
          at - mutationTtlMs,
          maxMutations,
          mutation ? logMember(at, version, mutation.id) : "",
          maxMutationWriters,
          maxMutationHorizons,
          mutation?.writer ?? "",
        ],
      )) as [number, string?, string?];
      switch (Number(outcome)) {
        case 1:
          return {
            ok: true,
            document: known === undefined ? (JSON.parse(json) as DocumentVersion) : { type: key.type, id: key.id, version, data: data as DocumentVersion["data"], updatedAt: at, updatedBy },
          };
        case 2:
          return { ok: false, current: parseVersion(current ?? ""), mutation: { state: "committed", version: Number(committedVersion) } };
        case 3:
          return { ok: false, current: parseVersion(current ?? ""), mutation: { state: "expired" } };
        default:
          return { ok: false, current: parseVersion(current ?? "") };
      }
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

/**
 * A record's member in the mutation log, after its writer's tag (which the
 * script adds): when it was recorded and the version it committed, each
 * zero-padded to the 16 digits of the largest safe integer so that lexical
 * order is time order, and a tie within a millisecond goes in commit order;
 * then its id.
 */
function logMember(recordedAt: number, version: number, id: string): string {
  return `${String(recordedAt).padStart(16, "0")}:${String(version).padStart(16, "0")}:${id}`;
}

function parseVersion(json: string | null): DocumentVersion | null {
  return json ? (JSON.parse(json) as DocumentVersion) : null;
}
