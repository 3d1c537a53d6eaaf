import {
  mutationMayBeForgotten,
  resolveDocumentStoreOptions,
  type CompareAndSetResult,
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
  /** Clock in epoch ms for `updatedAt` and for mutation record times and their TTL, for tests. Default `Date.now`. */
  now?: () => number;
}

// KEYS: latest, history, historyBytes, mutations, mutationTimes.
// ARGV: expectedVersion, nextVersion, document JSON, maxHistory, data bytes,
// maxHistoryBytes, mutation id ('' = none), madeAt, now, TTL cut-off (now -
// mutationTtlMs), maxMutations, mutation member.
// The mutation check, the version check, the write, the history push and
// trim and the mutation's record are one script, so two writers expecting the
// same version, or carrying the same mutation, can never both commit. The
// document JSON, its data's size and the cut-off are computed by the caller,
// so the script needs no JSON library and reads only the sizes, never the
// history itself. The trim keeps the newest versions whose sizes add up to
// maxHistoryBytes, at most maxHistory of them, and always the one just written.
// A commit with a mutation records it, then forgets records older than the
// cut-off and, oldest first, those past maxMutations; the newest record time
// the cap pushed out is kept in latest's `forgotten`. Each forgets at most
// 1,000 records per commit, so a lowered cap is reached over a few commits.
// Returns { 1 } when committed; { 0, current JSON or '' } on another version;
// { 2, current, version } when the mutation committed that version before;
// { 3, current } when it is too old to tell.
const COMPARE_AND_SET = luaScript(`
local mutation = ARGV[7]
if mutation ~= '' then
  local committed = redis.call('HGET', KEYS[4], mutation)
  if committed then
    return { 2, redis.call('HGET', KEYS[1], 'document') or '', committed }
  end
  local madeAt = tonumber(ARGV[8])
  if madeAt <= tonumber(redis.call('HGET', KEYS[1], 'forgotten') or '0') or madeAt < tonumber(ARGV[10]) then
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
if mutation ~= '' then
  -- A member is '<16-digit version>:<id>', so the id starts at character 18.
  redis.call('HSET', KEYS[4], mutation, ARGV[2])
  redis.call('ZADD', KEYS[5], ARGV[9], ARGV[12])
  local expired = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', '(' .. ARGV[10], 'LIMIT', 0, 1000)
  for i = 1, #expired do redis.call('HDEL', KEYS[4], string.sub(expired[i], 18)) end
  if #expired > 0 then redis.call('ZREMRANGEBYRANK', KEYS[5], 0, #expired - 1) end
  local over = redis.call('ZCARD', KEYS[5]) - tonumber(ARGV[11])
  if over > 0 then
    local popped = redis.call('ZPOPMIN', KEYS[5], math.min(over, 1000))
    -- Scores are kept as Redis wrote them, so the stored time is never reformatted.
    local forgotten = redis.call('HGET', KEYS[1], 'forgotten') or '0'
    for i = 1, #popped, 2 do
      redis.call('HDEL', KEYS[4], string.sub(popped[i], 18))
      if tonumber(popped[i + 1]) > tonumber(forgotten) then forgotten = popped[i + 1] end
    end
    redis.call('HSET', KEYS[1], 'forgotten', forgotten)
  end
end
return { 1 }
`);

// KEYS: latest, mutations. ARGV: mutation id.
// Reads the mutation's record and the newest record time the cap pushed out
// in one step; the caller decides between new and expired.
// Returns { version or '', forgotten or '0' }.
const MUTATION = luaScript(`
return { redis.call('HGET', KEYS[2], ARGV[1]) or '', redis.call('HGET', KEYS[1], 'forgotten') or '0' }
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
 * the version it committed and a sorted set of their record times. All share
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
 * that much. Records older than `mutationTtlMs`, and the oldest past
 * `maxMutations`, are forgotten when the document is next committed with a
 * mutation, at most 1,000 per commit.
 *
 * @param options.maxHistory Versions kept per document; default `DEFAULT_DOCUMENT_HISTORY` (100).
 * @param options.maxHistoryBytes Bytes of versions kept per document; default `DEFAULT_DOCUMENT_HISTORY_BYTES` (4 MiB).
 * @param options.maxMutations Mutation ids remembered per document; default `DEFAULT_MAX_MUTATIONS` (1,000).
 * @param options.mutationTtlMs How long a mutation id is remembered; default `DEFAULT_MUTATION_TTL_MS` (7 days).
 * @throws RangeError when `maxHistory`, `maxHistoryBytes`, `maxMutations` or `mutationTtlMs` is not a positive integer.
 * @throws TypeError from `compareAndSet` when the data is not a JSON object, or the mutation id is empty; nothing is written.
 */
export function redisDocumentStore(options: RedisDocumentStoreOptions): DocumentStore {
  const { redis } = options;
  const prefix = checkPrefix(options.prefix ?? DEFAULT_PREFIX);
  const { maxHistory, maxHistoryBytes, maxMutations, mutationTtlMs } = resolveDocumentStoreOptions("redisDocumentStore", options);
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
      const [version, forgotten] = (await runScript(redis, MUTATION, [keys.latest, keys.mutations], [mutation.id])) as [string, string];
      if (version !== "") return { state: "committed", version: Number(version) };
      return mutationMayBeForgotten(mutation.madeAt, Number(forgotten), now(), mutationTtlMs) ? { state: "expired" } : { state: "new" };
    },

    async compareAndSet(key, expectedVersion, data, updatedBy, mutation): Promise<CompareAndSetResult> {
      const dataJson = JSON.stringify(data) as string | undefined;
      if (typeof dataJson !== "string" || dataJson[0] !== "{") {
        throw new TypeError("redisDocumentStore: document data must be a JSON object");
      }
      // The script reads an empty id as "no mutation", so one must never reach it.
      if (mutation && mutation.id === "") throw new TypeError("redisDocumentStore: a mutation id must not be empty");
      const version = expectedVersion + 1;
      const at = now();
      const json = versionJson(key, version, dataJson, at, updatedBy);
      const keys = documentKeys(prefix, key);
      const [outcome, current, committedVersion] = (await runScript(
        redis,
        COMPARE_AND_SET,
        [keys.latest, keys.history, keys.historyBytes, keys.mutations, keys.mutationTimes],
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
          mutation ? mutationMember(version, mutation.id) : "",
        ],
      )) as [number, string?, string?];
      switch (Number(outcome)) {
        case 1:
          return { ok: true, document: JSON.parse(json) as DocumentVersion };
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
 * A mutation's member in the record-time ZSET: the version it committed,
 * zero-padded to the 16 digits of the largest safe integer, so members that
 * tie on time sort (and are forgotten) in commit order; then its id.
 */
function mutationMember(version: number, id: string): string {
  return `${String(version).padStart(16, "0")}:${id}`;
}

function parseVersion(json: string | null): DocumentVersion | null {
  return json ? (JSON.parse(json) as DocumentVersion) : null;
}
