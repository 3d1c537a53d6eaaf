import { SUSPECT_RETRY_CODES, type DocumentData } from "@truss/protocol";
import { Backoff } from "./backoff.js";
import { closedError, type Connection } from "./connection.js";
import { DEFAULT_MAX_REFUSED_ATTEMPTS, isRetryableCode, isServerErrorCode, isTrussClientError, TrussClientError } from "./errors.js";
import { Listeners } from "./listeners.js";
import { isPendingWrite, type OutboxStore, type PendingDocumentWrite, type PendingEventWrite, type PendingWrite } from "./outbox-stores.js";

/** What became of a pending write: `result` when the server took it, `error` when it refused it for good or it was discarded. */
export type SettledWrite =
  | {
      write: PendingWrite;
      /** A document write's `DocumentUpdateOutcome`, or an event handler's result. */
      result: unknown;
      error?: undefined;
    }
  | { write: PendingWrite; result?: undefined; error: TrussClientError };

/** Writes waiting to be sent, as `client.outbox`. */
export interface OutboxClient {
  /** How many writes wait (the one being sent included). */
  readonly size: number;
  /** The waiting writes, oldest first: a snapshot. */
  readonly pending: readonly PendingWrite[];
  /** Resolves once the writes a persistent store kept from an earlier page are loaded (and queued before any new one). */
  readonly ready: Promise<void>;
  /** Calls `callback` with the waiting writes whenever they change. Returns an unsubscribe function. */
  onChange(callback: (pending: readonly PendingWrite[]) => void): () => void;
  /**
   * Calls `callback` when a write leaves the outbox: committed, refused for
   * good, or discarded. The only way to hear of writes an earlier page
   * queued (their promises did not survive the reload). Returns an
   * unsubscribe function.
   */
  onSettled(callback: (settled: SettledWrite) => void): () => void;
  /**
   * Drops a waiting write; its promise rejects with `DISCARDED`. A write
   * that is being sent may still be committed by the server. Resolves
   * whether there was such a write.
   */
  discard(mutationId: string): Promise<boolean>;
}

/**
 * Sends one write and resolves with its result once the server answered for
 * good. `persist` keeps a write whose base or changes changed on the way (a
 * conflict settled by `onConflict`), so a resend after a reload sends that.
 */
export type WriteSender = (write: PendingWrite, persist: (write: PendingWrite) => Promise<void>) => Promise<unknown>;

/** A write as `add` takes it: the outbox numbers and dates it, and makes a mutation id unless the caller brings one. */
export type WriteDraft<W extends PendingWrite> = Omit<W, "mutationId" | "seq" | "createdAt"> & { mutationId?: string };


/** The default `outbox.eventAckTimeoutMs`: above the server's default `limits.handlerTimeoutMs` (30 s), so a hung handler is answered `HANDLER_ERROR` before the event is sent again. */
export const DEFAULT_EVENT_ACK_TIMEOUT_MS = 35_000;
/** The default `outbox.maxWriteBytes`: the least Socket.IO buffer a Truss server has (`maxHttpBufferSize`, 1 MiB). */
export const DEFAULT_MAX_WRITE_BYTES = 1_048_576;

/** What a caller waits on for its write. */
interface Waiter {
  resolve(result: unknown): void;
  reject(error: TrussClientError): void;
}

/**
 * The outbox: writes in the order they were made, each with a mutation id,
 * sent one at a time while connected and kept (in its store) until the
 * server answers for good. A lost ack, a dropped connection or a server
 * without its store only delay a write; the mutation id makes every resend
 * harmless. One at a time keeps the order, and lets a write wait for the
 * outcome of the one before it on the same document. A write the server
 * refuses `maxRefusedAttempts` times in a row with `INTERNAL_ERROR` (the
 * protocol's `SUSPECT_RETRY_CODES`) is given up, so one the server fails on
 * every time cannot hold the writes behind it for good; a store down or a
 * rate limit is waited out.
 */
