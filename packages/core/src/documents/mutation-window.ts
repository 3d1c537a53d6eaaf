import type { DocumentStore, MutationRef, ResolvedDocumentStoreOptions } from "./store.js";

/** One record: the version a mutation committed and when it was recorded. */
interface MutationRecord {
  version: number;
  recordedAt: number;
}

/** One writer's records, oldest first, and the time of their newest. */
interface WriterRecords {
  records: Map<string, MutationRecord>;
  newest: number;
}

/**
 * The mutations one document of the memory store remembers, kept per writer
 * by the rules of {@link DocumentStore.compareAndSet}: each writer's newest
 * `maxMutations` records, for at most `maxMutationWriters` writers, and each
 * forgotten writer's horizon. Only the memory store uses it; the Redis and
 * SQLite stores keep the same rules in their own atomic steps.
 */
export class MutationWindow {
  /** Writer → their records; the writers run from the least to the most recently committed. */
  private readonly writers = new Map<string, WriterRecords>();
  /** Writer → the newest of their record times that was forgotten (by their cap, or with the writer). */
  private readonly horizons = new Map<string, number>();
  /** The newest horizon forgotten past the horizon cap: it applies to every writer. */
  private forgottenBefore = 0;

  constructor(private readonly options: Pick<ResolvedDocumentStoreOptions, "maxMutations" | "maxMutationWriters" | "maxMutationHorizons" | "mutationTtlMs">) {}

  /** The version the mutation committed, or `undefined` when it has no record. */
  recorded(mutation: MutationRef): number | undefined {
    return this.writers.get(mutation.writer)?.records.get(mutation.id)?.version;
  }

  /** Before when a mutation of `writer` without a record may have been committed and forgotten. */
  horizonOf(writer: string): number {
    return Math.max(this.horizons.get(writer) ?? 0, this.forgottenBefore);
  }

  /** Records a committed mutation, then forgets what the TTL and the caps leave out. */
  record(mutation: MutationRef, version: number, at: number): void {
    const { maxMutations, maxMutationWriters, maxMutationHorizons, mutationTtlMs } = this.options;
    const cutoff = at - mutationTtlMs;
    const own = this.writers.get(mutation.writer) ?? { records: new Map<string, MutationRecord>(), newest: at };
    // Re-inserted at the end, so the least recently committed writer comes first.
    this.writers.delete(mutation.writer);
    this.writers.set(mutation.writer, own);
    own.records.set(mutation.id, { version, recordedAt: at });
    own.newest = Math.max(own.newest, at);
    for (const [id, { recordedAt }] of own.records) {
      const expired = recordedAt < cutoff;
      if (!expired && own.records.size <= maxMutations) break;
      own.records.delete(id);
      if (!expired) this.raise(mutation.writer, recordedAt);
    }
    for (const [writer, { newest }] of this.writers) {
      if (writer === mutation.writer) break;
      // A writer whose every record is past the TTL needs no horizon: the TTL answers for it.
      const idle = newest < cutoff;
      if (!idle && this.writers.size <= maxMutationWriters) break;
      this.writers.delete(writer);
      if (!idle) this.raise(writer, newest);
    }
    // Only over the cap do horizons need forgetting: one past the TTL answers nothing the TTL does not, so the
    // scan for them waits until then instead of running on every commit.
    if (this.horizons.size > maxMutationHorizons) for (const [writer, horizon] of this.horizons) if (horizon < cutoff) this.horizons.delete(writer);
    while (this.horizons.size > maxMutationHorizons) {
      let oldest: [string, number] | undefined;
      for (const entry of this.horizons) if (!oldest || entry[1] < oldest[1]) oldest = entry;
      this.horizons.delete(oldest![0]);
      this.forgottenBefore = Math.max(this.forgottenBefore, oldest![1]);
    }
  }

  private raise(writer: string, horizon: number): void {
    this.horizons.set(writer, Math.max(this.horizons.get(writer) ?? 0, horizon));
  }
}
