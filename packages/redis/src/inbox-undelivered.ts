import type { UndeliveredClaim, UndeliveredOutcome, UserKey } from "@truss/core";
import type { InboxMessage } from "@truss/protocol";
import { decodeId, encodeId, inboxKeys, undeliveredIndexKeys, type SweepIndexKeys } from "./keys.js";
import { SETTLE, TOUCH } from "./presence-sweep.js";
import { LUA_AS_ARRAY, LUA_SERVER_NOW, luaScript, runScript, type RedisClient } from "./script.js";

/**
 * Undelivered calls of the Redis inbox. Each user's pending calls are a
 * sorted set beside their message stream, in the user's hash tag, scored by
 * when each may next be claimed, and a second one scored by their message's
 * ms, so an ack ranges only over the calls it covers: the append records a call, the ack cancels
 * the calls it covers and a claim leases due calls, each in one script, so
 * no two claimers get one call within its lease, on one server or a
 * cluster. Calls whose message the TTL or the cap dropped are dropped by the
 * claim (and past `2 × maxLength` by the append), so a user's set never
 * outgrows their inbox by more than that.
 *
 * Which users have due calls is a global index in another slot, kept as the
 * presence sweep's is (see presence-sweep.ts): an append `touch`es it
 * just before the user's script, without waiting for an answer (with this
 * node's guess of the due time), and again after it (with the server's);
 * a claim leases index entries and then settles each to the user's next due
 * time unless a touch came in between. So a node that dies once its append
 * went out leaves the call indexed; a touch whose append never landed only
 * costs a claim that finds nothing due and settles the user away.
 */

/** Lua: whether inbox id `a` is at or before `b` (canonical decimal parts, compared by length then as text). */
const LUA_ID_AT_OR_BEFORE = `
local function greater(a, b)
  if #a ~= #b then return #a > #b end
  return a > b
end
local function atOrBefore(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  if ams ~= bms then return greater(bms, ams) end
  return not greater(aseq, bseq)
end
`;

/**
 * Lua, for the inbox's scripts: drops the calls of `KEYS[undelivered]` whose
 * message is at or before `upTo` (an ack), or gone from the log (`upTo`
 * nil: everything before the log's first entry). It ranges over `byId`,
 * the same ids scored by their ms, only up to that id, so its cost grows
 * with the calls it drops, not with those left pending. An index that does
 * not hold every pending call (calls recorded before it existed) is rebuilt
 * first.
 */
export const LUA_DROP_CALLS = `${LUA_ID_AT_OR_BEFORE}
local function indexCallsById(undelivered, byId)
  redis.call('DEL', byId)
  for _, id in ipairs(redis.call('ZRANGE', undelivered, 0, -1)) do
    redis.call('ZADD', byId, string.match(id, '^(%d+)-'), id)
  end
end
local function dropCalls(undelivered, byId, attempts, log, upTo)
  local pending = redis.call('ZCARD', undelivered)
  if pending == 0 then return end
  if redis.call('ZCARD', byId) ~= pending then indexCallsById(undelivered, byId) end
  local before = upTo
  local inclusive = upTo ~= nil
  if not before then
    local first = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)[1]
    if first then before = first[1] end
  end
  local maxMs = '+inf'
  if before then maxMs = string.match(before, '^(%d+)-') end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', byId, '-inf', maxMs)) do
    if not before or (atOrBefore(id, before) and (inclusive or id ~= before)) then
      redis.call('ZREM', undelivered, id)
      redis.call('ZREM', byId, id)
      redis.call('HDEL', attempts, id)
    end
  end
end
`;

// KEYS: log, undelivered, attempts, undeliveredById. ARGV: ttlMs, leaseMs, limit.
// Trims the log by age (counted, as a read does), then leases up to `limit`
// due calls whose message is still in the log and drops those whose message
// is gone. Returns expired, { id, attempt, fields }..., the user's next
// score ('' when none is left) and the server's now.
const CLAIM = luaScript(`${LUA_SERVER_NOW}${LUA_AS_ARRAY}
local minId = string.format('%.0f', now - tonumber(ARGV[1]) + 1)
local expired = redis.call('XTRIM', KEYS[1], 'MINID', minId)
local claimed = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))) do
  local entry = redis.call('XRANGE', KEYS[1], id, id)[1]
  if entry then
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), id)
    claimed[#claimed + 1] = { id, redis.call('HINCRBY', KEYS[3], id, 1), entry[2] }
  else
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[4], id)
    redis.call('HDEL', KEYS[3], id)
  end
end
local nextCall = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2] or ''
return { expired, asArray(claimed), nextCall, now }
`);