export class Outbox implements OutboxClient {
  readonly ready: Promise<void>;
  private readonly queue: PendingWrite[] = [];
  private readonly waiters = new Map<string, Waiter>();
  private readonly changed: Listeners<[readonly PendingWrite[]]>;
  private readonly settled: Listeners<[SettledWrite]>;
  private readonly backoff = new Backoff({ initialDelayMs: 250, maxDelayMs: 10_000 });
  private nextSeq = 1;
  private running = false;
  private runAgain = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private wakeRetry: (() => void) | undefined;
  /** The store's last `put` of a new write, settled: the next one waits for it, so writes are queued in the order made. */
  private putting: Promise<unknown> = Promise.resolve();
  private readonly maxRefusedAttempts: number;
  private readonly maxWriteBytes: number;

  /** @param limits - `OutboxOptions.maxRefusedAttempts` and `OutboxOptions.maxWriteBytes`. */
  constructor(
    private readonly connection: Connection,
    private readonly store: OutboxStore,
    private readonly send: WriteSender,
    report: (where: string) => (error: unknown) => void,
    { maxRefusedAttempts = DEFAULT_MAX_REFUSED_ATTEMPTS, maxWriteBytes = DEFAULT_MAX_WRITE_BYTES }: { maxRefusedAttempts?: number; maxWriteBytes?: number } = {},
  ) {
    if (!(Number.isInteger(maxRefusedAttempts) && maxRefusedAttempts >= 1) && maxRefusedAttempts !== Infinity) {
      throw new TypeError(`outbox.maxRefusedAttempts must be a whole number of at least 1, or Infinity; got ${String(maxRefusedAttempts)}.`);
    }
    if (!(Number.isSafeInteger(maxWriteBytes) && maxWriteBytes > 0)) throw new TypeError(`outbox.maxWriteBytes must be a positive whole number; got ${String(maxWriteBytes)}.`);
    this.maxRefusedAttempts = maxRefusedAttempts;
    this.maxWriteBytes = maxWriteBytes;
    this.changed = new Listeners(report("outbox.onChange"));
    this.settled = new Listeners(report("outbox.onSettled"));
    this.ready = this.load().catch((error: unknown) =>
      this.connection.report(new TrussClientError("STORAGE_FAILED", `The outbox store could not load the writes an earlier page kept: ${String(error)}`, { cause: error })),
    );
    connection.onStatus((status, change) => {
      if (status === "connected") this.kick({ wake: true });
      if (status === "closed") this.stop(change.reason);
    });
  }

  get size(): number {
    return this.queue.length;
  }

  get pending(): readonly PendingWrite[] {
    return this.queue.map((write) => ({ ...write }));
  }

  onChange(callback: (pending: readonly PendingWrite[]) => void): () => void {
    return this.changed.add(callback);
  }

  onSettled(callback: (settled: SettledWrite) => void): () => void {
    return this.settled.add(callback);
  }

  /**
   * Queues a write and resolves with its result once the server committed it
   * (or rejects when the server refused it for good, or it was discarded).
   * Rejects at once, with nothing queued, when the client is closed, the
   * write is larger than `maxWriteBytes` (`PAYLOAD_TOO_LARGE`) or the store
   * could not keep it (`STORAGE_FAILED`). Writes are queued in the order
   * made, however long each one's `put` takes.
   */
  async add(draft: WriteDraft<PendingDocumentWrite> | WriteDraft<PendingEventWrite>): Promise<unknown> {
    await this.ready;
    if (this.connection.closed) throw closedError();
    if (draft.mutationId !== undefined && this.queue.some((waiting) => waiting.mutationId === draft.mutationId)) {
      throw new TypeError(`The mutation id "${draft.mutationId}" is already waiting in the outbox.`);
    }
    const write = { mutationId: newMutationId(), ...draft, seq: this.nextSeq++, createdAt: Date.now() } as PendingWrite;
    if (write.kind === "document") this.claimPendingEdits(write);
    const tooLarge = this.tooLarge(write);
    if (tooLarge) throw tooLarge;
    const put = this.putting.then(() => this.keep(write));
    this.putting = put.catch(() => undefined);
    await put;
    // Closed while the store kept it: the write stays there for the next page, as the writes waiting do.
    if (this.connection.closed) throw closedError();
    this.queue.push(write);
    const done = new Promise<unknown>((resolve, reject) => this.waiters.set(write.mutationId, { resolve, reject }));
    this.changed.emit(this.pending);
    this.kick();
    return done;
  }

