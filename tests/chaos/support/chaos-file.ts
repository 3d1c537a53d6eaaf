import { afterAll, beforeAll } from "vitest";
import { CrashWatch } from "./contract.js";
import { CHAOS_RUNS, CHAOS_SEED } from "./env.js";
import { Figures } from "./figures.js";

/**
 * What every chaos file starts with: its figures, printed when the file
 * ends, and a crash watch installed for the whole file (each case asserts it
 * stays empty). A `seeded` file (one with fast-check properties) also records
 * the seed and the run count, so a failure can be replayed.
 */
export function chaosFile(name: string, { seeded = false }: { seeded?: boolean } = {}): { figures: Figures; crashes: CrashWatch } {
  const figures = new Figures(name);
  const crashes = new CrashWatch();
  beforeAll(() => {
    crashes.install();
    if (seeded) {
      figures.set("run", "seed", CHAOS_SEED);
      figures.set("run", "TRUSS_CHAOS_RUNS", CHAOS_RUNS);
    }
  });
  afterAll(() => {
    crashes.uninstall();
    figures.print();
  });
  return { figures, crashes };
}
