import { sweepIndexKeys, type SweepIndexKeys } from "./keys.js";
import { LUA_AS_ARRAY, luaScript, runScript, type RedisClient } from "./script.js";

/**
 * The index that lets `sweepExpired()` find companies with expired devices
 * without scanning every key.
 *
 * A company's presence keys share one hash tag, so a cluster keeps each
 * company in one slot and its sweep is one atomic script. No script may also
 * touch a global index in another slot, so the index is kept beside them with
 * separate scripts, and a write generation closes the race between the two:
 *
 * 1. A writer (connect, heartbeat) first writes its company's keys, then
 *    `touch`es the index: it bumps the company's generation and lowers the
 *    company's due time to the new expiry.
 * 2. A sweeper `claim`s due companies: it notes each one's generation and
 *    pushes its due time a lease ahead, so another node's sweep skips it and
 *    a sweeper that dies mid-way only delays it by the lease.
 * 3. After sweeping a company the sweeper `settle`s it: it sets the due time
 *    to the company's next expiry (or drops the company when nothing is left),
 *    but only if the generation is unchanged. If a writer touched the company
 *    in between, its touch already made the company due again.
 *
 * A writer that crashes between its write and its touch leaves a device the
 * index may not know about; it is still offline once expired (reads compare
 * expiry), and the company is indexed again by its next connect or heartbeat.
 */

/** How long a claimed company is left to the sweeper that claimed it. */
export const SWEEP_LEASE_MS = 10_000;
/** Companies claimed per round trip. */
const SWEEP_BATCH = 100;

/** KEYS: due, writes, generation. ARGV: member, due time. Bumps the member's generation and lowers its due time (also used by the inbox's undelivered index). */
export const TOUCH = luaScript(`
local generation = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[2], ARGV[1], tostring(generation))
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not due or tonumber(due) > tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
end
return 1
`);

const CLAIM = luaScript(`${LUA_AS_ARRAY}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local claimed = {}
for i = 1, #due do
  claimed[#claimed + 1] = due[i]
  claimed[#claimed + 1] = redis.call('HGET', KEYS[2], due[i]) or '0'
  redis.call('ZADD', KEYS[1], ARGV[2], due[i])
end
return asArray(claimed)
`);

/** KEYS: due, writes. ARGV: member, generation seen, next due time ('' to drop). Applies only if the generation is unchanged (also used by the inbox's undelivered index). */
export const SETTLE = luaScript(`
if (redis.call('HGET', KEYS[2], ARGV[1]) or '0') ~= ARGV[2] then
  return 0
end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1
`);

/** A company a sweeper claimed, with the write generation it saw. */
export interface ClaimedCompany {
  /** The encoded company id, as the index holds it. */
  encodedCompany: string;
  /** The company's write generation when it was claimed. */
  generation: string;
}

/** The sweep index of one key prefix. */
export class SweepIndex {
  private readonly keys: SweepIndexKeys;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
  ) {
    this.keys = sweepIndexKeys(prefix);
  }

  /** Records a write to the company whose earliest new expiry is `expiresAt`. */
  async touch(encodedCompany: string, expiresAt: number): Promise<void> {
    const { due, writes, generation } = this.keys;
    await runScript(this.redis, TOUCH, [due, writes, generation], [encodedCompany, expiresAt]);
  }

  /** Claims up to a batch of companies due at `now` for {@link SWEEP_LEASE_MS}. */
  async claim(now: number): Promise<ClaimedCompany[]> {
    const { due, writes } = this.keys;
    const flat = (await runScript(this.redis, CLAIM, [due, writes], [now, now + SWEEP_LEASE_MS, SWEEP_BATCH])) as string[];
    const claimed: ClaimedCompany[] = [];
    for (let index = 0; index < flat.length; index += 2) {
      claimed.push({ encodedCompany: String(flat[index]), generation: String(flat[index + 1]) });
    }
    return claimed;
  }

  /** Sets a swept company's next due time (`null`: nothing left to expire) unless a writer touched it since the claim. */
  async settle(claimed: ClaimedCompany, nextExpiry: number | null): Promise<void> {
    const { due, writes } = this.keys;
    const next = nextExpiry === null ? "" : String(nextExpiry);
    await runScript(this.redis, SETTLE, [due, writes], [claimed.encodedCompany, claimed.generation, next]);
  }

  /**
   * Claims and sweeps every company due at `clock()`, a batch at a time, each
   * company settled with its next expiry; resolves what the sweeps took out.
   * What was already taken out of Redis reaches the caller even when another
   * company's sweep failed (that company stays claimed and is retried after
   * its lease); only when nothing was swept does the failure reject.
   */
  async sweepDue<T>(clock: () => number, sweep: (encodedCompany: string, now: number) => Promise<{ swept: T[]; next: number | null }>): Promise<T[]> {
    const swept: T[] = [];
    let failure: { error: unknown } | undefined;
    for (;;) {
      const claimed = await this.claim(clock());
      const outcomes = await Promise.allSettled(
        claimed.map(async (company) => {
          const result = await sweep(company.encodedCompany, clock());
          await this.settle(company, result.next);
          return result.swept;
        }),
      );
      for (const outcome of outcomes) {
        if (outcome.status === "fulfilled") swept.push(...outcome.value);
        else failure ??= { error: outcome.reason };
      }
      if (failure || claimed.length < SWEEP_BATCH) break;
    }
    if (failure && swept.length === 0) throw failure.error;
    return swept;
  }
}
