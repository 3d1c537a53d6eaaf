import type { ScopedPresenceEntry, ScopedPresenceMember, ScopedPresenceStore } from "@truss/core";
import { compareMembers } from "@truss/core";
import { checkPrefix, decodeId, DEFAULT_PREFIX, encodeId, scopedPresenceKeys } from "./keys.js";
import { DEFAULT_PRESENCE_KEY_TTL_MS } from "./presence.js";
import { SweepIndex } from "./presence-sweep.js";
import { LUA_AS_ARRAY, luaScript, runScript, type RedisClient } from "./script.js";

/** Options of {@link redisScopedPresenceStore}. */
export interface RedisScopedPresenceStoreOptions {
  /** The ioredis client (or Cluster). */
  redis: RedisClient;
  /** Prefix of every key. Default `"truss"`. */
  prefix?: string;
  /**
   * How long a scope's keys outlive its latest put or heartbeat, in ms, on
   * top of the member TTL; only garbage-collects scopes no running node
   * sweeps any more. Default one hour.
   */
  keyTtlMs?: number;
  /** Clock in epoch ms, for tests. Default `Date.now`; nodes sharing a Redis should run NTP. */
  now?: () => number;
}

const KEEP_FOR = `
local function keepFor(key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end
`;

// KEYS: expiry, members. ARGV: memberId, json, expiresAt, keepMs. Returns 1 when the scope did not hold the member.
const PUT = luaScript(`${KEEP_FOR}
local added = 1
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then added = 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
keepFor(KEYS[1], tonumber(ARGV[4]))
keepFor(KEYS[2], tonumber(ARGV[4]))
return added
`);

// KEYS: expiry, members. ARGV: memberId. Returns the member's JSON, or false when the scope did not hold it.
const REMOVE = luaScript(`
local json = redis.call('HGET', KEYS[2], ARGV[1])
if not json then return false end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
return json
`);

// KEYS: expiry, members. ARGV: expiresAt, keepMs, then one member id each.
// Extends the members the scope holds; returns the ids of those it does not
// (swept, or lost with Redis's data), for READD. A heartbeat carries ids
// only: a member's JSON (up to the state cap) goes out again only when lost.
const HEARTBEAT = luaScript(`${KEEP_FOR}${LUA_AS_ARRAY}
local missing = {}
for i = 3, #ARGV do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i])
  else
    missing[#missing + 1] = ARGV[i]
  end
end
keepFor(KEYS[1], tonumber(ARGV[2]))
keepFor(KEYS[2], tonumber(ARGV[2]))
return asArray(missing)
`);

// KEYS: expiry, members. ARGV: expiresAt, keepMs, then memberId and json per member.
// Adds each member the scope still does not hold; returns the ids it added,
// so one that a racing put restored meanwhile is not announced twice.
const READD = luaScript(`${KEEP_FOR}${LUA_AS_ARRAY}
local added = {}
for i = 3, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 0 then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    added[#added + 1] = ARGV[i]
  end
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i])
end
keepFor(KEYS[1], tonumber(ARGV[2]))
keepFor(KEYS[2], tonumber(ARGV[2]))
return asArray(added)
`);

// KEYS: expiry, members. ARGV: now. Removes the expired members; returns the next expiry ('' when none), then their JSON.
const SWEEP = luaScript(`${LUA_AS_ARRAY}
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local result = { '' }
for i = 1, #expired do
  local json = redis.call('HGET', KEYS[2], expired[i])
  redis.call('ZREM', KEYS[1], expired[i])
  redis.call('HDEL', KEYS[2], expired[i])
  if json then result[#result + 1] = json end
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] then result[1] = first[2] end
return asArray(result)
`);

// KEYS: expiry, members. ARGV: now. Returns the JSON of every live member.
const LIST = luaScript(`${LUA_AS_ARRAY}
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
local listed = {}
for i = 1, #live do
  local json = redis.call('HGET', KEYS[2], live[i])
  if json then listed[#listed + 1] = json end
end
return asArray(listed)
`);

/**
 * A `ScopedPresenceStore` on Redis, shared by every engine node: presence in
 * topics and documents, with each member's state.
 *
 * A scope's members are a HASH (member id → member JSON) and a ZSET of their
 * expiries under one hash tag, so every change to a scope is one atomic Lua
 * script and racing nodes never both report a removal. Scopes with members
 * to expire are found through the same sweep index as company presence
 * (under its own key, `{<prefix>:scoped:presence}`), see `presence-sweep.ts`.
 */
