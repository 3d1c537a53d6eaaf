/** Options of the bounded sweep the inbox and stream stores run. */
export interface SweepOptions {
  /**
   * How often, at most, a store sweeps what expired unread (inboxes nobody
   * reads again and device cursors past the TTL, streams idle past
   * `ttlMs + idleMs`), in ms. A sweep starts after a store call, never
   * delays it, and needs no job of its own. Default 60,000.
   */
  sweepIntervalMs?: number;
  /** Most inboxes or streams one sweep clears, and most device cursors past the TTL an inbox's sweep deletes besides. Default 100. */
  sweepBatch?: number;
}

/** Default time between two sweeps of one store: one minute. */
export const DEFAULT_SWEEP_INTERVAL_MS = 60_000;
/** Default number of inboxes or streams (and of device cursors) one sweep clears. */
export const DEFAULT_SWEEP_BATCH = 100;

/**
 * Starts `run` after a store call when the last run (or the store's creation)
 * is `sweepIntervalMs` old
 * and none is under way. A failed run (PostgreSQL down) is retried at the next
 * interval; its error is dropped, as the store call it followed already
 * answered.
 */
export class Sweeper {
  /** Most inboxes or streams (and of device cursors) one run clears. */
  readonly batch: number;
  private readonly intervalMs: number;
  private lastRun = Date.now();
  private running = false;

  constructor(
    who: string,
    options: SweepOptions,
    private readonly run: () => Promise<unknown>,
  ) {
    this.intervalMs = options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
    this.batch = options.sweepBatch ?? DEFAULT_SWEEP_BATCH;
    for (const [name, value] of [
      ["sweepIntervalMs", this.intervalMs],
      ["sweepBatch", this.batch],
    ] as const) {
      if (!(Number.isSafeInteger(value) && value > 0)) throw new RangeError(`${who}: ${name} must be a positive integer, got ${value}`);
    }
  }

  /** Starts a run in the background if one is due. */
  due(): void {
    const now = Date.now();
    if (this.running || now - this.lastRun < this.intervalMs) return;
    this.running = true;
    this.lastRun = now;
    void this.run()
      .catch(() => undefined)
      .finally(() => {
        this.running = false;
      });
  }
}
