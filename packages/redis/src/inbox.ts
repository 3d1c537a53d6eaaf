import {
  DEFAULTS,
  idempotencyKeyOf,
  INBOX_IDEMPOTENCY_KEYS_PER_MESSAGE,
  type InboxOptions,
  type InboxStore,
  type UserKey,
  snapshotJson,
  undeliveredAfterMsOf,
} from "@truss/core";
import { type InboxMessage, isInboxId } from "@truss/protocol";
import { LUA_DROP_CALLS, UndeliveredCallsIndex } from "./inbox-undelivered.js";
import { checkPrefix, DEFAULT_PREFIX, inboxKeys, inboxStatsKey } from "./keys.js";
import { LUA_SERVER_NOW, luaScript, runScript, type RedisClient } from "./script.js";
import { SharedTotals } from "./totals.js";

/** Options of {@link redisInboxStore}. */
export interface RedisInboxStoreOptions extends InboxOptions {
  /**
   * The ioredis client (or Cluster). Create it with `enableOfflineQueue: false`
   * (or a small `maxRetriesPerRequest`) so that `append` rejects promptly when
   * Redis is unreachable instead of waiting in ioredis's offline queue.
   */
  redis: RedisClient;
  /** Prefix of every key. Default `"truss"`. */
  prefix?: string;
}

// The server's clock decides both the stream ids (XADD *) and the TTL cut-off,
// so the two can never disagree, whatever the engine nodes' clocks say.
const SERVER_NOW = `${LUA_SERVER_NOW}
local minId = string.format('%.0f', now - tonumber(ARGV[1]) + 1)
`;

// KEYS: log, idempotency, idempotencyOrder, undelivered, undeliveredAttempts,
// undeliveredById (the log alone without an idempotency key or a delay).
// ARGV: ttlMs, maxLength, event, data, idempotency key ('' for none), most
// keys remembered, undelivered call's delay ('' for none).
//
// With a key, the key is looked up first: a key whose first message is
// younger than the TTL is a duplicate, and the script returns that id (and
// the entry, while the cap has not trimmed it) without writing anything.
// Otherwise it appends, then trims by age, then to the cap: XTRIM returns how
// many entries it removed, so both drop counts are exact (the new entry is
// never older than the age cut-off). XADD must be the script's first write:
// Redis refuses a script under maxmemory only at its first write command that
// can grow memory, and an XTRIM (or recording the key) before it would wave
// the XADD through past the limit; the lookup before it only reads. Then the
// key is recorded: keys past the TTL and the oldest past the bound are
// forgotten, the new one is added, and both idempotency keys expire once the
// newest key is past the TTL, so an idle user's keys do not outlive it.
// With a delay, the message's undelivered call is recorded, due that long
// after its id's ms; past 2 × maxLength calls (the cap and the TTL leave
// calls of dropped messages behind), those whose message is gone are dropped.
// Returns id, expired, overCap, duplicate (0 or 1), the first entry's fields
// (a duplicate whose entry is still in the log) or false, and the score of
// the message's pending call ('' for none), for the undelivered index.
const APPEND = luaScript(`${SERVER_NOW}${LUA_DROP_CALLS}
local ttlMs = tonumber(ARGV[1])
local key = ARGV[5]
local function msOf(id)
  return tonumber(string.match(id, '^(%d+)-'))
end
if key ~= '' then
  local first = redis.call('HGET', KEYS[2], key)
  if first and msOf(first) >= tonumber(minId) then
    local entries = redis.call('XRANGE', KEYS[1], first, first)
    local fields = false
    if entries[1] then fields = entries[1][2] end
    return { first, 0, 0, 1, fields, redis.call('ZSCORE', KEYS[4], first) or '' }
  end
end
local id = redis.call('XADD', KEYS[1], '*', 'event', ARGV[3], 'data', ARGV[4])
local expired = redis.call('XTRIM', KEYS[1], 'MINID', minId)
local overCap = redis.call('XTRIM', KEYS[1], 'MAXLEN', '=', ARGV[2])
local due = ''
if ARGV[7] ~= '' then
  due = msOf(id) + tonumber(ARGV[7])
  redis.call('ZADD', KEYS[4], due, id)
  redis.call('ZADD', KEYS[6], msOf(id), id)
  if redis.call('ZCARD', KEYS[4]) > 2 * tonumber(ARGV[2]) then dropCalls(KEYS[4], KEYS[6], KEYS[5], KEYS[1], nil) end
end
if key ~= '' then
  local function forgetOldest()
    local entry = redis.call('LPOP', KEYS[3])
    local entryId, entryKey = string.match(entry, '^(%S+) (.*)$')
    if redis.call('HGET', KEYS[2], entryKey) == entryId then redis.call('HDEL', KEYS[2], entryKey) end
  end
  while true do
    local oldest = redis.call('LINDEX', KEYS[3], 0)
    if not oldest or msOf(oldest) >= tonumber(minId) then break end
    forgetOldest()
  end
  local excess = redis.call('LLEN', KEYS[3]) + 1 - tonumber(ARGV[6])
  for _ = 1, excess do forgetOldest() end
  redis.call('HSET', KEYS[2], key, id)
  redis.call('RPUSH', KEYS[3], id .. ' ' .. key)
  local lifetime = math.max(msOf(id) + ttlMs - now, 1)
  redis.call('PEXPIRE', KEYS[2], lifetime)
  redis.call('PEXPIRE', KEYS[3], lifetime)
end
return { id, expired, overCap, 0, false, tostring(due) }
`);

