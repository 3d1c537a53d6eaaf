import { createHash } from "node:crypto";
import type { Cluster, Redis } from "ioredis";

/** The ioredis clients the stores accept: one server (or Sentinel) or a Redis Cluster. */
export type RedisClient = Redis | Cluster;

/** A Lua script with its SHA1, so it is sent in full only once per server. */
export interface LuaScript {
  /** The Lua source. */
  readonly source: string;
  /** The SHA1 that `EVALSHA` names it by. */
  readonly sha1: string;
}

/** Wraps Lua source for {@link runScript}. */
export function luaScript(source: string): LuaScript {
  return { source, sha1: createHash("sha1").update(source).digest("hex") };
}

/**
 * Runs a script atomically: `EVALSHA` first, `EVAL` when the server does not
 * have it cached yet (a fresh server, a restart, another cluster node).
 *
 * This is what ioredis's `defineCommand` does, written out so the number of
 * keys can vary per call (a heartbeat names one key per device) and the
 * caller's client object is never given extra methods. Every error other than
 * `NOSCRIPT` reaches the caller unchanged.
 */
export async function runScript(
  redis: RedisClient,
  script: LuaScript,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  try {
    return await redis.evalsha(script.sha1, keys.length, ...keys, ...args);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
    return redis.eval(script.source, keys.length, ...keys, ...args);
  }
}

/**
 * Lua helper for scripts that return a table they filled one element at a
 * time: `return asArray(t)`. Redis needs nothing of the sort, but ioredis-mock
 * recognises a Lua table as an array only if its keys were set from the last
 * to the first, and would otherwise hand back `undefined`. Copying backwards
 * is O(n) and keeps the same scripts running on both.
 */
export const LUA_AS_ARRAY = `
local function asArray(t)
  local out = {}
  for i = #t, 1, -1 do out[i] = t[i] end
  return out
end
`;

/**
 * Lua: `now`, the Redis server's clock in epoch ms. Scripts that time
 * anything use it rather than a node's clock, so every node agrees with the
 * stream ids `XADD *` assigns.
 */
export const LUA_SERVER_NOW = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
`;
