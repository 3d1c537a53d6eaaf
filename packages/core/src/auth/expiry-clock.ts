/**
 * One timer for the expiry of every connection on a node. A connection is
 * due at a whole second (its deadline rounded up), kept in that second's
 * bucket; a tick at the start of each second serves the buckets whose second
 * has come, and ticks only while something is due. A timer per connection
 * would cost each of them a `Timeout`, its closures and their contexts, for
 * as long as it is open; here it costs a place in a Set.
 *
 * Nothing is served before its deadline, and at most a second (and the
 * event loop's delay) after it.
 */
export class ExpiryClock<T> {
  /** Whole second → what is due then. */
  private readonly buckets = new Map<number, Set<T>>();
  /** The second each scheduled item is due at, to cancel it. */
  private readonly dueAt = new Map<T, number>();
  /** The last second served. */
  private served = Math.floor(Date.now() / 1000);
  private timer: NodeJS.Timeout | undefined;

  /** @param due called once for each item whose deadline has come, with the time. */
  constructor(private readonly due: (item: T, now: number) => void) {}

  /** Serves `item` once `at` (epoch ms) has passed; replaces its earlier deadline. */
  schedule(item: T, at: number): void {
    this.cancel(item);
    // Never a second already served: the next tick serves it.
    const second = Math.max(Math.ceil(at / 1000), this.served + 1);
    let bucket = this.buckets.get(second);
    if (!bucket) this.buckets.set(second, (bucket = new Set()));
    bucket.add(item);
    this.dueAt.set(item, second);
    if (!this.timer) this.arm();
  }

  /** Forgets `item`'s deadline. */
  cancel(item: T): void {
    const second = this.dueAt.get(item);
    if (second === undefined) return;
    this.dueAt.delete(item);
    const bucket = this.buckets.get(second);
    bucket?.delete(item);
    if (bucket?.size === 0) this.buckets.delete(second);
  }

  /** Stops the tick; what is scheduled stays, and is served once something is scheduled again. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Serves every second up to now, in order; then waits for the next second, if anything is left. */
  tick(now = Date.now()): void {
    this.timer = undefined;
    const until = Math.floor(now / 1000);
    const from = this.served;
    // First, so that what a callback schedules lands in a second still to come.
    this.served = Math.max(from, until);
    // After a long pause (a suspended laptop) only the buckets that exist are looked at.
    const seconds =
      until - from > this.buckets.size
        ? [...this.buckets.keys()].filter((second) => second <= until).sort((a, b) => a - b)
        : Array.from({ length: Math.max(0, until - from) }, (_, index) => from + 1 + index);
    for (const second of seconds) {
      const bucket = this.buckets.get(second);
      if (!bucket) continue;
      this.buckets.delete(second);
      for (const item of bucket) {
        this.dueAt.delete(item);
        this.due(item, now);
      }
    }
    if (this.dueAt.size > 0 && !this.timer) this.arm();
  }

  /** Ticks just after the next whole second; unref'd, so it never keeps the process alive. */
  private arm(): void {
    this.timer = setTimeout(() => this.tick(), 1001 - (Date.now() % 1000)).unref();
  }
}