// KEYS: log. ARGV: ttlMs, start (exclusive or '-'), limit.
// Reading trims by age too, so expired messages are counted when they stop
// being readable, not only at the user's next append. Returns expired, entries.
const READ = luaScript(`${SERVER_NOW}
local expired = redis.call('XTRIM', KEYS[1], 'MINID', minId)
return { expired, redis.call('XRANGE', KEYS[1], ARGV[2], '+', 'COUNT', ARGV[3]) }
`);

// KEYS: cursors, cursorOrder, undelivered, undeliveredAttempts,
// undeliveredById. ARGV: device, id (canonical decimal parts, so comparing
// by length, then as text, is exact even for sequences past 2^53),
// maxCursorsPerUser, ttlMs. Cancels the user's undelivered calls up to the
// id, whichever device's cursor it moves. A cursor that moves is scored by
// the server's time (above every other score, so the order is strict even
// within a ms); past the cap the lowest scores are forgotten. Cursors left
// by releases without the order are adopted as the oldest. Both keys expire
// once no cursor moved for the TTL: every message at or before a cursor is
// older than its move, so by then none is left that a device could skip.
const ACK = luaScript(`${LUA_SERVER_NOW}${LUA_DROP_CALLS}
dropCalls(KEYS[3], KEYS[5], KEYS[4], nil, ARGV[2])
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and atOrBefore(ARGV[2], current) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local newest = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')[2]
redis.call('ZADD', KEYS[2], math.max(now, (tonumber(newest) or 0) + 1), ARGV[1])
if redis.call('HLEN', KEYS[1]) > redis.call('ZCARD', KEYS[2]) then
  for _, device in ipairs(redis.call('HKEYS', KEYS[1])) do redis.call('ZADD', KEYS[2], 'NX', 0, device) end
end
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if excess > 0 then
  local forgotten = redis.call('ZPOPMIN', KEYS[2], excess)
  for index = 1, #forgotten, 2 do redis.call('HDEL', KEYS[1], forgotten[index]) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
`);

/**
 * An {@link InboxStore} on Redis Streams: one stream per user of a company
 * under the hash tag `{<prefix>:inbox:<company>:<user>}` (both ids encoded,
 * so no two users share one), ids assigned by `XADD *` (so they are Redis
 * Stream ids `<ms>-<seq>` that increase even across nodes), trimmed by age
 * with `XTRIM MINID` and to the cap with an exact `XTRIM MAXLEN =`.
 *
 * A resolved `append` means the message is in Redis; any Redis error rejects
 * it. Drop totals live in the `<prefix>:inbox:stats` hash, so every node's
 * `dropped()` reports the same totals.
 *
 * An append with an idempotency key is checked and recorded in the same Lua
 * script as the `XADD`, so it is atomic across nodes: the key maps to the
 * first id in the `:idempotency` hash, in the user's hash tag. Keys are
 * remembered for the TTL (by the server's clock, like the messages) and at
 * most `10 × maxLength` per user (the `:idempotency:order` list, oldest
 * forgotten first).
 *
 * Each device's cursor is a field of the user's `:cursors` hash: at most
 * `maxCursorsPerUser` of them, the one moved longest ago forgotten first
 * (the `:cursors:order` sorted set), and both keys expire once no cursor
 * moved for the TTL, so cycling device ids cannot grow Redis without bound.
 *
 * Undelivered calls (`undeliveredAfterMs`) are kept per user beside the
 * stream, recorded by the append's script and cancelled by the ack's, and
 * found through an index of users with due calls; see inbox-undelivered.ts.
 *
 * @throws RangeError when `ttlMs`, `maxLength` or `maxCursorsPerUser` is not a positive integer.
 */
