/**
 * What a chaos file measured, printed once at its end so the figures can be
 * copied into the docs: counts per section (attempts, leaks, refusals by
 * code) and memory.
 */
export class Figures {
  private readonly sections = new Map<string, Record<string, unknown>>();

  constructor(private readonly file: string) {}

  /** Adds `by` to a counter of a section. */
  count(section: string, name: string, by = 1): void {
    const values = this.section(section);
    values[name] = ((values[name] as number | undefined) ?? 0) + by;
  }

  /** Counts one coded refusal (or `ok`) seen in a section. */
  outcome(section: string, code: string): void {
    const values = this.section(section);
    const outcomes = (values.outcomes ??= {}) as Record<string, number>;
    outcomes[code] = (outcomes[code] ?? 0) + 1;
  }

  /** Sets a measured value (a byte count, a duration, a bound). */
  set(section: string, name: string, value: unknown): void {
    this.section(section)[name] = value;
  }

  /** Prints every section as one JSON block, tagged with the file. */
  print(): void {
    const all = Object.fromEntries([...this.sections].map(([name, values]) => [name, sortOutcomes(values)]));
    console.log(`[chaos] ${this.file} figures\n${JSON.stringify(all, null, 2)}`);
  }

  private section(name: string): Record<string, unknown> {
    let values = this.sections.get(name);
    if (!values) this.sections.set(name, (values = {}));
    return values;
  }
}

function sortOutcomes(values: Record<string, unknown>): Record<string, unknown> {
  const outcomes = values.outcomes as Record<string, number> | undefined;
  if (!outcomes) return values;
  return { ...values, outcomes: Object.fromEntries(Object.entries(outcomes).sort(([a], [b]) => a.localeCompare(b))) };
}

/** Bytes as MiB with one decimal, for printing. */
export const mib = (bytes: number): number => Math.round((bytes / (1024 * 1024)) * 10) / 10;
