import { randomUUID } from "node:crypto";
import {
  idempotencyKeyOf,
  resolveStreamStoreOptions,
  STREAM_IDEMPOTENCY_KEYS_PER_ENTRY,
  type StreamEntry,
  type StreamGapReason,
  type StreamKey,
  type StreamStore,
  type StreamStoreOptions,
  snapshotJson,
} from "@truss/core";
import { checkPrefix, DEFAULT_PREFIX, encodeId } from "./keys.js";
import { luaScript, runScript, type RedisClient } from "./script.js";
import { SharedTotals } from "./totals.js";

/** Options of {@link redisStreamStore}. */
export interface RedisStreamStoreOptions extends StreamStoreOptions {
  /**
   * The ioredis client (or Cluster), created fail-fast like the other stores'
   * (`enableOfflineQueue: false`), so a broadcast goes out live at once
   * instead of waiting in ioredis's offline queue when Redis is down.
   */
  redis: RedisClient;
  /** Prefix of every key. Default `"truss"`. */
  prefix?: string;
  /**
   * How many streams that keep no entry one company may hold in Redis: read
   * (every `topic:subscribe` reads its topic's stream) but never appended
   * to, or whose entries all expired. Each keeps its `:meta` (its epoch) for
   * `ttlMs + idleMs` after its last read; past this many the company's least
   * recently read are deleted (a device holding one's epoch gets an
   * `EPOCH_CHANGED` resync), so a user subscribing to ever new topics cannot
   * grow Redis without bound.
   *
   * @default 10000
   */
  maxEmptyStreamsPerCompany?: number;
}

/** Default streams with no entry one company may hold. */
const DEFAULT_MAX_EMPTY_STREAMS_PER_COMPANY = 10_000;

/** Keys of one stream; all share the hash tag `{<prefix>:stream:<company>:<stream>}`. */
export interface StreamKeys {
  /** HASH: `epoch`, `top` (last offset), `trimmed` and `expired` (highest offset each cause dropped). */
  meta: string;
  /** LIST of kept entries, oldest first, each `<ts>,<JSON [event, data]>`; the last one has offset `top`. */
  log: string;
  /** HASH: idempotency key → `<offset> <ts>` of the first entry appended with it, in the current epoch. */
  idempotency: string;
  /** LIST of remembered keys, oldest first, each `<offset> <ts> <key>`: what goes first past the TTL or the bound. */
  idempotencyOrder: string;
}

/** The keys of one stream; streams are per company, so both ids are in the tag, encoded. */
export function streamKeys(prefix: string, key: StreamKey): StreamKeys {
  const tag = `{${prefix}:stream:${encodeId(key.companyId)}:${encodeId(key.stream)}}`;
  return { meta: `${tag}:meta`, log: `${tag}:log`, idempotency: `${tag}:idempotency`, idempotencyOrder: `${tag}:idempotency:order` };
}

/** The ZSET of a company's streams last read with no entry kept, scored by when (ms): the oldest are deleted past the bound. */
export function emptyStreamsKey(prefix: string, companyId: string): string {
  return `${prefix}:stream:empty:${encodeId(companyId)}`;
}

/** The HASH with the totals (`trimmed`, `expired`) of every node. */
export function streamStatsKey(prefix: string): string {
  return `${prefix}:stream:stats`;
}

// Shared by both scripts. KEYS: meta, log, idempotency, idempotencyOrder.
// ARGV[1]: epoch candidate, ARGV[2]: ttlMs, ARGV[3]: keyTtlMs.
// The server's clock decides ts and the TTL cut-off, whatever the nodes' clocks say.
// `openStream` reads the stream's state and starts a new epoch, with an empty
// log, when it has none or when the log no longer holds what the meta says
// it should (keys evicted or deleted outside this store): a history that lost
// entries silently must not keep its epoch. Setting the epoch is then the
// script's first write; an HSET can grow memory, so under maxmemory Redis
// refuses the script there, before anything is written. A new epoch starts
// with no idempotency keys: they name offsets of the old one.
// `dropExpired` removes entries whose ts + ttl <= now from the front; ts never
// decreases along the log, so it stops at the first live entry.
const STREAM_STATE = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ttl = tonumber(ARGV[2])

local function tsOf(entry)
  return tonumber(string.match(entry, '^%d+'))
end

