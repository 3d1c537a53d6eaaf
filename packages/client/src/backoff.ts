/** How the client spaces its reconnection attempts. */
export interface ReconnectOptions {
  /** The ceiling of the first retry's delay, in ms. Default 1,000. */
  initialDelayMs?: number;
  /** The largest delay between attempts, in ms. Default 30,000. */
  maxDelayMs?: number;
  /**
   * The share of each delay that is random, from 0 (exactly exponential) to 1
   * (full jitter: uniform between 0 and the exponential ceiling). Default 1.
   */
  jitter?: number;
}

/** The defaults of {@link ReconnectOptions}. */
export const DEFAULT_RECONNECT = { initialDelayMs: 1000, maxDelayMs: 30_000, jitter: 1 } as const;

/**
 * Exponential backoff with jitter. Full jitter spreads the reconnects of
 * many phones that lost the same cell tower (or a server restart) over the
 * whole window instead of letting them arrive in waves.
 */
export class Backoff {
  private attempts = 0;
  private readonly initialDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly jitter: number;

  constructor(
    options: ReconnectOptions = {},
    private readonly random: () => number = Math.random,
  ) {
    this.initialDelayMs = nonNegative(options.initialDelayMs, DEFAULT_RECONNECT.initialDelayMs, "reconnect.initialDelayMs");
    this.maxDelayMs = Math.max(this.initialDelayMs, nonNegative(options.maxDelayMs, DEFAULT_RECONNECT.maxDelayMs, "reconnect.maxDelayMs"));
    const jitter = options.jitter ?? DEFAULT_RECONNECT.jitter;
    if (!(jitter >= 0 && jitter <= 1)) throw new TypeError(`reconnect.jitter must be between 0 and 1; got ${String(jitter)}.`);
    this.jitter = jitter;
  }

  /** The delay before the next attempt; each call doubles the ceiling up to `maxDelayMs`. */
  next(): number {
    const ceiling = Math.min(this.maxDelayMs, this.initialDelayMs * 2 ** Math.min(this.attempts, 30));
    this.attempts += 1;
    return Math.round(ceiling * (1 - this.jitter * this.random()));
  }

  /** Starts over after a successful connection. */
  reset(): void {
    this.attempts = 0;
  }
}

function nonNegative(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!(typeof value === "number" && value >= 0 && Number.isFinite(value))) {
    throw new TypeError(`${name} must be a non-negative number of ms; got ${String(value)}.`);
  }
  return value;
}