// KEYS: undelivered, attempts, undeliveredById. ARGV: id, attempt, retryAfterMs ('' for done).
// A stale claim (another claim took the call, or an ack cancelled it) changes
// nothing. Returns the call's new score after a retry, else ''.
const SETTLE_CALL = luaScript(`${LUA_SERVER_NOW}
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] or not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return '' end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return ''
end
local due = now + tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], due, ARGV[1])
return tostring(due)
`);

// KEYS: due, writes. ARGV: limit, leaseMs. Leases up to `limit` users due
// by the server's clock in the index. Returns now, then member, generation...
const CLAIM_USERS = luaScript(`${LUA_SERVER_NOW}${LUA_AS_ARRAY}
local claimed = { now }
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))) do
  claimed[#claimed + 1] = member
  claimed[#claimed + 1] = redis.call('HGET', KEYS[2], member) or '0'
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), member)
end
return asArray(claimed)
`);

/** The undelivered calls of one Redis inbox (one prefix). */
export class UndeliveredCallsIndex {
  private readonly index: SweepIndexKeys;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly ttlMs: number,
    private readonly onExpired: (count: number) => void,
    /** A stream entry's id and fields as the message `read` returns. */
    private readonly messageOf: (id: string, fields: readonly string[]) => InboxMessage,
  ) {
    this.index = undeliveredIndexKeys(prefix);
  }

  /** Tells the index a call of `user` is due at `due` (the server's epoch ms), after the user's script recorded it. */
  async touch(user: UserKey, due: number | string): Promise<void> {
    const { due: dueKey, writes, generation } = this.index;
    await runScript(this.redis, TOUCH, [dueKey, writes, generation], [memberOf(user), due]);
  }

  /** See `InboxStore.claimUndelivered`. A failure after some calls were leased returns those; their users are due again after the lease. */
  async claim(limit: number, leaseMs: number): Promise<UndeliveredClaim[]> {
    if (!(limit > 0)) return [];
    const { due, writes } = this.index;
    const [now, ...flat] = (await runScript(this.redis, CLAIM_USERS, [due, writes], [Math.floor(limit), leaseMs])) as string[];
    const claims: UndeliveredClaim[] = [];
    try {
      for (let index = 0; index < flat.length; index += 2) {
        const member = String(flat[index]);
        const generation = String(flat[index + 1]);
        // A user left over once the limit is reached is due again at once.
        const next = claims.length >= limit ? String(now) : await this.claimFrom(userOf(member), limit - claims.length, leaseMs, claims);
        const settled = Number(await runScript(this.redis, SETTLE, [due, writes], [member, generation, next]));
        // A write touched the user meanwhile, to its own due time: lower it to the calls this claim left due, if sooner.
        if (settled === 0 && next !== "") await runScript(this.redis, TOUCH, [due, writes, this.index.generation], [member, next]);
      }
    } catch (error) {
      if (claims.length === 0) throw error;
    }
    return claims;
  }

  /** Claims up to `limit` of one user's due calls into `claims`; resolves with the user's next score, '' for none. */
  private async claimFrom(user: UserKey, limit: number, leaseMs: number, claims: UndeliveredClaim[]): Promise<string> {
    const keys = inboxKeys(this.prefix, user.companyId, user.userId);
    const [expired, claimed, next] = (await runScript(this.redis, CLAIM, [keys.log, keys.undelivered, keys.undeliveredAttempts, keys.undeliveredById], [this.ttlMs, leaseMs, limit])) as [
      number,
      Array<[string, number, string[]]>,
      string,
    ];
    this.onExpired(Number(expired));
    for (const [id, attempt, fields] of claimed) claims.push({ user, message: this.messageOf(id, fields), attempt: Number(attempt) });
    return String(next);
  }

  /** See `InboxStore.settleUndelivered`. */
  async settle(claim: UndeliveredClaim, outcome: UndeliveredOutcome): Promise<void> {
    const keys = inboxKeys(this.prefix, claim.user.companyId, claim.user.userId);
    const retry = outcome === "done" ? "" : Math.max(0, Math.floor(outcome.retryAfterMs));
    const due = (await runScript(this.redis, SETTLE_CALL, [keys.undelivered, keys.undeliveredAttempts, keys.undeliveredById], [claim.message.id, claim.attempt, retry])) as string;
    if (due !== "") await this.touch(claim.user, due);
  }
}

/** The index member of a user: both ids encoded, so the `:` between them is unambiguous. */
function memberOf(user: UserKey): string {
  return `${encodeId(user.companyId)}:${encodeId(user.userId)}`;
}

function userOf(member: string): UserKey {
  const [companyId = "", userId = ""] = member.split(":");
  return { companyId: decodeId(companyId), userId: decodeId(userId) };
}