local function openStream()
  local meta = redis.call('HMGET', KEYS[1], 'epoch', 'top', 'trimmed', 'expired')
  local state = { epoch = meta[1], top = tonumber(meta[2] or '0'), trimmed = tonumber(meta[3] or '0'), expired = tonumber(meta[4] or '0') }
  if state.epoch and redis.call('LLEN', KEYS[2]) == state.top - math.max(state.trimmed, state.expired) then
    return state
  end
  redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'top', 0, 'trimmed', 0, 'expired', 0)
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
  return { epoch = ARGV[1], top = 0, trimmed = 0, expired = 0 }
end

local function dropExpired(state)
  -- The common case, nothing expired, costs one LINDEX rather than a copy of a batch.
  local head = redis.call('LINDEX', KEYS[2], 0)
  if not head or tsOf(head) + ttl > now then return 0 end
  local length = redis.call('LLEN', KEYS[2])
  local first = state.top - length + 1
  local count = 0
  while count < length do
    local batch = redis.call('LRANGE', KEYS[2], count, count + 99)
    local live = false
    for i = 1, #batch do
      if tsOf(batch[i]) + ttl > now then
        live = true
        break
      end
      count = count + 1
    end
    if live or #batch == 0 then break end
  end
  if count == 0 then return 0 end
  if count == length then redis.call('DEL', KEYS[2]) else redis.call('LTRIM', KEYS[2], count, -1) end
  state.expired = first + count - 1
  redis.call('HSET', KEYS[1], 'expired', state.expired)
  return count
end

local function keepKeys()
  for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
end
`;

// KEYS: meta, log, idempotency, idempotencyOrder. ARGV: epoch candidate,
// ttlMs, keyTtlMs, size, JSON [event, data], idempotency key ('' for none),
// most keys remembered.
// Offset and write in one script, so offsets are contiguous and ordered
// whichever node appends. With a key, the key is looked up first, in the
// same script: a key whose first entry is younger than the TTL is a
// duplicate, and the script returns that entry's offset and ts (and the
// entry, while the size cap has not dropped it) without storing anything.
// The push comes before any trim so that, for a stream that exists, it is
// the script's first write (see STREAM_STATE); the lookup before it only
// reads. Then the key is recorded: keys past the TTL and the oldest past the
// bound are forgotten, and the new one added.
// Returns epoch, offset, ts, expired, trimmed, duplicate (0 or 1), and for a
// duplicate its stored entry or false.
const APPEND = luaScript(`${STREAM_STATE}
local state = openStream()
local key = ARGV[6]
if key ~= '' then
  local first = redis.call('HGET', KEYS[3], key)
  if first then
    local offset, firstTs = string.match(first, '^(%d+) (%d+)$')
    offset, firstTs = tonumber(offset), tonumber(firstTs)
    if firstTs + ttl > now then
      local length = redis.call('LLEN', KEYS[2])
      local index = offset - (state.top - length + 1)
      local stored = false
      if index >= 0 and index < length then stored = redis.call('LINDEX', KEYS[2], index) end
      keepKeys()
      return { state.epoch, offset, string.format('%.0f', firstTs), 0, 0, 1, stored }
    end
  end
end
local last = redis.call('LINDEX', KEYS[2], -1)
local ts = now
if last then ts = math.max(now, tsOf(last)) end
redis.call('RPUSH', KEYS[2], string.format('%.0f', ts) .. ',' .. ARGV[5])
state.top = redis.call('HINCRBY', KEYS[1], 'top', 1)
local expired = dropExpired(state)
local overCap = redis.call('LLEN', KEYS[2]) - tonumber(ARGV[4])
if overCap > 0 then
  redis.call('LTRIM', KEYS[2], overCap, -1)
  state.trimmed = state.top - tonumber(ARGV[4])
  redis.call('HSET', KEYS[1], 'trimmed', state.trimmed)
else
  overCap = 0
end
if key ~= '' then
  local function forgetOldest()
    local entry = redis.call('LPOP', KEYS[4])
    local value, entryKey = string.match(entry, '^(%d+ %d+) (.*)$')
    if redis.call('HGET', KEYS[3], entryKey) == value then redis.call('HDEL', KEYS[3], entryKey) end
  end
  while true do
    local oldest = redis.call('LINDEX', KEYS[4], 0)
    if not oldest or tonumber(string.match(oldest, '^%d+ (%d+) ')) + ttl > now then break end
    forgetOldest()
  end
  local excess = redis.call('LLEN', KEYS[4]) + 1 - tonumber(ARGV[7])
  for _ = 1, excess do forgetOldest() end
  local value = string.format('%.0f %.0f', state.top, ts)
  redis.call('HSET', KEYS[3], key, value)
  redis.call('RPUSH', KEYS[4], value .. ' ' .. key)
