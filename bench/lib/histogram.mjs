/**
 * A latency histogram: 10 µs buckets up to 2 s, then 1 ms buckets up to
 * 60 s, so p50 of a sub-millisecond loopback hop and p999 of an overloaded
 * step are both readable. Recording is an array increment.
 */
const FINE_MS = 0.01;
const FINE_LIMIT_MS = 2000;
const FINE_BUCKETS = FINE_LIMIT_MS / FINE_MS;
const COARSE_MS = 1;
const COARSE_BUCKETS = 58_000;

export class Histogram {
  constructor() {
    this.counts = new Uint32Array(FINE_BUCKETS + COARSE_BUCKETS + 1);
    this.count = 0;
    this.sum = 0;
    this.max = 0;
  }

  /** Records one latency in milliseconds; negative values (clock jitter) count as 0. */
  record(ms) {
    const value = ms > 0 ? ms : 0;
    let index;
    if (value < FINE_LIMIT_MS) index = (value / FINE_MS) | 0;
    else index = Math.min(FINE_BUCKETS + (((value - FINE_LIMIT_MS) / COARSE_MS) | 0), this.counts.length - 1);
    this.counts[index] += 1;
    this.count += 1;
    this.sum += value;
    if (value > this.max) this.max = value;
  }

  reset() {
    this.counts.fill(0);
    this.count = 0;
    this.sum = 0;
    this.max = 0;
  }

  /** The latency at quantile `q` (0..1), as the upper edge of its bucket. */
  quantile(q) {
    if (this.count === 0) return null;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let index = 0; index < this.counts.length; index++) {
      seen += this.counts[index];
      if (seen >= rank) {
        const upper = index < FINE_BUCKETS ? (index + 1) * FINE_MS : FINE_LIMIT_MS + (index - FINE_BUCKETS + 1) * COARSE_MS;
        return Math.min(upper, this.max);
      }
    }
    return this.max;
  }

  /** The figures reported for every latency: count, mean, p50, p99, p99.9, max (ms). */
  summary() {
    const round = (value) => (value === null ? null : Math.round(value * 1000) / 1000);
    return {
      count: this.count,
      mean: this.count ? round(this.sum / this.count) : null,
      p50: round(this.quantile(0.5)),
      p99: round(this.quantile(0.99)),
      p999: round(this.quantile(0.999)),
      max: this.count ? round(this.max) : null,
    };
  }
}
