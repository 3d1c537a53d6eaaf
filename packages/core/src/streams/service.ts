import type { StreamAppendOptions, StreamEntry, StreamKey, StreamStore } from "./store.js";
import { isIdempotencyKey, MAX_IDEMPOTENCY_KEY_LENGTH } from "../kernel/idempotency.js";
import { messageOf, TrussError } from "../kernel/errors.js";
import { COMPANY_STREAM, PROTOCOL_EVENTS, topicOfStream, type StreamLabel, type StreamPosition, type StreamReadResult, type StreamStart } from "@truss/protocol";
import type { Connection } from "../kernel/connection.js";
import { emitApplicationEvent, type EngineContext, type TrussNamespace, type TrussSocket } from "../kernel/context.js";
import { storeCall } from "../kernel/failures.js";
import { jsonSnapshot } from "../kernel/payload.js";
import { topicRoom } from "../kernel/rooms.js";


const isOffset = (value: unknown): value is number => typeof value === "number" && Number.isSafeInteger(value) && value >= 0;

/** Options of one `toCompany(...).emit` or `toTopic(...).emit`. */
export interface BroadcastSendOptions {
  /**
   * Makes the broadcast safe to retry, e.g. from an outbox relay: a repeat
   * with the same key for the same stream (company, and company or topic
   * stream) within the stream's TTL stores nothing new and resolves with the
   * first broadcast's position (same epoch and offset). Use one key per
   * logical event, such as the id of its outbox row. A non-empty string of
   * well-formed Unicode, at most 200 characters. Keys are remembered for the
   * stream TTL and, per stream, for at most 10 × the stream's `size`
   * broadcasts; past either, the key is new again.
   */
  idempotencyKey?: string;
}

/** What the store made of one append, or why it could not. */
type AppendOutcome = { position: StreamPosition; entry: StreamEntry; duplicate: boolean } | { error: unknown };

/** The most entries one `stream:read` returns. */
export const STREAM_READ_PAGE = 200;

/** Limits on what a stream stores and replays. */
export interface StreamLimits {
  /** Largest broadcast data, in bytes of JSON. */
  maxMessageBytes: number;
  /** Deepest nesting of broadcast data. */
  maxDepth: number;
  /** Most missed messages one device may catch up on; past it the answer is a `TOO_MANY_MISSED` resync. */
  maxReplay: number;
}

/**
 * The idempotency key of a broadcast's options, or `undefined` without one.
 *
 * @throws TrussError `INVALID_PAYLOAD` when the options are not an object or
 * the key is not a non-empty string of well-formed Unicode of at most 200 characters.
 */
function broadcastKeyOf(options: BroadcastSendOptions | undefined): string | undefined {
  if (options === undefined) return undefined;
  if (typeof options !== "object" || options === null) {
    throw new TrussError("INVALID_PAYLOAD", `emit(event, data, options): options must be an object, got ${options === null ? "null" : typeof options}.`);
  }
  const key = options.idempotencyKey;
  if (key === undefined || isIdempotencyKey(key)) return key;
  throw new TrussError(
    "INVALID_PAYLOAD",
    `emit(event, data, { idempotencyKey }): the key must be a non-empty string of well-formed Unicode of at most ${MAX_IDEMPOTENCY_KEY_LENGTH} characters.`,
  );
}

/**
 * Company and topic broadcasts as recoverable streams: each broadcast is
 * stored with its stream's next offset before it is published with that
 * position, and a device that reconnects reads what it missed, or learns
 * with a coded resync that it cannot.
 */
export class StreamService {
  /** Per stream (by its room), the last append in flight on this node: publishes follow it so this node sends each stream in offset order. */
  private readonly tails = new Map<string, Promise<unknown>>();
  /** Company stream starts read for sockets still joining, until {@link open} sends them. */
  private readonly starts = new WeakMap<TrussSocket, StreamStart>();

  constructor(
    private readonly ctx: EngineContext,
    private readonly store: StreamStore,
    private readonly limits: StreamLimits,
  ) {}

  /**
   * Checks a broadcast's data and returns the copy every later step uses,
   * taken now, so an application that changes (or breaks) the object after
   * the call changes nothing stored or sent.
   *
   * @throws TrussError `INVALID_PAYLOAD` / `PAYLOAD_TOO_LARGE`.
   */
  private snapshot(event: string, data: unknown): unknown {
    return jsonSnapshot(data, { maxDepth: this.limits.maxDepth, maxBytes: this.limits.maxMessageBytes }, `The data of "${event}"`).value;
  }

