import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

type Gc = () => void;

/**
 * A full garbage collection, so heap figures measure what is retained rather
 * than what is merely not yet collected. Uses `global.gc` when Node runs with
 * `--expose-gc`; otherwise exposes it for this process (V8 flags may be set at
 * runtime; a fresh context then sees `gc`). `null` if neither works, in which
 * case callers fall back to a more generous bound.
 */
const gc: Gc | null = (() => {
  const exposed = (globalThis as { gc?: Gc }).gc;
  if (typeof exposed === "function") return exposed;
  try {
    setFlagsFromString("--expose-gc");
    const fromContext = runInNewContext("gc") as Gc | undefined;
    return typeof fromContext === "function" ? fromContext : null;
  } catch {
    return null;
  }
})();

/** Whether heap figures are measured after a full collection. */
export const gcAvailable = gc !== null;

/** `heapUsed` after two full collections (the second frees what the first's finalisers released). */
export async function settledHeapUsed(): Promise<number> {
  if (gc) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
  return process.memoryUsage().heapUsed;
}

/** Samples the process's RSS a few times a second and keeps the peak. */
export class RssPeak {
  readonly startRss = process.memoryUsage.rss();
  peak = this.startRss;
  private readonly timer = setInterval(() => this.sample(), 50).unref();

  /** Takes one more sample now. */
  sample(): number {
    const rss = process.memoryUsage.rss();
    if (rss > this.peak) this.peak = rss;
    return rss;
  }

  /** Stops sampling; returns the growth of the peak over the start. */
  stop(): number {
    this.sample();
    clearInterval(this.timer);
    return this.peak - this.startRss;
  }
}