  /**
   * Puts a new write in the store, or throws `STORAGE_FAILED`. A put past
   * `callbackTimeoutMs` counts as failed, and the caller is told the write
   * was not queued: should it land later, it is taken out again, so a write
   * the user was told was not kept is not sent by the next page.
   */
  private async keep(write: PendingWrite): Promise<void> {
    const put = Promise.resolve().then(() => this.store.put(write));
    try {
      await this.connection.settled(put);
    } catch (error) {
      void put.then(
        () => this.store.delete(write.mutationId),
        () => undefined,
      );
      throw new TrussClientError("STORAGE_FAILED", `The outbox store could not keep the write, so it was not queued: ${String(error)}`, { cause: error });
    }
  }

  /** `PAYLOAD_TOO_LARGE` for a write past `maxWriteBytes` (its JSON's UTF-8 bytes, about what goes on the wire), else `undefined`. */
  private tooLarge(write: PendingWrite): TrussClientError | undefined {
    let bytes: number;
    try {
      bytes = utf8Length(JSON.stringify(write));
    } catch (error) {
      return new TrussClientError("INVALID_PAYLOAD", `The ${describeWrite(write)} is not JSON: ${String(error)}`, { cause: error });
    }
    if (bytes <= this.maxWriteBytes) return undefined;
    return new TrussClientError(
      "PAYLOAD_TOO_LARGE",
      `The ${describeWrite(write)} is ${bytes} bytes; the outbox takes at most ${this.maxWriteBytes} (outbox.maxWriteBytes), since the server closes the connection on a larger packet instead of answering.`,
    );
  }

  async discard(mutationId: string): Promise<boolean> {
    const write = this.queue.find((candidate) => candidate.mutationId === mutationId);
    if (!write) return false;
    const sending = this.queue[0] === write && this.running;
    await this.remove(write, {
      error: new TrussClientError(
        "DISCARDED",
        sending ? "The write was discarded while it was being sent; the server may still have committed it." : "The write was discarded before it was sent.",
      ),
    });
    return true;
  }

  /**
   * Queues the writes an earlier page kept, oldest first, before any new
   * one. What is not a pending write (a custom store's bug, corrupt data) is
   * reported and left out.
   */
  private async load(): Promise<void> {
    const loaded: unknown = await this.connection.settled(this.store.load());
    const records: unknown[] = Array.isArray(loaded) ? loaded : [];
    const stored = records.filter(isPendingWrite);
    if (!Array.isArray(loaded) || stored.length < records.length) {
      const what = Array.isArray(loaded) ? `${records.length - stored.length} of its ${records.length} records are not pending writes` : `it answered ${typeof loaded}, not a list`;
      this.connection.report(new TrussClientError("STORAGE_FAILED", `The outbox store's load was left out in part: ${what}.`));
    }
    stored.sort((a, b) => a.seq - b.seq);
    this.queue.unshift(...stored);
    for (const write of stored) this.nextSeq = Math.max(this.nextSeq, write.seq + 1);
    if (stored.length > 0) this.changed.emit(this.pending);
  }

  /**
   * Starts sending, or has the running pass look again once it is done.
   * `wake` cuts a backoff pause short: a new connection is worth trying at
   * once, a new write behind a server that asked to wait is not.
   */
  private kick({ wake = false } = {}): void {
    if (wake) this.wakeRetry?.();
    if (this.running) {
      this.runAgain = true;
      return;
    }
    this.running = true;
    void (async () => {
      try {
        do {
          this.runAgain = false;
          await this.drain();
        } while (this.runAgain);
      } catch (error) {
        // A bug of the outbox's own must not end a Node process as an unhandled rejection; the next kick tries again.
        this.connection.report(new TrussClientError("INTERNAL_ERROR", `The outbox stopped sending: ${String(error)}`, { cause: error }));
      } finally {
        this.running = false;
      }
    })();
  }