  /**
   * Stores a broadcast in its stream, then emits it to `room` with its
   * position as third argument. Without an idempotency key it never
   * rejects: when the store cannot take it, the broadcast still goes out
   * live, without a position (devices that were away will not get it), the
   * failure is counted, and `null` comes back.
   *
   * With `options.idempotencyKey` it resolves with a position or rejects:
   * when the store cannot confirm the append, nothing goes out live and the
   * store's error (`STORE_UNAVAILABLE`) rejects, so a retry with the same key
   * reaches devices once. A duplicate (the key was used on this stream
   * within the TTL) stores nothing and resolves with the first position; the
   * first entry is sent to the room again under that position, because the
   * first send may have been stored without being sent (its process stopped
   * in between). Clients drop an offset they already have, so a device that
   * got it the first time does not get it twice.
   *
   * @throws Error before `attach`/`bind`, and TrussError `INVALID_PAYLOAD`
   * (the data, or a malformed idempotency key) / `PAYLOAD_TOO_LARGE`,
   * synchronously, before anything is stored or sent.
   */
  publish(key: StreamKey, room: string, event: string, data: unknown, options?: BroadcastSendOptions): Promise<StreamPosition | null> {
    // Throws before attach/bind, before anything is stored.
    const namespace = this.ctx.namespace();
    const copy = this.snapshot(event, data);
    const idempotencyKey = broadcastKeyOf(options);
    const appendOptions: StreamAppendOptions | undefined = idempotencyKey === undefined ? undefined : { idempotencyKey };
    // Settled at once (never rejects), so a failure waiting behind an earlier publish is never an unhandled rejection.
    const appended: Promise<AppendOutcome> = storeCall(this.ctx, "streams", "append", () => this.store.append(key, event, copy, appendOptions))
      .then(({ epoch, entry, duplicate }) => {
        if (appendOptions && typeof duplicate !== "boolean") {
          // A custom store written against the old contract, which ignores the key: a retry would store twice.
          throw new TrussError("INTERNAL_ERROR", "The stream store's append did not resolve with { epoch, entry, duplicate }; update it to the current StreamStore contract.");
        }
        return { position: { stream: key.stream, epoch, offset: entry.offset }, entry, duplicate: duplicate === true };
      })
      .catch((error: unknown) => ({ error }));
    // The room names the stream (company or topic, within one company): no key to build per broadcast.
    const previous = this.tails.get(room);
    const published = (previous ? previous.then(() => appended) : appended).then((outcome): AppendOutcome => {
      if ("position" in outcome) {
        if (outcome.duplicate) {
          this.ctx.metrics.inc("truss_stream_duplicates_total");
          this.emitLive(namespace, room, outcome.entry.event, outcome.entry.data, outcome.position);
        } else {
          this.emitLive(namespace, room, event, copy, outcome.position);
        }
        return outcome;
      }
      // The caller gets the error and retries with the key; sent live now, the retry would reach devices twice.
      if (appendOptions) return outcome;
      this.ctx.metrics.inc("truss_stream_append_failures_total");
      this.ctx.logger.warn("a broadcast could not be stored; sent live only", {
        stream: key.stream,
        error: outcome.error instanceof Error ? outcome.error.message : String(outcome.error),
      });
      this.emitLive(namespace, room, event, copy, labelOf(key));
      return outcome;
    });
    this.tails.set(room, published);
    const forget = () => {
      if (this.tails.get(room) === published) this.tails.delete(room);
    };
    void published.then(forget, forget);
    return published.then((outcome) => {
      if ("position" in outcome) return outcome.position;
      if (appendOptions) throw outcome.error;
      return null;
    });
  }

  /**
   * Sends a broadcast to a room. A failure here (an adapter that cannot
   * publish) must not break the stream's chain of publishes: a stored
   * broadcast is still read by the devices that missed it.
   */
  private emitLive(namespace: TrussNamespace, room: string, event: string, data: unknown, where: StreamPosition | StreamLabel | undefined): void {
    try {
      emitApplicationEvent(namespace.to(room), event, data, where);
    } catch (error) {
      this.ctx.metrics.inc("truss_broadcast_send_failures_total");
      this.ctx.logger.warn("a broadcast could not be sent live", { room, error: messageOf(error) });
    }
  }

  /**
   * Sends a broadcast live only (`volatile`): checked and copied like a
   * stored one, so a value JSON cannot carry is a coded error rather than
   * the encoder's throw, and labelled with its topic's stream.
   *
   * @throws Error before `attach`/`bind`, and TrussError `INVALID_PAYLOAD` / `PAYLOAD_TOO_LARGE`.
   */
  publishVolatile(key: StreamKey, room: string, event: string, data: unknown): void {
    emitApplicationEvent(this.ctx.namespace().to(room), event, this.snapshot(event, data), labelOf(key));
  }

