import type { DeviceRef, PresenceStore, PresenceTransition } from "@truss/core";
import type { PresenceUser } from "@truss/protocol";
import { checkPrefix, companyPresenceKeys, decodeId, DEFAULT_PREFIX, encodeId, type CompanyPresenceKeys } from "./keys.js";
import { SweepIndex } from "./presence-sweep.js";
import { LUA_AS_ARRAY, luaScript, runScript, type RedisClient } from "./script.js";

/** Options of {@link redisPresenceStore}. */
export interface RedisPresenceStoreOptions {
  /** The ioredis client (or Cluster). See the README for the recommended options. */
  redis: RedisClient;
  /** Prefix of every key. Default `"truss"`. */
  prefix?: string;
  /**
   * How long a company's presence keys outlive its latest connect or
   * heartbeat, in ms, on top of the device TTL. Sweeps remove expired devices
   * long before this; it only garbage-collects the keys of companies that no
   * running node sweeps any more. Default one hour.
   */
  keyTtlMs?: number;
  /** Clock in epoch ms, for tests. Default `Date.now`; nodes sharing a Redis should run NTP. */
  now?: () => number;
}

/** Default for {@link RedisPresenceStoreOptions.keyTtlMs}: one hour. */
export const DEFAULT_PRESENCE_KEY_TTL_MS = 60 * 60 * 1000;

// Shared by the scripts below. A device lives in three keys of its company
// (the user's expiry ZSET, the company's expiry ZSET, the detail HASH); these
// helpers keep the three in step.
const HELPERS = `
local function keepFor(key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end
local function forgetDevices(expiryKey, detailKey, userKey, user)
  local devices = redis.call('ZRANGE', userKey, 0, -1)
  for i = 1, #devices do
    redis.call('ZREM', expiryKey, user .. ':' .. devices[i])
    redis.call('HDEL', detailKey, user .. ':' .. devices[i])
  end
  redis.call('DEL', userKey)
end
local function connectedAtOf(detailKey, member, fallback)
  local detail = redis.call('HGET', detailKey, member)
  if detail then return string.match(detail, '^([^:]+)') end
  return fallback
end
`;

// KEYS: expiry, devices, users, user. ARGV: user, device, now, expiresAt, keepMs.
// Returns 1 when this is the user's first live device.
const CONNECT = luaScript(`${HELPERS}
local member = ARGV[1] .. ':' .. ARGV[2]
local score = redis.call('ZSCORE', KEYS[4], ARGV[2])
local connectedAt = ARGV[3]
local cameOnline = 0
if score and tonumber(score) > tonumber(ARGV[3]) then
  connectedAt = connectedAtOf(KEYS[2], member, ARGV[3])
elseif redis.call('ZCOUNT', KEYS[4], '(' .. ARGV[3], '+inf') == 0 then
  -- Devices that lapsed unswept belong to the previous session; a later
  -- sweep must not report the user offline while this one is live.
  forgetDevices(KEYS[1], KEYS[2], KEYS[4], ARGV[1])
  cameOnline = 1
end
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[4], member)
redis.call('HSET', KEYS[2], member, connectedAt .. ':' .. ARGV[3])
redis.call('SADD', KEYS[3], ARGV[1])
for i = 1, 4 do keepFor(KEYS[i], tonumber(ARGV[5])) end
return cameOnline
`);

// KEYS: expiry, devices, users, then one user key per device.
// ARGV: now, expiresAt, keepMs, then user and device for each device.
// Returns the users who came back online: those with no device entry left
// (swept, so reported offline, or lost with Redis's data) before this
// re-added one. The entry it adds makes the next device of the same user, in
// this call or a racing one, find an entry, so each is returned once.
const HEARTBEAT = luaScript(`${HELPERS}${LUA_AS_ARRAY}
local keep = tonumber(ARGV[3])
local cameOnline = {}
for i = 1, #KEYS - 3 do
  local userKey, user, device = KEYS[3 + i], ARGV[2 + 2 * i], ARGV[3 + 2 * i]
  local member = user .. ':' .. device
  local connectedAt = ARGV[1]
  if redis.call('ZCARD', userKey) == 0 then cameOnline[#cameOnline + 1] = user end
  -- A lapsed but unswept device is revived as it was: no offline transition
  -- was reported for it.
  if redis.call('ZSCORE', userKey, device) then connectedAt = connectedAtOf(KEYS[2], member, ARGV[1]) end
  redis.call('ZADD', userKey, ARGV[2], device)
  redis.call('ZADD', KEYS[1], ARGV[2], member)
  redis.call('HSET', KEYS[2], member, connectedAt .. ':' .. ARGV[1])
  redis.call('SADD', KEYS[3], user)
  keepFor(userKey, keep)
end
for i = 1, 3 do keepFor(KEYS[i], keep) end
return asArray(cameOnline)
`);

