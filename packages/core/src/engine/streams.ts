import type { StreamKey, StreamStore } from "../streams/store.js";
import { TrussError } from "../errors.js";
import { COMPANY_STREAM, topicStream, type StreamPosition, type StreamReadResult } from "@truss/protocol";
import type { Connection } from "./connection.js";
import { emitApplicationEvent, type EngineContext } from "./context.js";
import { storeCall } from "./failures.js";
import { assertDepth, encodeJson } from "./payload.js";
import { topicRoom } from "./topics.js";

const TOPIC_PREFIX = topicStream("");

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
   * Stores a broadcast in its stream, then emits it to `room` with its
   * position as third argument. Never rejects: when the store cannot take
   * it, the broadcast still goes out live, without a position (devices that
   * were away will not get it), the failure is counted, and `null` comes back.
   *
   * @throws Error before `attach`/`bind`, and TrussError `INVALID_PAYLOAD` /
   * `PAYLOAD_TOO_LARGE`, synchronously, before anything is stored or sent.
   */
  publish(key: StreamKey, room: string, event: string, data: unknown): Promise<StreamPosition | null> {
    const namespace = this.ctx.namespace();
    assertDepth(data, this.limits.maxDepth, `The data of "${event}"`);
    encodeJson(data, this.limits.maxMessageBytes, `The data of "${event}"`);
    // Settled at once (never rejects), so a failure waiting behind an earlier publish is never an unhandled rejection.
    const appended = storeCall(this.ctx, "streams", "append", () => this.store.append(key, event, data)).then(
      ({ epoch, entry }) => ({ position: { stream: key.stream, epoch, offset: entry.offset } }),
      (error: unknown) => ({ error }),
    );
    // The room names the stream (company or topic, within one company): no key to build per broadcast.
    const previous = this.tails.get(room);
    const published = (previous ? previous.then(() => appended) : appended).then((outcome): StreamPosition | null => {
      const target = namespace.to(room);
      if ("position" in outcome) {
        emitApplicationEvent(target, event, data, outcome.position);
        return outcome.position;
      }
      this.ctx.metrics.inc("truss_stream_append_failures_total");
      this.ctx.logger.warn("a broadcast could not be stored; sent live only", {
        stream: key.stream,
        error: outcome.error instanceof Error ? outcome.error.message : String(outcome.error),
      });
      emitApplicationEvent(target, event, data);
      return null;
    });
    this.tails.set(room, published);
    void published.then(() => {
      if (this.tails.get(room) === published) this.tails.delete(room);
    });
    return published;
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
    const topic = stream.startsWith(TOPIC_PREFIX) ? stream.slice(TOPIC_PREFIX.length) : null;
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