  /**
   * Where a stream stands now, for a socket that has just joined its room:
   * every later message reaches the socket live or can be read after `top`.
   * Never rejects: when the store cannot be read, the epoch is `null` (the
   * failure is counted by `storeCall`).
   */
  async startOf(key: StreamKey): Promise<StreamStart> {
    try {
      const { epoch, top } = await storeCall(this.ctx, "streams", "read", () => this.store.read(key, 0, 0));
      return { stream: key.stream, epoch, top };
    } catch {
      return { stream: key.stream, epoch: null, top: 0 };
    }
  }

  /**
   * Reads where the company's stream stands for a socket that is about to
   * join its company's room, so {@link open} can tell it (`stream:start`).
   * Read before the join, never after: a broadcast committed between a join
   * and a later read would be counted in the start, and a device with no
   * position drops what its start counts. Read before, such a broadcast
   * either reaches the socket live after its start, or was stored before the
   * join and is read as a gap once the next one arrives.
   */
  async prepare(socket: TrussSocket, companyId: string): Promise<void> {
    this.starts.set(socket, await this.startOf({ companyId, stream: COMPANY_STREAM }));
  }

  /** Tells a socket that has just joined its company's room where the company's stream stood before it joined (`stream:start`). */
  open(connection: Connection): void {
    const start = this.starts.get(connection.socket) ?? { stream: COMPANY_STREAM, epoch: null, top: 0 };
    this.starts.delete(connection.socket);
    if (connection.socket.connected) connection.socket.emit(PROTOCOL_EVENTS.streamStart, start);
  }

  /**
   * Answers `stream:read`: the company's stream, or a topic stream the
   * socket holds (it was authorized when subscribing). The gap after `after`
   * in `epoch` is returned a page at a time, or a resync says why it cannot be.
   */
  async read(connection: Connection, payload: unknown): Promise<StreamReadResult> {
    const request = (payload ?? {}) as { stream?: unknown; epoch?: unknown; after?: unknown; until?: unknown };
    const { stream, epoch, after, until } = request;
    if (
      typeof stream !== "string" ||
      typeof epoch !== "string" ||
      epoch.length > 200 ||
      !isOffset(after) ||
      (until !== undefined && !(isOffset(until) && until > after))
    ) {
      throw new TrussError("INVALID_PAYLOAD", "stream:read takes { stream, epoch, after, until? }: the last offset the client processed, and optionally the last it needs.");
    }
    const { companyId } = connection.principal;
    const topic = topicOfStream(stream);
    if (stream !== COMPANY_STREAM && !(topic !== null && connection.socket.rooms.has(topicRoom(companyId, topic)))) {
      throw new TrussError("FORBIDDEN", `Stream "${stream.slice(0, 200)}" is not one this connection may read: subscribe to its topic first.`);
    }
    const found = await storeCall(this.ctx, "streams", "read", () => this.store.read({ companyId, stream }, after, STREAM_READ_PAGE));
    const resync = (reason: "EPOCH_CHANGED" | "HISTORY_TRIMMED" | "HISTORY_EXPIRED" | "TOO_MANY_MISSED", message: string): StreamReadResult => {
      this.ctx.metrics.inc("truss_stream_resyncs_total", { reason });
      return { epoch: found.epoch, top: found.top, entries: [], resync: { reason, message } };
    };
    if (found.epoch !== epoch) return resync("EPOCH_CHANGED", `The history of "${stream}" was lost since this device's last message; refetch its state.`);
    if (after > found.top) return resync("EPOCH_CHANGED", `"${stream}" has no offset ${after}; its history was lost. Refetch its state.`);
    if (found.gap) {
      const why = found.gap === "HISTORY_TRIMMED" ? "dropped by the history's size cap" : "older than the history's TTL";
      return resync(found.gap, `Messages of "${stream}" after offset ${after} were ${why}; refetch its state.`);
    }
    const missed = Math.min(found.top, until ?? found.top) - after;
    if (missed > this.limits.maxReplay) {
      return resync("TOO_MANY_MISSED", `${missed} messages of "${stream}" were missed; more than the ${this.limits.maxReplay} replayed at once. Refetch its state.`);
    }
    this.ctx.metrics.inc("truss_stream_replayed_total", undefined, found.entries.length);
    if (found.entries.length > 0) this.ctx.metrics.inc("truss_stream_recoveries_total");
    return { epoch: found.epoch, top: found.top, entries: found.entries, resync: null };
  }
}

/** What a broadcast without a place in its stream carries: its topic's stream; nothing for the company's, which is implied. */
function labelOf(key: StreamKey): StreamLabel | undefined {
  return key.stream === COMPANY_STREAM ? undefined : { stream: key.stream };
}