// KEYS: expiry, devices, users, user. ARGV: user, device, now.
// Returns 1 when this was the user's last live device. A device that already
// expired is left for the sweep, which then reports the user exactly once.
const DISCONNECT = luaScript(`${HELPERS}
local score = redis.call('ZSCORE', KEYS[4], ARGV[2])
if not score or tonumber(score) <= tonumber(ARGV[3]) then return 0 end
local member = ARGV[1] .. ':' .. ARGV[2]
redis.call('ZREM', KEYS[4], ARGV[2])
redis.call('ZREM', KEYS[1], member)
redis.call('HDEL', KEYS[2], member)
if redis.call('ZCOUNT', KEYS[4], '(' .. ARGV[3], '+inf') > 0 then return 0 end
forgetDevices(KEYS[1], KEYS[2], KEYS[4], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
`);

// KEYS: expiry, devices, users. ARGV: now, user key base.
// Per-user keys are built here rather than declared: a sweep cannot know its
// users in advance, and they share the company's hash tag, so they are in the
// script's slot (the pattern BullMQ relies on for Redis Cluster).
// Returns the next expiry ('' when none) followed by the users who went offline.
const SWEEP_COMPANY = luaScript(`${LUA_AS_ARRAY}
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local seen, touched = {}, {}
for i = 1, #expired do
  local member = expired[i]
  local cut = string.find(member, ':', 1, true)
  local user = string.sub(member, 1, cut - 1)
  redis.call('ZREM', KEYS[1], member)
  redis.call('HDEL', KEYS[2], member)
  redis.call('ZREM', ARGV[2] .. user, string.sub(member, cut + 1))
  if not seen[user] then
    seen[user] = true
    touched[#touched + 1] = user
  end
end
local result = { '' }
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] then result[1] = first[2] end
for i = 1, #touched do
  if redis.call('ZCARD', ARGV[2] .. touched[i]) == 0 then
    redis.call('SREM', KEYS[3], touched[i])
    result[#result + 1] = touched[i]
  end
end
return asArray(result)
`);

// KEYS: users, devices. ARGV: now, user key base.
// Returns user, device, '<connectedAt>:<lastSeen>' for every live device.
const LIST = luaScript(`${LUA_AS_ARRAY}
local users = redis.call('SMEMBERS', KEYS[1])
local listed = {}
for i = 1, #users do
  local live = redis.call('ZRANGEBYSCORE', ARGV[2] .. users[i], '(' .. ARGV[1], '+inf')
  for j = 1, #live do
    listed[#listed + 1] = users[i]
    listed[#listed + 1] = live[j]
    listed[#listed + 1] = redis.call('HGET', KEYS[2], users[i] .. ':' .. live[j]) or ''
  end
end
return asArray(listed)
`);

/**
 * A {@link PresenceStore} on Redis, shared by every engine node.
 *
 * Each device has an expiry score; reads ignore expired devices, so a dead
 * node's users are offline as soon as their TTL passes, and `sweepExpired()`
 * removes them and reports each user once across all nodes. Every transition
 * is decided inside one Lua script, so racing nodes never both report it. A
 * company's keys share the hash tag `{<prefix>:c:<company>}` (one cluster
 * slot); see `presence-sweep.ts` for how sweeps find due companies.
 */
