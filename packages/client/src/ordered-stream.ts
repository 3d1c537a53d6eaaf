import { topicOfStream, type ResyncReason, type StreamPosition, type StreamReadResult, type StreamStart } from "@truss/protocol";
import { isPromiseLike } from "./listeners.js";
import { Backoff } from "./backoff.js";
import { isRetryableCode, type TrussClientError } from "./errors.js";
import type { StoredPosition } from "./positions.js";

/**
 * How long a gap in live delivery may stay open before the client reads it
 * from the server: with several server nodes, the missing message may simply
 * still be on its way through the other node.
 */
export const GAP_GRACE_MS = 150;

/** Spacing of new reads after one the server could not answer (`STORE_UNAVAILABLE`, `RATE_LIMITED`, a timeout). */
const READ_RETRY = { initialDelayMs: 250, maxDelayMs: 10_000 };


/**
 * A stream whose missed messages the client cannot hand over, as
 * `client.onResync` reports it: the app refetches the state the stream
 * carries. None of the missed messages is delivered; live delivery goes on
 * after them.
 */
export interface StreamResync {
  /** `company`, or `topic:<name>`. */
  stream: string;
  /** The topic of a topic stream; `null` for the company's stream. */
  topic: string | null;
  /** Why the gap cannot be replayed. */
  reason: ResyncReason;
  /** What happened, for people. */
  message: string;
}

/** What an {@link OrderedStream} needs from the client around it. */
export interface StreamHost {
  /** Whether a read can go out now. */
  readonly connected: boolean;
  /** One `stream:read` page; rejects with a {@link TrussClientError}. */
  /** `until`: the last offset needed, when filling a hole in live delivery. */
  read(stream: string, epoch: string, after: number, until?: number): Promise<StreamReadResult>;
  /** Hands a message of `stream` to the app's handlers. */
  deliver(event: string, data: unknown, stream: string): void;
  /** Tells the app a gap cannot be replayed. */
  resync(resync: StreamResync): void;
  /** Writes the stream's position through to the position store; `null` forgets it. */
  save(stream: string, position: StoredPosition | null): void;
  /** Reports a failure that is not the answer to a call of the app's. */
  report(error: TrussClientError): void;
  /** The stream started or finished recovering. */
  recoveryChanged(): void;
}

/** A positioned message that arrived live. */
interface Arrival {
  event: string;
  data: unknown;
  position: StreamPosition;
  /** How many reads had gone out when it arrived: a read sent after it speaks for the stream's epoch after it. */
  mark: number;
}

/**
 * One stream as the app sees it: each message once, in offset order. A
 * stream with no position of its own starts where the server says it stood
 * when the socket joined it ({@link begin}), holding live messages until
 * then, never at whichever message arrives first. Live messages ahead of a
 * gap wait while the gap is read from the server (after
 * {@link GAP_GRACE_MS}); a catch-up after a reconnection holds live delivery
 * until the missed messages went first; a gap the server cannot replay is a
 * {@link StreamResync}, after which the stream continues from where the
 * server stands, never from a partial replay. A stream that starts over (a
 * new epoch: its store restarted empty, or it expired) is a resync too,
 * since nothing tells the client it received the old epoch's last messages.
 */
export class OrderedStream {
  /** Whether a catch-up started by a (re)connection or a resubscription is running. */
  recovering = false;
  /** The last message handed to the app; `null` before the first one (nothing to recover before it). */
  private position: StoredPosition | null = null;
  private saved: StoredPosition | null = null;
  /** Whether the position store answered. */
  private loaded = false;
  private readonly loading: Promise<void>;
  /** Arrivals before the store answered, or, for a stream with no position, before the server said where it starts. */
  private early: Arrival[] = [];
  /** Whether the server's {@link begin} for the current connection or subscription is still to come. */
  private awaitingStart = true;
  /** Whether the position is the current connection's start: there is nothing before it to catch up on. */
  private fromStart = false;
  /** A {@link begin} that came before the position store answered. */
  private startAt: StreamStart | null | undefined;
  /** Arrivals of the current epoch past a gap, by offset. */
  private pending = new Map<number, Arrival>();
  /** Arrivals of another epoch: a stream that started over, or a stale message from before a resync. */
  private foreign: Arrival[] = [];
  /** Whether a read holds live delivery back. */
  private reading = false;
  /** Bumped by every catch-up, pause and forget: a catch-up whose run is no longer current stops. */
  private run = 0;
  private readsSent = 0;
  private gapTimer: ReturnType<typeof setTimeout> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private wake: (() => void) | undefined;
  private readonly backoff = new Backoff(READ_RETRY);

