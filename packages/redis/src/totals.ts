import { luaScript, runScript, type RedisClient } from "./script.js";

// KEYS[1]: the totals hash. ARGV: field, increment, field, increment…
const ADD_TOTALS = luaScript(`
for i = 1, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 1
`);

/**
 * Counters every node adds to one Redis hash: the inbox's drops, the streams'
 * trims. A store counts in a script on its own key's slot, but the hash lives
 * in another slot, so the counts are added right after. If that fails, the
 * store's write still stands (so `append` still resolves) and the counts wait
 * in this process until the next call adds them; `read()` rejects while they
 * cannot be added.
 */
export class SharedTotals<F extends string> {
  private pending: Record<F, number>;

  /** `fields` are the hash's fields, in the order `read()` lists them. */
  constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
    private readonly fields: readonly F[],
  ) {
    this.pending = this.zeros();
  }

  /** Adds counts to the hash; on failure keeps them for the next call instead of rejecting. */
  async add(counts: Partial<Record<F, number>>): Promise<void> {
    for (const field of this.fields) this.pending[field] += counts[field] ?? 0;
    await this.flush().catch(() => undefined);
  }

  /** The totals of every node, once this node's waiting counts are added. */
  async read(): Promise<Record<F, number>> {
    await this.flush();
    const values = await this.redis.hmget(this.key, ...this.fields);
    return Object.fromEntries(this.fields.map((field, index) => [field, Number(values[index] ?? 0)])) as Record<F, number>;
  }

  private async flush(): Promise<void> {
    const counts = this.pending;
    if (this.fields.every((field) => counts[field] === 0)) return;
    this.pending = this.zeros();
    try {
      await runScript(this.redis, ADD_TOTALS, [this.key], this.fields.flatMap((field) => [field, counts[field]]));
    } catch (error) {
      for (const field of this.fields) this.pending[field] += counts[field];
      throw error;
    }
  }

  private zeros(): Record<F, number> {
    return Object.fromEntries(this.fields.map((field) => [field, 0])) as Record<F, number>;
  }
}
