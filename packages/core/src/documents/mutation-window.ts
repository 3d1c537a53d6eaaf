import type { DocumentStore, MutationRef, ResolvedDocumentStoreOptions } from "./store.js";

// What a document's quota counts for what the window holds, beyond the text of ids. Each is a little over what
// V8 (Node 20, 64-bit) was measured to keep per item with the heap after a full GC; measured once, not per commit.

/** A mutation record's map entry and object, on top of its id's length (measured about 180–280 bytes). */
export const MUTATION_RECORD_OVERHEAD_BYTES = 256;
/** A writer's entry, with its map of records, on top of the writer's length (measured about 260 bytes). */
export const MUTATION_WRITER_OVERHEAD_BYTES = 256;
/** A forgotten writer's horizon, on top of the writer's length. */
export const MUTATION_HORIZON_OVERHEAD_BYTES = 64;

/** One record: the version a mutation committed and when it was recorded. */
interface MutationRecord {
  version: number;
  recordedAt: number;
}

/** One writer's records, oldest first, and the time of their newest. */
interface WriterRecords {
  records: Map<string, MutationRecord>;
  newest: number;
  /** What the entry and its records count for the quota, so forgetting the writer walks none of them. */
  bytes: number;
}

/**
 * The mutations one document of the memory store remembers, kept per writer
 * by the rules of {@link DocumentStore.compareAndSet}: each writer's newest
 * `maxMutations` records, for at most `maxMutationWriters` writers, and each
 * forgotten writer's horizon. Only the memory store uses it; the Redis and
 * SQLite stores keep the same rules in their own atomic steps.
 *
 * It counts what it holds in {@link MutationWindow.bytes} (ids and writers
 * by length, plus a fixed overhead each), so the store can hold the records
 * to a company's quota.
 */
export class MutationWindow {
  /** Writer → their records; the writers run from the least to the most recently committed. */
  private readonly writers = new Map<string, WriterRecords>();
  /** Writer → the newest of their record times that was forgotten (by their cap, or with the writer). */
  private readonly horizons = new Map<string, number>();
  /** The newest horizon forgotten past the horizon cap: it applies to every writer. */
  private forgottenBefore = 0;
  /** What the records, writers and horizons held now count for the quota. */
  bytes = 0;

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
    let own = this.writers.get(mutation.writer);
    if (own) this.writers.delete(mutation.writer);
    else {
      own = { records: new Map<string, MutationRecord>(), newest: at, bytes: writerBytes(mutation.writer) };
      this.bytes += own.bytes;
    }
    // Re-inserted at the end, so the least recently committed writer comes first.
    this.writers.set(mutation.writer, own);
    own.records.set(mutation.id, { version, recordedAt: at });
    own.bytes += recordBytes(mutation.id);
    this.bytes += recordBytes(mutation.id);
    own.newest = Math.max(own.newest, at);
    this.forgetRecords(mutation.writer, own, cutoff, maxMutations);
    for (const [writer, records] of this.writers) {
      if (writer === mutation.writer) break;
      // A writer whose every record is past the TTL needs no horizon: the TTL answers for it.
      const idle = records.newest < cutoff;
      if (!idle && this.writers.size <= maxMutationWriters) break;
      this.forgetWriter(writer, records);
      if (!idle) this.raise(writer, records.newest);
    }
    // Only over the cap do horizons need forgetting: one past the TTL answers nothing the TTL does not, so the
    // scan for them waits until then instead of running on every commit.
    if (this.horizons.size > maxMutationHorizons) this.forgetExpiredHorizons(cutoff);
    while (this.horizons.size > maxMutationHorizons) {
      let oldest: [string, number] | undefined;
      for (const entry of this.horizons) if (!oldest || entry[1] < oldest[1]) oldest = entry;
      this.forgetHorizon(oldest![0]);
      this.forgottenBefore = Math.max(this.forgottenBefore, oldest![1]);
    }
  }

  /**
   * Forgets every record, writer and horizon past the TTL, as the next commit would, without one: what a
   * store does to make room when a company is at its quota. Answers stay the same (the TTL answers for them).
   */
  forgetExpired(at: number): void {
    const cutoff = at - this.options.mutationTtlMs;
    for (const [writer, records] of this.writers) {
      if (records.newest < cutoff) this.forgetWriter(writer, records);
      else this.forgetRecords(writer, records, cutoff, Infinity);
    }
    this.forgetExpiredHorizons(cutoff);
  }

  /** Forgets a writer's records older than `cutoff`, then the oldest past `max`, raising its horizon for those. */
  private forgetRecords(writer: string, own: WriterRecords, cutoff: number, max: number): void {
    for (const [id, { recordedAt }] of own.records) {
      const expired = recordedAt < cutoff;
      if (!expired && own.records.size <= max) break;
      own.records.delete(id);
      own.bytes -= recordBytes(id);
      this.bytes -= recordBytes(id);
      if (!expired) this.raise(writer, recordedAt);
    }
  }

  private forgetWriter(writer: string, own: WriterRecords): void {
    this.writers.delete(writer);
    this.bytes -= own.bytes;
  }

  private forgetExpiredHorizons(cutoff: number): void {
    for (const [writer, horizon] of this.horizons) if (horizon < cutoff) this.forgetHorizon(writer);
  }

  private forgetHorizon(writer: string): void {
    this.horizons.delete(writer);
    this.bytes -= horizonBytes(writer);
  }

  private raise(writer: string, horizon: number): void {
    const current = this.horizons.get(writer);
    if (current === undefined) this.bytes += horizonBytes(writer);
    this.horizons.set(writer, Math.max(current ?? 0, horizon));
  }
}

/** What the quota counts for a mutation record with this id. */
export function recordBytes(id: string): number {
  return MUTATION_RECORD_OVERHEAD_BYTES + id.length;
}

/** What the quota counts for a writer's entry, without its records. */
function writerBytes(writer: string): number {
  return MUTATION_WRITER_OVERHEAD_BYTES + writer.length;
}

/** What the quota counts for a forgotten writer's horizon. */
function horizonBytes(writer: string): number {
  return MUTATION_HORIZON_OVERHEAD_BYTES + writer.length;
}
