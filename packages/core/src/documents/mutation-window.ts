import type { DocumentStore, MutationRef, ResolvedDocumentStoreOptions } from "./store.js";

// What a document's quota counts for what the window holds, beyond the text of ids. Each is a little over what
// V8 (Node 20, 64-bit) was measured to keep per item with the heap after a full GC; measured once, not per commit.

/**
 * A mutation record's map entry and object and its place in the company's order of records (with the records its
 * document forgot that the order still holds), on top of its id's length (measured about 340–400 bytes).
 */
export const MUTATION_RECORD_OVERHEAD_BYTES = 384;
/** A writer's entry, with its map of records, on top of the writer's length (measured about 260 bytes). */
export const MUTATION_WRITER_OVERHEAD_BYTES = 256;
/** A forgotten writer's horizon, on top of the writer's length. */
export const MUTATION_HORIZON_OVERHEAD_BYTES = 64;

/** One record: the version a mutation committed, when it was recorded, and where it is held, so a store can forget it early. */
export interface MutationRecord {
  /** The window that holds it (while {@link MutationWindow.holds} says so). */
  readonly window: MutationWindow;
  /** The mutation's writer ({@link MutationRef.writer}). */
  readonly writer: string;
  /** The mutation's id ({@link MutationRef.id}). */
  readonly id: string;
  /** The version its commit made. */
  readonly version: number;
  /** When it was recorded, by the store's clock. */
  readonly recordedAt: number;
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
 * to a company's quota: past it the store forgets the company's oldest
 * records early ({@link MutationWindow.forgetEarly}), then if need be its
 * horizons ({@link MutationWindow.forgetHorizons}), each leaving a horizon
 * that answers a resend of what it forgot `expired`, never `new`.
 */
export class MutationWindow {
  /** Writer → their records; the writers run from the least to the most recently committed. */
  private readonly writers = new Map<string, WriterRecords>();
  /** Writer → the newest of their record times that was forgotten (by their cap, early, or with the writer). */
  private readonly horizons = new Map<string, number>();
  /** The newest horizon forgotten past the horizon cap or for the quota: it applies to every writer. */
  private forgottenBefore = 0;
  /** What the records, writers and horizons held now count for the quota. */
  bytes = 0;
  /** How many records it holds. */
  size = 0;

  constructor(private readonly options: Pick<ResolvedDocumentStoreOptions, "maxMutations" | "maxMutationWriters" | "maxMutationHorizons" | "mutationTtlMs">) {}

  /** The version the mutation committed, or `undefined` when it has no record. */
  recorded(mutation: MutationRef): number | undefined {
    return this.writers.get(mutation.writer)?.records.get(mutation.id)?.version;
  }

  /** Before when a mutation of `writer` without a record may have been committed and forgotten. */
  horizonOf(writer: string): number {
    return Math.max(this.horizons.get(writer) ?? 0, this.forgottenBefore);
  }

  /** Whether the window still holds the record: its caps and the TTL forget records on later commits. */
  holds(record: MutationRecord): boolean {
    return this.writers.get(record.writer)?.records.get(record.id) === record;
  }

  /** Records a committed mutation, then forgets what the TTL and the caps leave out; returns the record. */
  record(mutation: MutationRef, version: number, at: number): MutationRecord {
    const { maxMutations, maxMutationWriters, mutationTtlMs } = this.options;
    const cutoff = at - mutationTtlMs;
    let own = this.writers.get(mutation.writer);
    if (own) this.writers.delete(mutation.writer);
    else {
      own = { records: new Map<string, MutationRecord>(), newest: at, bytes: writerBytes(mutation.writer) };
      this.bytes += own.bytes;
    }
    // Re-inserted at the end, so the least recently committed writer comes first.
    this.writers.set(mutation.writer, own);
    const record: MutationRecord = { window: this, writer: mutation.writer, id: mutation.id, version, recordedAt: at };
    own.records.set(mutation.id, record);
    own.bytes += recordBytes(mutation.id);
    this.bytes += recordBytes(mutation.id);
    this.size += 1;
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
    this.capHorizons(cutoff);
    return record;
  }

  /**
   * Forgets a record it still holds before the TTL or its writer's cap would, as the cap does: unless it is past
   * the TTL its time becomes its writer's horizon, so a resend of it is `expired`, never committed again, and a
   * writer left with no record is forgotten whole. What a store does, oldest record first, to keep a company
   * within its quota.
   */
  forgetEarly(record: MutationRecord, at: number): void {
    if (!this.holds(record)) return;
    const own = this.writers.get(record.writer)!;
    this.forget(own, record.id);
    const cutoff = at - this.options.mutationTtlMs;
    if (record.recordedAt >= cutoff) this.raise(record.writer, record.recordedAt);
    if (own.records.size === 0) this.forgetWriter(record.writer, own);
    this.capHorizons(cutoff);
  }

  /**
   * Forgets every writer's horizon, raising the document's to the newest of them (it applies to every writer):
   * what a store does when the horizons left by the records it forgot early do not fit its quota either. A
   * mutation a horizon answered `expired` still is; another writer's mutation made before it becomes `expired` too.
   */
  forgetHorizons(): void {
    for (const [writer, horizon] of this.horizons) {
      this.forgottenBefore = Math.max(this.forgottenBefore, horizon);
      this.forgetHorizon(writer);
    }
  }

  /** Forgets a writer's records older than `cutoff`, then the oldest past `max`, raising its horizon for those. */
  private forgetRecords(writer: string, own: WriterRecords, cutoff: number, max: number): void {
    for (const [id, { recordedAt }] of own.records) {
      const expired = recordedAt < cutoff;
      if (!expired && own.records.size <= max) break;
      this.forget(own, id);
      if (!expired) this.raise(writer, recordedAt);
    }
  }

  private forget(own: WriterRecords, id: string): void {
    own.records.delete(id);
    own.bytes -= recordBytes(id);
    this.bytes -= recordBytes(id);
    this.size -= 1;
  }

  private forgetWriter(writer: string, own: WriterRecords): void {
    this.writers.delete(writer);
    this.bytes -= own.bytes;
    this.size -= own.records.size;
  }

  /** Forgets the horizons past `maxMutationHorizons`, oldest first, raising the document's to the newest of those. */
  private capHorizons(cutoff: number): void {
    // Only over the cap do horizons need forgetting: one past the TTL answers nothing the TTL does not, so the
    // scan for them waits until then instead of running on every commit.
    if (this.horizons.size <= this.options.maxMutationHorizons) return;
    this.forgetExpiredHorizons(cutoff);
    while (this.horizons.size > this.options.maxMutationHorizons) {
      let oldest: [string, number] | undefined;
      for (const entry of this.horizons) if (!oldest || entry[1] < oldest[1]) oldest = entry;
      this.forgetHorizon(oldest![0]);
      this.forgottenBefore = Math.max(this.forgottenBefore, oldest![1]);
    }
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

/**
 * What a window holding only this mutation's record counts: the room a store must find for the record, all it
 * holds once every other record and horizon of the company is forgotten.
 */
export function soleRecordBytes(mutation: MutationRef): number {
  return writerBytes(mutation.writer) + recordBytes(mutation.id);
}

/** What the quota counts for a mutation record with this id. */
function recordBytes(id: string): number {
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