  /** Sends the writes in order while connected; stops at a failure that only a new connection can fix. */
  private async drain(): Promise<void> {
    await this.ready;
    while (this.connection.status === "connected" && this.queue.length > 0) {
      const write = this.queue[0]!;
      // One an earlier page kept, or grown by the edits it carries for the writes before it: refused as it would be when made.
      const tooLarge = this.tooLarge(write);
      if (tooLarge) {
        await this.remove(write, { error: tooLarge });
        continue;
      }
      const base = write.kind === "document" ? write.baseVersion : 0;
      let result: unknown;
      try {
        result = await this.send(write, (changed) => this.persist(changed));
      } catch (error) {
        if (this.queue[0] !== write) continue; // discarded meanwhile; its caller has been told
        const failure = isTrussClientError(error) ? error : new TrussClientError("HANDLER_ERROR", `Sending a queued write failed: ${String(error)}`, { cause: error });
        if (failure.code === "CLIENT_CLOSED") return;
        // The network or the server gave out before an answer, or the server asked to come back later or with a
        // new token: the same write goes again (its mutation id makes that safe), unless the server gave that answer
        // too often. Any other answer is final.
        if (isRetryableCode(failure.code)) {
          const givenUp = await this.refused(write, failure);
          if (givenUp) {
            await this.remove(write, { error: givenUp });
            continue;
          }
          if (this.connection.status !== "connected") return; // sent again on the next connection
          await this.pause(this.backoff.next());
          continue;
        }
        await this.remove(write, { error: failure });
        continue;
      }
      this.backoff.reset();
      if (this.queue[0] !== write) continue;
      if (write.kind === "document") await this.rebaseFollowers(write, base, result);
      await this.remove(write, { result });
    }
  }

  /**
   * Reports a passing refusal of `write` by the server, and counts it when
   * its code is one of `SUSPECT_RETRY_CODES` (the server may fail on this
   * write every time); returns the error to reject it with once the same
   * such code came `maxRefusedAttempts` times in a row. A failure of the network (`DISCONNECTED`, `TIMEOUT`) is
   * no answer about the write: it neither counts nor is reported here (the
   * connection reports its own).
   */
  private async refused(write: PendingWrite, failure: TrussClientError): Promise<TrussClientError | undefined> {
    if (!isServerErrorCode(failure.code)) return undefined;
    const what = `The queued ${describeWrite(write)} was refused with ${failure.code} (${failure.message})`;
    // A store down, a restart, a rate limit pass: only a code that may be this write's own failure counts.
    if (!SUSPECT_RETRY_CODES.includes(failure.code)) {
      this.connection.report(new TrussClientError(failure.code, `${what}; it will be sent again.`, { cause: failure }));
      return undefined;
    }
    const last = write.suspectRefusals;
    const count = last?.code === failure.code ? last.count + 1 : 1;
    write.suspectRefusals = { code: failure.code, count };
    const givenUp = count >= this.maxRefusedAttempts;
    // Kept with the write, so the next page load goes on counting.
    if (!givenUp) await this.persist(write);
    const error = new TrussClientError(
      failure.code,
      givenUp
        ? `${what} ${count} times in a row; it was given up, and the writes behind it go on.`
        : `${what}, attempt ${count}${Number.isFinite(this.maxRefusedAttempts) ? ` of at most ${this.maxRefusedAttempts}` : ""}; it will be sent again.`,
      { cause: failure },
    );
    this.connection.report(error);
    return givenUp ? error : undefined;
  }

  /**
   * A document write made while the user's earlier writes of that document
   * still wait for their answer: those edits are not in its base (the known
   * version moves only with answers and broadcasts), so it claims them as
   * its own `baseChanges`. The server checks each claim against the history
   * (the field's last change must be this user's, to that value), so one of
   * them that ends as a conflict or a refusal is simply not confirmed; one
   * that committed keeps the user's next edit of the same field from being
   * taken for someone else's.
   */
  private claimPendingEdits(write: PendingDocumentWrite): void {
    let earlier: DocumentData | undefined;
    for (const waiting of this.queue) {
      if (waiting.kind === "document" && waiting.type === write.type && waiting.id === write.id) earlier = { ...earlier, ...waiting.changes };
    }
    if (earlier) write.baseChanges = { ...earlier, ...write.baseChanges };
  }