export function redisScopedPresenceStore(options: RedisScopedPresenceStoreOptions): ScopedPresenceStore {
  const { redis } = options;
  const prefix = checkPrefix(options.prefix ?? DEFAULT_PREFIX);
  const keyTtlMs = options.keyTtlMs ?? DEFAULT_PRESENCE_KEY_TTL_MS;
  const now = options.now ?? Date.now;
  const index = new SweepIndex(redis, `${prefix}:scoped`);

  const keysOf = (companyId: string, scope: string) => {
    const keys = scopedPresenceKeys(prefix, companyId, scope);
    return [keys.expiry, keys.members];
  };
  /** How the sweep index names a scope: both ids encoded (so neither holds a `:`), joined by one. */
  const indexed = (companyId: string, scope: string) => `${encodeId(companyId)}:${encodeId(scope)}`;

  const sweepScope = async (name: string, at: number) => {
    const [company = "", scope = ""] = name.split(":");
    const companyId = decodeId(company);
    const scopeId = decodeId(scope);
    const [next, ...swept] = (await runScript(redis, SWEEP, keysOf(companyId, scopeId), [at])) as string[];
    const entries = swept.map((json): ScopedPresenceEntry => ({ companyId, scope: scopeId, member: JSON.parse(json) as ScopedPresenceMember }));
    return { entries, next: next === "" || next === undefined ? null : Number(next) };
  };

  return {
    async put(entry, ttlMs) {
      const expiresAt = now() + ttlMs;
      const added = await runScript(redis, PUT, keysOf(entry.companyId, entry.scope), [
        entry.member.memberId,
        JSON.stringify(entry.member),
        expiresAt,
        ttlMs + keyTtlMs,
      ]);
      await index.touch(indexed(entry.companyId, entry.scope), expiresAt);
      return Number(added) === 1;
    },

    async remove(companyId, scope, memberId) {
      const json = (await runScript(redis, REMOVE, keysOf(companyId, scope), [memberId])) as string | null;
      return typeof json === "string" ? { companyId, scope, member: JSON.parse(json) as ScopedPresenceMember } : null;
    },

    async heartbeat(entries, ttlMs) {
      const expiresAt = now() + ttlMs;
      const byScope = new Map<string, ScopedPresenceEntry[]>();
      for (const entry of entries) {
        const name = indexed(entry.companyId, entry.scope);
        const group = byScope.get(name);
        if (group) group.push(entry);
        else byScope.set(name, [entry]);
      }
      let failure: { error: unknown } | undefined;
      const outcomes = await Promise.allSettled(
        [...byScope].map(async ([name, inScope]) => {
          const { companyId, scope } = inScope[0]!;
          const keys = keysOf(companyId, scope);
          const missing = new Set((await runScript(redis, HEARTBEAT, keys, [expiresAt, ttlMs + keyTtlMs, ...inScope.map((entry) => entry.member.memberId)])) as string[]);
          let readded = new Set<string>();
          if (missing.size > 0) {
            const args = inScope.filter((entry) => missing.has(entry.member.memberId)).flatMap((entry) => [entry.member.memberId, JSON.stringify(entry.member)]);
            readded = new Set((await runScript(redis, READD, keys, [expiresAt, ttlMs + keyTtlMs, ...args])) as string[]);
          }
          // The next heartbeat touches the index again; members already re-added must still reach the caller.
          await index.touch(name, expiresAt).catch((error: unknown) => {
            failure ??= { error };
          });
          return inScope.filter((entry) => readded.has(entry.member.memberId));
        }),
      );
      const readded: ScopedPresenceEntry[] = [];
      for (const outcome of outcomes) {
        if (outcome.status === "fulfilled") readded.push(...outcome.value);
        else failure ??= { error: outcome.reason };
      }
      if (failure && readded.length === 0) throw failure.error;
      return readded;
    },

    async sweepExpired() {
      return index.sweepDue(now, async (encodedScope, at) => {
        const { entries, next } = await sweepScope(encodedScope, at);
        return { swept: entries, next };
      });
    },

    async list(companyId, scope, limit) {
      const listed = ((await runScript(redis, LIST, keysOf(companyId, scope), [now()])) as string[]).map((json) => JSON.parse(json) as ScopedPresenceMember);
      listed.sort(compareMembers);
      return { members: limit === undefined ? listed : listed.slice(0, limit), total: listed.length };
    },

    async ping() {
      await redis.ping();
    },
  };
}