export function redisPresenceStore(options: RedisPresenceStoreOptions): PresenceStore {
  const { redis } = options;
  const prefix = checkPrefix(options.prefix ?? DEFAULT_PREFIX);
  const keyTtlMs = options.keyTtlMs ?? DEFAULT_PRESENCE_KEY_TTL_MS;
  const now = options.now ?? Date.now;
  const index = new SweepIndex(redis, prefix);

  const keysOf = (companyId: string): CompanyPresenceKeys => companyPresenceKeys(prefix, companyId);
  const companyKeys = (keys: CompanyPresenceKeys) => [keys.expiry, keys.devices, keys.users];
  const deviceArgs = (device: DeviceRef) => [encodeId(device.userId), encodeId(device.deviceId)];

  const sweepCompany = async (encodedCompany: string, at: number) => {
    const companyId = decodeId(encodedCompany);
    const keys = keysOf(companyId);
    const [next, ...users] = (await runScript(redis, SWEEP_COMPANY, companyKeys(keys), [at, keys.userBase])) as string[];
    const transitions = users.map((user): PresenceTransition => ({ companyId, userId: decodeId(user), online: false }));
    return { transitions, next: next === "" || next === undefined ? null : Number(next) };
  };

  return {
    async connect(device, ttlMs) {
      const keys = keysOf(device.companyId);
      const at = now();
      const expiresAt = at + ttlMs;
      const user = keys.userBase + encodeId(device.userId);
      const cameOnline = await runScript(redis, CONNECT, [...companyKeys(keys), user], [
        ...deviceArgs(device),
        at,
        expiresAt,
        ttlMs + keyTtlMs,
      ]);
      await index.touch(encodeId(device.companyId), expiresAt);
      return Number(cameOnline) === 1 ? transition(device, true) : null;
    },

    async heartbeat(devices, ttlMs) {
      const at = now();
      const expiresAt = at + ttlMs;
      const byCompany = new Map<string, DeviceRef[]>();
      for (const device of devices) {
        const group = byCompany.get(device.companyId);
        if (group) group.push(device);
        else byCompany.set(device.companyId, [device]);
      }
      let failure: { error: unknown } | undefined;
      const outcomes = await Promise.allSettled(
        [...byCompany].map(async ([companyId, inCompany]) => {
          const keys = keysOf(companyId);
          const userKeys = inCompany.map((device) => keys.userBase + encodeId(device.userId));
          const cameOnline = (await runScript(redis, HEARTBEAT, [...companyKeys(keys), ...userKeys], [
            at,
            expiresAt,
            ttlMs + keyTtlMs,
            ...inCompany.flatMap(deviceArgs),
          ])) as string[];
          // The next heartbeat touches the index again, so a failed touch
          // must not cost the transitions the script already recorded.
          await index.touch(encodeId(companyId), expiresAt).catch((error: unknown) => {
            failure ??= { error };
          });
          return cameOnline.map((user): PresenceTransition => ({ companyId, userId: decodeId(user), online: true }));
        }),
      );
      const transitions: PresenceTransition[] = [];
      for (const outcome of outcomes) {
        if (outcome.status === "fulfilled") transitions.push(...outcome.value);
        else failure ??= { error: outcome.reason };
      }
      // As in sweepExpired: users the store already counts as back online
      // must reach the caller, or nobody would ever announce them.
      if (failure && transitions.length === 0) throw failure.error;
      return transitions;
    },

    async disconnect(device) {
      const keys = keysOf(device.companyId);
      const user = keys.userBase + encodeId(device.userId);
      const wentOffline = await runScript(redis, DISCONNECT, [...companyKeys(keys), user], [...deviceArgs(device), now()]);
      return Number(wentOffline) === 1 ? transition(device, false) : null;
    },

    async sweepExpired() {
      return index.sweepDue(now, async (encodedCompany, at) => {
        const { transitions, next } = await sweepCompany(encodedCompany, at);
        return { swept: transitions, next };
      });
    },

    async isOnline(companyId, userId) {
      const user = keysOf(companyId).userBase + encodeId(userId);
      return (await redis.zcount(user, `(${now()}`, "+inf")) > 0;
    },

    async deviceIds(companyId, userId) {
      const user = keysOf(companyId).userBase + encodeId(userId);
      const live = await redis.zrangebyscore(user, `(${now()}`, "+inf");
      return live.map(decodeId);
    },

    async list(companyId) {
      const keys = keysOf(companyId);
      const flat = (await runScript(redis, LIST, [keys.users, keys.devices], [now(), keys.userBase])) as string[];
      return groupListing(flat);
    },

    async ping() {
      await redis.ping();
    },
  };
}

/** Turns the LIST script's flat triples into users ordered by id, devices oldest first. */
function groupListing(flat: readonly string[]): PresenceUser[] {
  const users = new Map<string, PresenceUser>();
  for (let index = 0; index < flat.length; index += 3) {
    const userId = decodeId(String(flat[index]));
    const [connectedAt = 0, lastSeen = 0] = String(flat[index + 2]).split(":").map(Number);
    let user = users.get(userId);
    if (!user) {
      user = { userId, devices: [] };
      users.set(userId, user);
    }
    user.devices.push({ deviceId: decodeId(String(flat[index + 1])), connectedAt, lastSeen });
  }
  for (const user of users.values()) user.devices.sort((a, b) => a.connectedAt - b.connectedAt);
  // Code-unit order, like the in-memory store.
  return [...users.values()].sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0));
}

function transition(device: DeviceRef, online: boolean): PresenceTransition {
  return { companyId: device.companyId, userId: device.userId, online };
}