  /**
   * @param stream - `company` or `topic:<name>`.
   * @param host - the client around it.
   * @param stored - the position store's answer for this stream.
   */
  constructor(
    readonly stream: string,
    private readonly host: StreamHost,
    stored: StoredPosition | undefined | Promise<StoredPosition | undefined>,
  ) {
    const settle = (position: StoredPosition | undefined) => {
      if (this.loaded) return;
      this.loaded = true;
      this.position = position ? { ...position } : null;
      this.saved = this.position;
      const start = this.startAt;
      this.startAt = undefined;
      if (start !== undefined) this.startFrom(start);
      this.releaseEarly();
    };
    if (isPromiseLike(stored)) {
      this.loading = Promise.resolve(stored).then(settle, () => settle(undefined));
    } else {
      settle(stored);
      this.loading = Promise.resolve();
    }
  }

  /** A live message of this stream. */
  receive(event: string, data: unknown, position: StreamPosition): void {
    const arrival: Arrival = { event, data, position, mark: this.readsSent };
    const current = this.position;
    if (!this.loaded || (!current && this.awaitingStart)) {
      this.early.push(arrival);
      return;
    }
    if (!current) {
      // The server could not say where the stream stood (its store was down): the first message starts it.
      this.handOver(arrival);
      this.persist();
      return;
    }
    if (position.epoch !== current.epoch) {
      this.foreign.push(arrival);
      if (!this.reading && this.host.connected) void this.catchUp(false);
      return;
    }
    if (position.offset <= current.offset || this.pending.has(position.offset)) return;
    this.pending.set(position.offset, arrival);
    if (this.reading) return;
    this.drainPending();
    this.persist();
    if (this.pending.size > 0) this.armGap();
  }

  /**
   * Waits for the server's {@link begin}: the socket (re)connected, or is
   * about to subscribe the stream's topic. A stream with no position holds
   * live messages until then.
   */
  expectStart(): void {
    this.resetStart({ keepFromStart: true });
  }

  /**
   * Where the server says the stream stood when this socket joined it (the
   * connection's `stream:start`, or the `topic:subscribe` ack). A stream
   * with no position of its own starts there: what it holds up to `top` came
   * before it and is dropped, the rest is handed over in order, and a gap
   * after `top` is read. A stream with a position catches up from it
   * ({@link catchUp}); the start changes nothing for it.
   */
  begin(start: StreamStart | null): void {
    this.awaitingStart = false;
    if (!this.loaded) {
      this.startAt = start;
      return;
    }
    this.startFrom(start);
    this.releaseEarly();
    if (this.pending.size > 0 && !this.reading) this.armGap();
  }

  /**
   * Holds live delivery for a catch-up that starts later: the stream's topic
   * is being subscribed again after a reconnection.
   */
  hold(): void {
    this.expectStart();
    if (this.loaded && !this.position) return;
    this.stop();
    this.reading = true;
    this.setRecovering(true);
  }

