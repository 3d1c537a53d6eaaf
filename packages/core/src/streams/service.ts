import type { StreamKey, StreamStore } from "./store.js";
import { TrussError } from "../kernel/errors.js";
import { COMPANY_STREAM, PROTOCOL_EVENTS, topicOfStream, type StreamPosition, type StreamReadResult, type StreamStart } from "@truss/protocol";
import type { Connection } from "../kernel/connection.js";
import { emitApplicationEvent, type EngineContext, type TrussNamespace } from "../kernel/context.js";
import { storeCall } from "../kernel/failures.js";
import { jsonSnapshot } from "../kernel/payload.js";
import { topicRoom } from "../kernel/rooms.js";


const isOffset = (value: unknown): value is number => typeof value === "number" && Number.isSafeInteger(value) && value >= 0;

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
 * Company and topic broadcasts as recoverable streams: each broadcast is
 * stored with its stream's next offset before it is published with that
 * position, and a device that reconnects reads what it missed, or learns
 * with a coded resync that it cannot.
 */
export class StreamService {
  /** Per stream (by its room), the last append in flight on this node: publishes follow it so this node sends each stream in offset order. */
  private readonly tails = new Map<string, Promise<unknown>>();

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
  snapshot(event: string, data: unknown): unknown {
    return jsonSnapshot(data, { maxDepth: this.limits.maxDepth, maxBytes: this.limits.maxMessageBytes }, `The data of "${event}"`).value;
  }

  /**
   * Stores a broadcast in its stream, then emits it to `room` with its
   * position as third argument. Never rejects: when the store cannot take
   * it, the broadcast still goes out live, without a position (devices that
   * were away will not get it), the failure is counted, and `null` comes back.
   *
   * @throws Error before `attach`/`bind`, and TrussError `INVALID_PAYLOAD` /
   * `PAYLOAD_TOO_LARGE`, synchronously, before anything is stored or sent.
   */
  publish(key: StreamKey, room: string, event: string, data: unknown): Promise<StreamPosition | null> {
    // Throws before attach/bind, before anything is stored.
    const namespace = this.ctx.namespace();
    const copy = this.snapshot(event, data);
    // Settled at once (never rejects), so a failure waiting behind an earlier publish is never an unhandled rejection.
    const appended = storeCall(this.ctx, "streams", "append", () => this.store.append(key, event, copy)).then(
      ({ epoch, entry }) => ({ position: { stream: key.stream, epoch, offset: entry.offset } }),
      (error: unknown) => ({ error }),
    );
    // The room names the stream (company or topic, within one company): no key to build per broadcast.
    const previous = this.tails.get(room);
    const published = (previous ? previous.then(() => appended) : appended).then((outcome): StreamPosition | null => {
      if ("position" in outcome) {
        this.emitLive(namespace, room, event, copy, outcome.position);
        return outcome.position;
      }
      this.ctx.metrics.inc("truss_stream_append_failures_total");
      this.ctx.logger.warn("a broadcast could not be stored; sent live only", {
        stream: key.stream,
        error: outcome.error instanceof Error ? outcome.error.message : String(outcome.error),
      });
      this.emitLive(namespace, room, event, copy);
      return null;
    });
    this.tails.set(room, published);
    const forget = () => {
      if (this.tails.get(room) === published) this.tails.delete(room);
    };
    void published.then(forget, forget);
    return published;
  }

  /**
   * Sends a broadcast to a room. A failure here (an adapter that cannot
   * publish) must not break the stream's chain of publishes: a stored
   * broadcast is still read by the devices that missed it.
   */
  private emitLive(namespace: TrussNamespace, room: string, event: string, data: unknown, position?: StreamPosition): void {
    try {
      emitApplicationEvent(namespace.to(room), event, data, position);
    } catch (error) {
      this.ctx.metrics.inc("truss_broadcast_send_failures_total");
      this.ctx.logger.warn("a broadcast could not be sent live", { room, error: error instanceof Error ? error.message : String(error) });
    }
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

  /** Tells a socket that has just joined its company's room where the company's stream stands (`stream:start`). */
  async open(connection: Connection): Promise<void> {
    const start = await this.startOf({ companyId: connection.principal.companyId, stream: COMPANY_STREAM });
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