end
keepKeys()
return { state.epoch, state.top, string.format('%.0f', ts), expired, overCap, 0, false }
`);

// KEYS: meta, log, idempotency, idempotencyOrder. ARGV: epoch candidate, ttlMs, keyTtlMs, after, limit.
// Reading applies the TTL too, so what expired is counted when it stops being
// readable, and keeps the keys alive like an append: the epoch a reader saw
// is the one the next append uses. The gap names why the entry right after
// `after` went, from the highest offset each cause dropped.
// Returns epoch, top, gap ('' for none), expired, offset of the first entry, entries, entries kept.
const READ = luaScript(`${STREAM_STATE}
local state = openStream()
local expired = dropExpired(state)
local after = tonumber(ARGV[4])
local length = redis.call('LLEN', KEYS[2])
local first = state.top - length + 1
local gap = ''
if after + 1 < first and after < state.top then
  local earlier, later = 'HISTORY_EXPIRED', 'HISTORY_TRIMMED'
  if state.trimmed < state.expired then earlier, later = 'HISTORY_TRIMMED', 'HISTORY_EXPIRED' end
  if after + 1 > math.min(state.trimmed, state.expired) then gap = later else gap = earlier end
end
local start = math.max(after + 1, first)
local entries = {}
if tonumber(ARGV[5]) > 0 and start <= state.top then
  entries = redis.call('LRANGE', KEYS[2], start - first, start - first + tonumber(ARGV[5]) - 1)