  /**
   * Reads what came after the position, a page at a time up to the top the
   * first answer named, handing it over before any live message held
   * meanwhile. `recovering` after a (re)connection or resubscription, not
   * for a gap in live delivery. Resolves when caught up, resynced, or
   * superseded (a disconnection, another catch-up, {@link forget}).
   */
  async catchUp(recovering: boolean): Promise<void> {
    const run = ++this.run;
    this.clearTimers();
    this.reading = true;
    if (recovering && (!this.loaded || (this.position && !this.fromStart))) this.setRecovering(true);
    try {
      await this.loading;
      let target: number | null = null;
      // Filling a hole in live delivery needs only what comes before the messages held back.
      const needed = recovering ? undefined : this.heldUntil();
      while (run === this.run && this.position && !(recovering && this.fromStart) && this.host.connected) {
        const { epoch, offset } = this.position;
        const sent = ++this.readsSent;
        let answer: StreamReadResult;
        try {
          answer = await this.host.read(this.stream, epoch, offset, needed !== undefined && needed > offset ? needed : undefined);
        } catch (error) {
          if (run !== this.run) return;
          // The next connection catches up again.
          if (!this.host.connected) return;
          const failure = error as TrussClientError;
          if (!isRetryableCode(failure.code)) {
            // The server will not let this socket read the stream: a topic no longer held (`FORBIDDEN`, its drop notice
            // follows and tells the app), or a read it refuses every time. The next connection or subscription starts afresh.
            if (failure.code !== "FORBIDDEN") this.host.report(failure);
            return this.forget();
          }
          if (failure.code !== "RATE_LIMITED") this.host.report(failure);
          await this.sleep(this.backoff.next());
          continue;
        }
        if (run !== this.run) return;
        this.backoff.reset();
        if (answer.resync !== null || answer.epoch !== epoch) return this.jump(answer);
        for (const entry of answer.entries) {
          if (entry.offset === this.position.offset + 1) this.handOver({ event: entry.event, data: entry.data, position: { stream: this.stream, epoch, offset: entry.offset }, mark: sent });
        }
        // Messages of another epoch that arrived before this read went out were stale: the stream is still in this one.
        this.foreign = this.foreign.filter((arrival) => arrival.mark >= sent);
        this.drainPending();
        this.persist();
        target ??= needed ?? answer.top;
        if (this.position.offset >= target || this.position.offset === offset) return;
      }
    } finally {
      if (run === this.run) this.settle();
    }
  }

  /** The offset just below the first message held back, or `undefined` when none is (a read up to the top). */
  private heldUntil(): number | undefined {
    if (this.pending.size === 0 || !this.position) return undefined;
    const first = Math.min(...this.pending.keys());
    return first > this.position.offset + 1 ? first - 1 : undefined;
  }

  /** Stops reading and timers, keeping the position and what arrived: the connection dropped. */
  pause(): void {
    this.stop();
    this.reading = false;
    this.setRecovering(false);
    // What arrived while waiting for a start that never came is before the next connection's start.
    if (this.loaded && !this.position) this.early = [];
    this.resetStart({ keepFromStart: false });
  }

  /** Forgets the stream's position and everything held for it, here and in the position store. */
  forget(): void {
    this.stop();
    this.loaded = true;
    this.position = null;
    this.saved = null;
    this.early = [];
    this.resetStart({ keepFromStart: false });
    this.pending.clear();
    this.foreign = [];
    this.reading = false;
    this.setRecovering(false);
    this.host.save(this.stream, null);
  }

  /** After a catch-up: live delivery resumes with what waited, and any gap left gets its own read. */
  private settle(): void {
    this.reading = false;
    this.setRecovering(false);
    if (!this.position) return;
    this.drainPending();
    this.persist();
    if (!this.host.connected) return;
    if (this.foreign.length > 0) void this.catchUp(false);
    else if (this.pending.size > 0) this.armGap();
  }

