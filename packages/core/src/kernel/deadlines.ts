import { DeadlineExceeded, withinDeadline } from "@truss/protocol";
import { answersInProcess } from "./in-process.js";

/**
 * How long the engine waits for what it does not control, in one place.
 *
 * A store over a network can fail to answer at all: a PostgreSQL pool with
 * every connection taken and no acquire timeout (pg's default), an ioredis
 * command queued while the server is away, a contributed store with a missing
 * `resolve`. Unbounded, each such call holds its request (and, at the
 * handshake, its half-open socket) for good, the client gets no answer, and a
 * user who keeps retrying grows the node's memory. Bounded (`storeCall`), the
 * call fails like a dropped connection: `STORE_UNAVAILABLE`, "not confirmed",
 * which clients retry; a commit or a message the store makes after the bound
 * is still announced (`storeCall`'s `late`), and a presence write that lands
 * after it is not overtaken by the next one ({@link StoreCallOrder}). The built-in in-memory stores
 * answer in this process and cannot hang, so their calls are not raced
 * against a timer (which would cost every call on the hot path a `Timeout`
 * and a promise).
 *
 * The application's authenticator and event handlers are bounded too, with
 * an AbortSignal they may pass on ({@link abortableWithin}).
 */

/** The stores the engine runs on, by the name their calls are timed, counted and bounded under. */
export type StoreName = "presence" | "inbox" | "documents" | "streams" | "revocations";

/** The deadline, in ms, of each store's calls (`limits.storeTimeoutMs`); none for a name whose every store answers in process. */
export type StoreDeadlines = Readonly<Partial<Record<StoreName, number>>>;

/** The deadlines for `stores` (several stores may share a name: presence and scoped presence), each `timeoutMs`. */
export function storeDeadlines(timeoutMs: number, stores: ReadonlyArray<readonly [StoreName, object]>): StoreDeadlines {
  const deadlines: Partial<Record<StoreName, number>> = {};
  for (const [name, store] of stores) if (!answersInProcess(store)) deadlines[name] = timeoutMs;
  return deadlines;
}

/** `call()` within `store`'s deadline, if it has one (see {@link withinDeadline} for `late`). */
export function withinStoreDeadline<T>(deadlines: StoreDeadlines, store: StoreName, call: () => Promise<T>, late?: (answer: T) => void): Promise<T> {
  const ms = deadlines[store];
  return ms === undefined ? call() : withinDeadline(call(), ms, late);
}

/**
 * The store calls of each key (one device, one member of one scope), each
 * started once the call made before it for the same key has settled in the
 * store. A deadline ends the caller's wait, not the call: a connect or a put
 * that passed it may still land, and a disconnect or a remove made meanwhile
 * would otherwise land first and be undone, leaving a device or a member
 * listed that no socket holds until its TTL ends. The caller's wait stays
 * bounded: pass the call to `storeCall` (or `BestEffortStore.call`), whose
 * deadline then covers the wait for the calls before it.
 *
 * A call waits at most `patienceMs` for the one before it: a store that has
 * not answered by then is taken to have lost the call, which must not hold
 * the key's later calls for good. A store whose calls have no deadline (it
 * answers in process) has answered each call before the engine makes the
 * next, so its calls are not chained. A key is held only while a call of it
 * is on its way, and at most twice `patienceMs` after the call was made (it
 * may wait `patienceMs` for the one before it, then run as long again): a
 * store that never answers a call cannot hold an entry for each key it was
 * asked about for good.
 */
export class StoreCallOrder {
  /** Each held key's last call: settled when it settles in the store, and when it was made. */
  private readonly last = new Map<string, { settled: Promise<void>; since: number }>();
  private readonly chained: boolean;
  /** Lets go of calls taken as lost, every `patienceMs` while a key is held. */
  private sweeper: ReturnType<typeof setInterval> | undefined;
  private stopped = false;

  /** @param patienceMs - how long a call waits for the one before it (the presence TTL). */
  constructor(
    deadlines: StoreDeadlines,
    store: StoreName,
    private readonly patienceMs: number,
  ) {
    this.chained = deadlines[store] !== undefined;
  }

  /** `call()`, once the call made before it for `key` has settled in the store; its answer, with no deadline of its own. */
  after<T>(key: string, call: () => Promise<T>): Promise<T> {
    if (!this.chained) return call();
    const previous = this.last.get(key);
    const answer = previous ? this.settledOrLost(previous.settled).then(call) : Promise.resolve(call());
    const entry = { settled: undefined as unknown as Promise<void>, since: Date.now() };
    const forget = (): void => {
      if (this.last.get(key) === entry) this.last.delete(key);
    };
    entry.settled = answer.then(forget, forget);
    this.last.set(key, entry);
    if (!this.stopped) this.sweeper ??= setInterval(() => this.forgetLost(), this.patienceMs).unref();
    return answer;
  }

  /** How many keys have a call on its way (or not yet taken as lost). */
  get heldKeys(): number {
    return this.last.size;
  }

  /**
   * Stops letting go of lost calls, for an engine that is closing: its
   * sockets' last calls are still ordered after the ones before them, and
   * what is held then goes with the engine.
   */
  stop(): void {
    this.stopped = true;
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  /**
   * Forgets the keys whose last call was made more than twice `patienceMs`
   * ago: by then it has run at least `patienceMs`, so a call after it would
   * wait for it no longer anyway.
   */
  private forgetLost(): void {
    const lostBefore = Date.now() - 2 * this.patienceMs;
    for (const [key, entry] of this.last) if (entry.since < lostBefore) this.last.delete(key);
    if (this.last.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  /** Resolves when `previous` (which never rejects) settles, or `patienceMs` later; its timer keeps no process alive. */
  private settledOrLost(previous: Promise<void>): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, this.patienceMs).unref();
      void previous.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/**
 * Runs `work` within `ms`, handing it a getter of an AbortSignal that is made
 * when first read (work that never reads it costs none). Past `ms`, the signal
 * is aborted with the error `timedOut` makes, and that error rejects. When
 * `abandoned` aborts first (the engine closed and stopped waiting), the
 * signal is aborted with its reason; the answer is still awaited, as whoever
 * gave up on it has answered the caller already.
 */
export async function abortableWithin<T>(
  ms: number,
  work: (signal: () => AbortSignal) => T | PromiseLike<T>,
  timedOut: () => Error,
  abandoned?: AbortSignal,
): Promise<T> {
  let controller: AbortController | undefined;
  let abandon: (() => void) | undefined;
  const signal = (): AbortSignal => {
    if (controller) return controller.signal;
    const made = (controller = new AbortController());
    if (abandoned?.aborted) made.abort(abandoned.reason);
    else if (abandoned) abandoned.addEventListener("abort", (abandon = () => made.abort(abandoned.reason)), { once: true });
    return made.signal;
  };
  try {
    return await withinDeadline(work(signal), ms);
  } catch (error) {
    if (!(error instanceof DeadlineExceeded)) throw error;
    const refusal = timedOut();
    controller?.abort(refusal);
    throw refusal;
  } finally {
    if (abandon) abandoned!.removeEventListener("abort", abandon);
  }
}
