import { randomUUID } from "node:crypto";
import { isRevocationRecord, revocationSlot, type RevocationPage, type RevocationRecord, type RevocationStore } from "@truss/core";
import { checkPrefix, DEFAULT_PREFIX, revocationKeys, revocationUserSuffix } from "./keys.js";
import { LUA_AS_ARRAY, luaScript, runScript, type RedisClient } from "./script.js";

/** Options of {@link redisRevocationStore}. */
export interface RedisRevocationStoreOptions {
  /** The ioredis client (or Cluster), fail-fast like the other stores'. */
  redis: RedisClient;
  /** Prefix of every key. Default `"truss"`. */
  prefix?: string;
  /** Clock in epoch ms, for tests. Default `Date.now`; nodes sharing a Redis should run NTP. */
  now?: () => number;
}

// Numbers cross into Lua as strings and are compared after tonumber(), never
// computed on: ioredis-mock's Lua has 32-bit integers, and epoch milliseconds
// only survive there as floats.

// KEYS: sequence, log, expiry, epoch, user. ARGV: now, expiresAt, keepMs, slot, at, JSON, epoch candidate.
// Trims expired records, numbers the new one, adds it to the log and the
// expiry index, and to the user's hash unless a record of its slot with a
// later `at` is there (a late store of an older revocation).
const ADD = luaScript(`
local now = tonumber(ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])
for i = 1, #expired do
  redis.call('ZREM', KEYS[2], expired[i])
  redis.call('ZREM', KEYS[3], expired[i])
end
if tonumber(ARGV[2]) <= now then return 0 end
redis.call('SET', KEYS[4], ARGV[7], 'NX')
local sequence = redis.call('INCR', KEYS[1])
local member = sequence .. ' ' .. ARGV[6]
redis.call('ZADD', KEYS[2], sequence, member)
redis.call('ZADD', KEYS[3], ARGV[2], member)
local kept = redis.call('HGET', KEYS[5], ARGV[4])
local keptAt = type(kept) == 'string' and tonumber(string.match(kept, '^(%d+) ')) or nil
if not keptAt or keptAt < tonumber(ARGV[5]) then
  redis.call('HSET', KEYS[5], ARGV[4], ARGV[5] .. ' ' .. ARGV[6])
end
if redis.call('PTTL', KEYS[5]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[5], ARGV[3]) end
return 1
`);

// KEYS: log, epoch, expiry. ARGV: the cursor's epoch, the cursor's sequence, limit, now.
// Returns the epoch ('' before the first record), the last sequence read
// past, then up to \`limit\` unexpired members after the cursor, oldest
// first. A cursor of another epoch reads from the start.
const SINCE = luaScript(`${LUA_AS_ARRAY}
local epoch = redis.call('GET', KEYS[2])
if type(epoch) ~= 'string' then epoch = '' end
local last = '0'
if epoch ~= '' and epoch == ARGV[1] then last = ARGV[2] end
local limit = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local found = {}
while #found < limit do
  local batch = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. last, '+inf', 'WITHSCORES', 'LIMIT', 0, limit - #found)
  if #batch == 0 then break end
  for i = 1, #batch, 2 do
    last = batch[i + 1]
    local expiresAt = redis.call('ZSCORE', KEYS[3], batch[i])
    if expiresAt and tonumber(expiresAt) > now then found[#found + 1] = batch[i] end
  end
end
local result = { epoch, last }
for i = 1, #found do result[#result + 1] = found[i] end
return asArray(result)
`);

/**
 * The Redis revocation store: every node of the app reads and adds to one
 * log. One atomic script adds a record to the log (a sorted set by sequence
 * number, which nodes read on from their cursor), to an expiry index, and to
 * the user's hash that handshakes read; the same script drops the records
 * past their `expiresAt`. All keys share one hash tag, so the scripts run
 * unchanged on Redis Cluster; revocations are few, so one slot holds them.
 *
 * A Redis that restarts empty forgets its revocations, like everything
 * else it held: run it with persistence (AOF) if a revocation must survive
 * that. Nodes notice the new log by its epoch and read it from the start.
 *
 * @throws TypeError when `prefix` is empty or contains `{` or `}`.
 */
export function redisRevocationStore(options: RedisRevocationStoreOptions): RevocationStore {
  const { redis } = options;
  const now = options.now ?? Date.now;
  const keys = revocationKeys(checkPrefix(options.prefix ?? DEFAULT_PREFIX));
  const userKey = (companyId: string, userId: string) => keys.userBase + revocationUserSuffix(companyId, userId);

  return {
    async add(record) {
      const at = now();
      const keyTtlMs = Math.ceil(record.expiresAt - at);
      await runScript(
        redis,
        ADD,
        [keys.sequence, keys.log, keys.expiry, keys.epoch, userKey(record.companyId, record.userId)],
        [at, record.expiresAt, keyTtlMs, revocationSlot(record), record.at, JSON.stringify(record), randomUUID()],
      );
    },

    async forUser(user) {
      const fields = (await redis.hgetall(userKey(user.companyId, user.userId))) as Record<string, string>;
      const at = now();
      return Object.values(fields)
        .map((value) => parseRecord(value.slice(value.indexOf(" ") + 1)))
        .filter((record): record is RevocationRecord => record !== null && record.expiresAt > at && record.companyId === user.companyId && record.userId === user.userId);
    },

    async since(cursor, limit): Promise<RevocationPage> {
      const separator = (cursor ?? "").lastIndexOf(":");
      const cursorEpoch = separator > 0 ? cursor!.slice(0, separator) : "";
      const position = separator > 0 ? cursor!.slice(separator + 1) : "0";
      const after = /^\d+$/.test(position) ? position : "0";
      const [epoch, last, ...members] = (await runScript(redis, SINCE, [keys.log, keys.epoch, keys.expiry], [
        cursorEpoch,
        after,
        Math.max(0, Math.floor(limit)),
        now(),
      ])) as string[];
      const records = members.map((member) => parseRecord(member.slice(member.indexOf(" ") + 1))).filter((record): record is RevocationRecord => record !== null);
      return { records, cursor: `${epoch ?? ""}:${Number(last ?? 0)}` };
    },

    async ping() {
      await redis.ping();
    },
  };
}

/** A stored record, or `null` for anything that does not read back as one (never applied half-read). */
function parseRecord(json: string): RevocationRecord | null {
  try {
    const value: unknown = JSON.parse(json);
    return isRevocationRecord(value) ? value : null;
  } catch {
    return null;
  }
}