  /** Applies a resync: the gap is skipped, the stream continues from the server's `{ epoch, top }`. */
  private jump(answer: StreamReadResult): void {
    const waiting = [...this.pending.values(), ...this.foreign];
    this.position = { epoch: answer.epoch, offset: answer.top };
    this.pending = new Map();
    this.foreign = [];
    for (const arrival of waiting) {
      if (arrival.position.epoch === answer.epoch && arrival.position.offset > answer.top) this.pending.set(arrival.position.offset, arrival);
    }
    this.persist();
    this.host.resync({
      stream: this.stream,
      topic: topicOfStream(this.stream),
      reason: answer.resync?.reason ?? "EPOCH_CHANGED",
      message: answer.resync?.message ?? `The history of "${this.stream}" was lost since this device's last message; refetch its state.`,
    });
  }

  /** Waits for the server's next {@link begin}, dropping any start that came early; `fromStart` too unless kept. */
  private resetStart({ keepFromStart }: { keepFromStart: boolean }): void {
    this.awaitingStart = true;
    this.startAt = undefined;
    if (!keepFromStart) this.fromStart = false;
  }

  /** Takes the server's start as the position of a stream that has none. */
  private startFrom(start: StreamStart | null): void {
    if (this.position || !start || start.epoch === null) return;
    this.position = { epoch: start.epoch, offset: start.top };
    this.fromStart = true;
    this.persist();
  }

  /** Hands what arrived early to {@link receive} again, now that it can place it. */
  private releaseEarly(): void {
    for (const arrival of this.early.splice(0)) this.receive(arrival.event, arrival.data, arrival.position);
  }

  private handOver(arrival: Arrival): void {
    this.position = { epoch: arrival.position.epoch, offset: arrival.position.offset };
    this.pending.delete(arrival.position.offset);
    this.host.deliver(arrival.event, arrival.data, this.stream);
  }

  private drainPending(): void {
    for (let next = this.pending.get(this.position!.offset + 1); next; next = this.pending.get(this.position!.offset + 1)) this.handOver(next);
  }

  private persist(): void {
    const { position, saved } = this;
    if (!position || (saved && saved.epoch === position.epoch && saved.offset === position.offset)) return;
    this.saved = position;
    this.host.save(this.stream, position);
  }

  /** Reads the gap once it outlived the grace period without progress; progress gives the gap left a new grace. */
  private armGap(): void {
    if (this.gapTimer !== undefined || this.reading) return;
    const at = this.position?.offset;
    this.gapTimer = setTimeout(() => {
      this.gapTimer = undefined;
      if (this.reading || !this.position || this.pending.size === 0 || !this.host.connected) return;
      if (this.position.offset !== at) return this.armGap();
      void this.catchUp(false);
    }, GAP_GRACE_MS);
  }

  private setRecovering(recovering: boolean): void {
    if (this.recovering === recovering) return;
    this.recovering = recovering;
    this.host.recoveryChanged();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.retryTimer = setTimeout(resolve, ms);
    });
  }

  private stop(): void {
    this.run += 1;
    this.clearTimers();
  }

  private clearTimers(): void {
    clearTimeout(this.gapTimer);
    clearTimeout(this.retryTimer);
    this.gapTimer = undefined;
    this.retryTimer = undefined;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/** Whether the third argument of an application event is a stream position (stored broadcasts carry one). */
export function isStreamPosition(value: unknown): value is StreamPosition {
  const candidate = value as Partial<StreamPosition> | null;
  return (
    typeof candidate === "object" &&
    candidate !== null &&
    typeof candidate.stream === "string" &&
    typeof candidate.epoch === "string" &&
    Number.isSafeInteger(candidate.offset) &&
    candidate.offset! >= 1
  );
}

/** Whether `value` is a well-formed {@link StreamStart} of `stream` (the connection's `stream:start`, or a `topic:subscribe` ack's `start`). */
export function isStreamStart(value: unknown, stream: string): value is StreamStart {
  const start = value as Partial<StreamStart> | null;
  return (
    typeof start === "object" &&
    start !== null &&
    start.stream === stream &&
    (typeof start.epoch === "string" || start.epoch === null) &&
    Number.isSafeInteger(start.top) &&
    start.top! >= 0
  );
}
