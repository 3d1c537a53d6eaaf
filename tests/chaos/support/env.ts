/**
 * The suite's knobs. Defaults keep the whole `chaos` project within about
 * three minutes on two cores; raise them for a longer hunt.
 *
 * - `TRUSS_CHAOS_RUNS`: property runs per fuzz property on the in-memory
 *   stores, and the scale of every other loop (default 200).
 * - `TRUSS_CHAOS_SEED`: the fast-check seed (default: a fresh one, printed).
 */
const DEFAULT_RUNS = 200;

export const CHAOS_RUNS = positiveInteger("TRUSS_CHAOS_RUNS", DEFAULT_RUNS);

/** The fast-check seed of this run; reproduce a failure with `TRUSS_CHAOS_SEED=<seed>`. */
export const CHAOS_SEED = seedFromEnv();

/** `runs` scaled from the default, at least `min`: loops grow and shrink with `TRUSS_CHAOS_RUNS`. */
export function scaled(atDefault: number, min = 1): number {
  return Math.max(min, Math.round((atDefault * CHAOS_RUNS) / DEFAULT_RUNS));
}

function positiveInteger(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return value;
}

function seedFromEnv(): number {
  const raw = process.env.TRUSS_CHAOS_SEED;
  if (raw === undefined || raw === "") return (Date.now() ^ (process.pid << 8)) | 0;
  const value = Number(raw);
  if (!Number.isSafeInteger(value)) throw new Error(`TRUSS_CHAOS_SEED must be an integer, got ${JSON.stringify(raw)}`);
  return value | 0;
}