  /**
   * The next writes of the same document, made on the same base as a write
   * that just committed, were made on top of it. When it committed right on
   * its base (nobody else committed in between), they are sent based on its
   * version. When it was merged with others' edits, they keep their base and
   * carry its changes as `baseChanges`: the server then counts them as the
   * writer's own, so the user's queued edits never conflict with each
   * other, while others' edits since the base still can.
   */
  private async rebaseFollowers(write: PendingDocumentWrite, base: number, result: unknown): Promise<void> {
    const version = (result as { document?: { version?: unknown } } | undefined)?.document?.version;
    if (typeof version !== "number") return;
    for (const follower of this.queue) {
      if (follower === write || follower.kind !== "document") continue;
      if (follower.type !== write.type || follower.id !== write.id || follower.baseVersion !== base) continue;
      if (version === base + 1 && !follower.baseChanges) follower.baseVersion = version;
      else follower.baseChanges = { ...follower.baseChanges, ...write.changes };
      await this.persist(follower);
    }
  }

  /** Takes a write out of the queue and the store, and settles it. */
  private async remove(write: PendingWrite, outcome: { result: unknown; error?: undefined } | { error: TrussClientError }): Promise<void> {
    const index = this.queue.indexOf(write);
    if (index === -1) return;
    this.queue.splice(index, 1);
    const waiter = this.waiters.get(write.mutationId);
    this.waiters.delete(write.mutationId);
    try {
      await this.connection.settled(this.store.delete(write.mutationId));
    } catch (error) {
      // Kept in the store, the write would be sent again by the next page; the server answers it as a duplicate.
      this.connection.report(new TrussClientError("STORAGE_FAILED", `The outbox store could not remove a settled write: ${String(error)}`, { cause: error }));
    }
    if (outcome.error) waiter?.reject(outcome.error);
    else waiter?.resolve(outcome.result);
    this.settled.emit({ write: { ...write }, ...outcome } as SettledWrite);
    this.changed.emit(this.pending);
  }

  private async persist(write: PendingWrite): Promise<void> {
    try {
      await this.connection.settled(this.store.put(write));
    } catch (error) {
      this.connection.report(new TrussClientError("STORAGE_FAILED", `The outbox store could not keep a changed write: ${String(error)}`, { cause: error }));
    }
  }

  /** Waits before sending again; a new connection (or `close`) cuts the wait short. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
        this.wakeRetry = undefined;
        resolve();
      };
      this.wakeRetry = wake;
      this.retryTimer = setTimeout(wake, ms);
    });
  }

  /**
   * Lets go of the writes held in memory (once the store's are loaded) and
   * tells `onChange`: the client's session passed to another user. The store
   * keeps them for their own user's next client.
   */
  forget(): void {
    void this.ready.then(() => {
      if (this.queue.length === 0) return;
      this.queue.splice(0);
      this.changed.emit(this.pending);
    });
  }

  /** The client stopped: callers waiting on writes are told; the writes stay in the store for the next page. */
  private stop(reason: TrussClientError | null): void {
    this.wakeRetry?.();
    const error = closedError(reason ?? undefined);
    for (const waiter of this.waiters.values()) waiter.reject(error);
    this.waiters.clear();
  }
}

/** Names a write for people: `update of site-report/r-7 (mutation 3f…)` or `event "expense:submit" (mutation 3f…)`. */
function describeWrite(write: PendingWrite): string {
  const what = write.kind === "document" ? `update of ${write.type}/${write.id}` : `event "${write.event}"`;
  return `${what} (mutation ${write.mutationId})`;
}

/** 128 random bits as hex: unique without coordination, and available in insecure contexts (unlike `crypto.randomUUID`). */
export function newMutationId(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** The UTF-8 length of `text`, without encoding it. */
function utf8Length(text: string): number {
  let bytes = 0;
  for (let index = 0; index < text.length; index++) {
    const unit = text.charCodeAt(index);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && index + 1 < text.length && (text.charCodeAt(index + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      index++;
    } else bytes += 3;
  }
  return bytes;
}