end
keepKeys()
return { state.epoch, state.top, gap, expired, start, entries, length }
`);

// KEYS: meta, log, idempotency, idempotencyOrder. Deletes a stream that keeps
// no entry, so its next read or append starts a new epoch; one appended to
// since it was read is kept. Returns 1 when deleted.
const FORGET_EMPTY = luaScript(`
if redis.call('LLEN', KEYS[2]) > 0 then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return 1
`);

// KEYS: the company's set of streams that keep no entry. ARGV: the stream, now (ms), the set's TTL (ms), its cap.
// Records the stream as read now and pops the least recently read past the cap, in one step, so two reads at
// once cannot both pop for the same excess. Returns the popped streams.
const NOTE_EMPTY = luaScript(`
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4])
if excess <= 0 then return {} end
local popped = redis.call('ZPOPMIN', KEYS[1], excess)
local streams = {}
for i = 1, #popped, 2 do streams[#streams + 1] = popped[i] end
return streams
`);

/**
 * A {@link StreamStore} on Redis. Each stream is a hash with its epoch and top
 * offset and a list of its kept entries, under the hash tag
 * `{<prefix>:stream:<company>:<stream>}` (both ids encoded, so no two streams
 * share keys and the scripts run unchanged on Redis Cluster). An append takes
 * the next offset and pushes the entry in one Lua script, then drops entries
 * older than the TTL and trims to `size`; a read applies the TTL too.
 *
 * The epoch is a random id set only when the stream has none, on its first
 * append or read, so a read before any append fixes the epoch the next append
 * uses; a Redis that restarted empty, or a stream whose keys expired, gets a
 * new one. A stream's keys expire `ttlMs + idleMs` after its last append or
 * read, so idle streams do not stay in Redis. A read that finds no entry
 * kept records the stream in the company's `<prefix>:stream:empty:<company>`
 * set; past `maxEmptyStreamsPerCompany` the least recently read of those
 * that still keep no entry are deleted, epoch and all. Entries that expire with their
 * keys, unread, are not counted in `trimmed()`; everything a trim or a read
 * drops is, in the `<prefix>:stream:stats` hash shared by every node.
 *
 * An append with an idempotency key is checked and recorded in the same Lua
 * script that assigns the offset, so it is atomic across nodes: the key maps
 * to the first entry's offset and ts in the stream's `:idempotency` hash, in
 * its hash tag, and expires with the stream. Keys are remembered for the TTL
 * (by the server's clock, like the entries) and at most `10 × size` per
 * stream (the `:idempotency:order` list, oldest forgotten first); a stream
 * that starts a new epoch forgets them all.
 *
 * A resolved `append` means the entry is in Redis; any Redis error rejects
 * it, and the engine reports it as the store being unavailable.
 *
 * @throws RangeError when `size`, `ttlMs`, `idleMs` or `maxEmptyStreamsPerCompany` is not a positive integer.
 */
export function redisStreamStore(options: RedisStreamStoreOptions): StreamStore {
  const { redis } = options;
  const prefix = checkPrefix(options.prefix ?? DEFAULT_PREFIX);
  const { size, ttlMs, idleMs } = resolveStreamStoreOptions("redisStreamStore", options);
  const maxEmpty = options.maxEmptyStreamsPerCompany ?? DEFAULT_MAX_EMPTY_STREAMS_PER_COMPANY;
  if (!(Number.isSafeInteger(maxEmpty) && maxEmpty > 0)) {
    throw new RangeError(`redisStreamStore: maxEmptyStreamsPerCompany must be a positive integer, got ${maxEmpty}`);
  }
  const keyTtlMs = ttlMs + idleMs;
  const maxKeys = STREAM_IDEMPOTENCY_KEYS_PER_ENTRY * size;
  const totals = new SharedTotals(redis, streamStatsKey(prefix), ["trimmed", "expired"] as const);
  const keysOf = (key: StreamKey) => {
    const { meta, log, idempotency, idempotencyOrder } = streamKeys(prefix, key);
    return [meta, log, idempotency, idempotencyOrder];
  };

  /**
   * Records that a company's stream keeps no entry, and deletes the company's least recently read such
   * streams past `maxEmpty`. Not atomic with the read (the set is in another hash slot): a stream appended
   * to in between is kept by {@link FORGET_EMPTY}, and one read again after being popped is recorded again.
   */
  const noteEmpty = async (key: StreamKey) => {
    const popped = (await runScript(redis, NOTE_EMPTY, [emptyStreamsKey(prefix, key.companyId)], [key.stream, Date.now(), keyTtlMs, maxEmpty])) as string[];
    for (const stream of popped) await runScript(redis, FORGET_EMPTY, keysOf({ companyId: key.companyId, stream }), []);
  };

  return {
    async append(key, event, data, options) {
      const idempotencyKey = idempotencyKeyOf(options, "redisStreamStore");
      // The engine's snapshot comes with its JSON: spliced in rather than encoded again.
      const json = snapshotJson(data);
      const encoded = json !== undefined ? `[${JSON.stringify(event)},${json}]` : JSON.stringify(data === undefined ? [event] : [event, data]);
      const [epoch, offset, ts, expired, trimmed, duplicate, stored] = (await runScript(redis, APPEND, keysOf(key), [
        randomUUID(),
        ttlMs,
        keyTtlMs,
        size,
        encoded,
        idempotencyKey ?? "",
        maxKeys,
      ])) as [string, number, string, number, number, number, string | null];
      if (Number(duplicate) === 1) {
        // The size cap may have dropped the first entry: its offset and ts still answer for it.
        const entry = stored ? decodeEntry(Number(offset), stored) : { offset: Number(offset), event, data, ts: Number(ts) };
        return { epoch, entry, duplicate: true };
      }
      totals.add({ trimmed: Number(trimmed), expired: Number(expired) });
      return { epoch, entry: { offset: Number(offset), event, data, ts: Number(ts) }, duplicate: false };
    },

    async read(key, after, limit) {
      if (!(Number.isSafeInteger(after) && after >= 0)) {
        throw new TypeError(`redisStreamStore: after must be an offset (an integer >= 0), got ${after}`);
      }
      const count = limit > 0 ? Math.min(Math.floor(limit), size) : 0;
      const [epoch, top, gap, expired, start, entries, kept] = (await runScript(redis, READ, keysOf(key), [
        randomUUID(),
        ttlMs,
        keyTtlMs,
        after,
        count,
      ])) as [string, number, string, number, number, string[], number];
      totals.add({ expired: Number(expired) });
      // In the background: a read of a quiet stream (every subscribe to a quiet topic) answers without a second
      // round trip. Only the bound of empty streams waits on it; a failure leaves the stream to be noted at its next read.
      if (Number(kept) === 0) noteEmpty(key).catch(() => {});
      return {
        epoch,
        top: Number(top),
        entries: entries.map((entry, index) => decodeEntry(Number(start) + index, entry)),
        gap: gap === "" ? null : (gap as StreamGapReason),
      };
    },

    trimmed: () => totals.read(),

    async ping() {
      await redis.ping();
    },
  };
}

/** An entry of the log: `<ts>,<JSON [event]>` or `<ts>,<JSON [event, data]>`. */
function decodeEntry(offset: number, stored: string): StreamEntry {
  const comma = stored.indexOf(",");
  const [event, data] = JSON.parse(stored.slice(comma + 1)) as [string, unknown?];
  return { offset, event, data, ts: Number(stored.slice(0, comma)) };
}
