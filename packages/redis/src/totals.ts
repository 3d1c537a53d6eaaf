import { luaScript, runScript, type RedisClient } from "./script.js";

// KEYS[1]: the totals hash. ARGV: field, increment, field, increment…
const ADD_TOTALS = luaScript(`
for i = 1, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 1
`);

/** How long counts wait in this process before they are added to the hash. */
const FLUSH_AFTER_MS = 1000;

/**
 * Counters every node adds to one Redis hash: the inbox's drops, the streams'
 * trims. A store counts in a script on its own key's slot, but the hash lives
 * in another slot, so the counts are added apart from the write, at most
 * {@link FLUSH_AFTER_MS} later, all that gathered meanwhile in one script:
 * a full stream trims on every append, and a script (and a round trip the
 * append waited for) per append was what that cost. The store's write never
 * waits for them. If adding them fails they wait for the next try; `read()`
 * adds this process's first, and rejects while they cannot be added. Other
 * nodes' counts show in `read()` within about a second.
 */
export class SharedTotals<F extends string> {
  private pending: Record<F, number>;
  private timer: NodeJS.Timeout | undefined;

  /** `fields` are the hash's fields, in the order `read()` lists them. */
  constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
    private readonly fields: readonly F[],
  ) {
    this.pending = this.zeros();
  }

  /** Counts, to be added to the hash within about a second; never waits, never throws. */
  add(counts: Partial<Record<F, number>>): void {
    let any = false;
    for (const field of this.fields) {
      const count = counts[field] ?? 0;
      if (count === 0) continue;
      this.pending[field] += count;
      any = true;
    }
    if (any) this.schedule();
  }

  /**
   * Adds the waiting counts in about a second; tries again a second after a
   * failure, until the client is closed for good. Unref'd: counts still
   * waiting when the process ends are lost, never the writes they count.
   */
  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush().catch(() => {
        if ((this.redis as { status?: string }).status !== "end") this.schedule();
      });
    }, FLUSH_AFTER_MS).unref();
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