export function redisInboxStore(options: RedisInboxStoreOptions): InboxStore {
  const { redis } = options;
  const prefix = checkPrefix(options.prefix ?? DEFAULT_PREFIX);
  const ttlMs = options.ttlMs ?? DEFAULTS.inbox.ttlMs;
  const maxLength = options.maxLength ?? DEFAULTS.inbox.maxLength;
  if (!(Number.isInteger(ttlMs) && ttlMs > 0)) {
    throw new RangeError(`redisInboxStore: ttlMs must be a positive integer of ms, got ${ttlMs}`);
  }
  if (!(Number.isInteger(maxLength) && maxLength > 0)) {
    throw new RangeError(`redisInboxStore: maxLength must be a positive integer, got ${maxLength}`);
  }
  const maxCursorsPerUser = options.maxCursorsPerUser ?? DEFAULTS.inbox.maxCursorsPerUser;
  if (!(Number.isInteger(maxCursorsPerUser) && maxCursorsPerUser > 0)) {
    throw new RangeError(`redisInboxStore: maxCursorsPerUser must be a positive integer, got ${maxCursorsPerUser}`);
  }
  const drops = new SharedTotals(redis, inboxStatsKey(prefix), ["expired", "overCap"] as const);
  const maxKeys = INBOX_IDEMPOTENCY_KEYS_PER_MESSAGE * maxLength;
  const keysOf = (user: UserKey) => inboxKeys(prefix, user.companyId, user.userId);
  const undelivered = new UndeliveredCallsIndex(redis, prefix, ttlMs, (expired) => drops.add({ expired }), (id, fields) =>
    toMessage(id, fieldOf(fields, "event"), fieldOf(fields, "data")),
  );

  return {
    async append(user, event, data, options) {
      const idempotencyKey = idempotencyKeyOf(options, "redisInboxStore");
      const afterMs = undeliveredAfterMsOf(options, "redisInboxStore");
      // The engine's snapshot comes with its JSON: encoded once, and handed back without a decode.
      const known = snapshotJson(data);
      const encoded = data === undefined ? "" : (known ?? JSON.stringify(data));
      const keys = keysOf(user);
      // The index hears of the call first, sent just before the append without waiting for its answer, so a node that dies
      // once the append went out still leaves the call findable; a claim settles an entry with nothing due away.
      // The due time is this node's guess; the touch after the append sets the server's.
      const indexed = afterMs === undefined ? null : undelivered.touch(user, Date.now() + afterMs).then(() => null, (error: unknown) => error);
      // Without an idempotency key or a delay the script touches the log alone: only it is named.
      const [id, expired, overCap, duplicate, fields, due] = (await runScript(
        redis,
        APPEND,
        idempotencyKey === undefined && afterMs === undefined
          ? [keys.log]
          : [keys.log, keys.idempotency, keys.idempotencyOrder, keys.undelivered, keys.undeliveredAttempts, keys.undeliveredById],
        [ttlMs, maxLength, event, encoded, idempotencyKey ?? "", maxKeys, afterMs ?? ""],
      )) as [string, number, number, number, string[] | null, string];
      const indexFailure = await indexed;
      if (indexFailure !== null) throw indexFailure;
      if (afterMs !== undefined && due !== "") await undelivered.touch(user, due);
      if (Number(duplicate) === 1) {
        // The cap may have trimmed the first entry: its id (and so its ts) still answer for it.
        const message = fields ? toMessage(id, fieldOf(fields, "event"), fieldOf(fields, "data")) : toMessage(id, event, encoded);
        return { message, duplicate: true };
      }
      drops.add({ expired: Number(expired), overCap: Number(overCap) });
      const message = known === undefined ? toMessage(id, event, encoded) : { id, event, data, ts: Number(id.slice(0, id.indexOf("-"))) };
      return { message, duplicate: false };
    },

    async read(user, afterId, limit) {
      const start = afterId === null ? "-" : `(${canonicalId(afterId)}`;
      if (limit <= 0) return [];
      const [expired, entries] = (await runScript(redis, READ, [keysOf(user).log], [
        ttlMs,
        start,
        Math.floor(limit),
      ])) as [number, [string, string[]][]];
      drops.add({ expired: Number(expired) });
      return entries.map(([id, fields]) => toMessage(id, fieldOf(fields, "event"), fieldOf(fields, "data")));
    },

    async ack(device, id) {
      const keys = keysOf(device);
      await runScript(redis, ACK, [keys.cursors, keys.cursorOrder, keys.undelivered, keys.undeliveredAttempts, keys.undeliveredById], [
        device.deviceId,
        canonicalId(id),
        maxCursorsPerUser,
        ttlMs,
      ]);
    },

    async cursor(device) {
      return redis.hget(keysOf(device).cursors, device.deviceId);
    },

    dropped: () => drops.read(),

    claimUndelivered: (limit, leaseMs) => undelivered.claim(limit, leaseMs),

    settleUndelivered: (claim, outcome) => undelivered.settle(claim, outcome),

    async ping() {
      await redis.ping();
    },
  };
}

/** Validates an inbox id and drops leading zeros, so ids compare exactly as text in Lua. */
function canonicalId(id: string): string {
  if (!isInboxId(id)) throw new TypeError(`redisInboxStore: "${id}" is not an inbox id (expected <ms>-<seq>)`);
  const [ms, seq] = id.split("-");
  return `${BigInt(ms!)}-${BigInt(seq!)}`;
}

/** A field of a stream entry, whose fields come as a flat name, value list. */
function fieldOf(fields: readonly string[], name: string): string {
  for (let index = 0; index < fields.length; index += 2) {
    if (fields[index] === name) return String(fields[index + 1] ?? "");
  }
  return "";
}

function toMessage(id: string, event: string, encodedData: string): InboxMessage {
  return {
    id,
    event,
    data: encodedData === "" ? undefined : JSON.parse(encodedData),
    ts: Number(id.slice(0, id.indexOf("-"))),
  };
}
