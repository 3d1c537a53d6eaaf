import { deviceKey, type Connection } from "../kernel/connection.js";
import { messageOf, type ErrorPayload } from "../kernel/errors.js";
import { PROTOCOL_EVENTS } from "@truss/protocol";
import { isClustered, onNodeEvent, type EngineContext, type SlowConsumerNotice, type TrussSocket } from "../kernel/context.js";
import { packetBytes } from "../kernel/limits.js";

/** How often every socket's outgoing buffer is measured. */
const CHECK_INTERVAL_MS = 250;
/** How long a disconnected slow consumer's transport may take to close before it is cut. */
const TERMINATE_AFTER_MS = 1000;
/** Server-side event that tells the other nodes a device was cut, or was told so on a later connection. */
const NOTICE_EVENT = "truss:slow-consumer";
/** How long a cut is remembered for the device's next connection. */
const REMEMBER_CUT_MS = 10 * 60_000;
/** Most cuts one node remembers; past it the oldest is forgotten first. */
const MAX_REMEMBERED_CUTS = 10_000;
/** The WebSocket close code of a connection that ended without a close frame from the peer. */
const ABNORMAL_CLOSURE = 1006;

/** The parts of Engine.IO's socket this reads: packets not yet handed to the transport, and the transport. */
interface EngineConnection {
  readyState: string;
  writeBuffer: Array<{ data?: unknown }>;
  transport: { name: string; socket?: { bufferedAmount?: number; terminate?: () => void; once?: (event: "close", listener: (code: number) => void) => void } };
}

const SLOW_CONSUMER: ErrorPayload = {
  code: "SLOW_CONSUMER",
  message: "This connection stopped reading and too much was waiting for it; reconnect to carry on.",
};

/**
 * Disconnects sockets whose client stopped reading. A client that stops
 * reading (a frozen tab, a phone whose radio went to sleep mid-transfer)
 * makes every broadcast pile up in its Engine.IO write buffer until the
 * heartbeat gives up, tens of seconds later. This measures each socket's
 * queued bytes a few times a second and, past `maxBufferedBytes`, drops the
 * queue, sends `SLOW_CONSUMER` and disconnects the socket. Healthy sockets
 * have an empty queue and cost one property read per check.
 *
 * A stalled reader never reads that `SLOW_CONSUMER`, so every node also
 * remembers the cut device (for {@link REMEMBER_CUT_MS}, at most
 * {@link MAX_REMEMBERED_CUTS} of them) and tells it why, once, on its next
 * connection, on whichever node that lands; unless its WebSocket answered
 * the close, which proves it read the goodbye.
 */
export class SlowConsumerGuard {
  private timer: NodeJS.Timeout | undefined;
  /** Devices cut recently, by device key, oldest first: when. */
  private readonly cuts = new Map<string, number>();

  constructor(
    private readonly ctx: EngineContext,
    private readonly maxBufferedBytes: number,
    private readonly forEachSocket: (visit: (connection: { socket: TrussSocket }) => void) => void,
  ) {}

  /** Listens for the other nodes' cuts and notices, and starts the periodic check; its timer never keeps the process alive. */
  start(): void {
    onNodeEvent(this.ctx, NOTICE_EVENT, (notice) => {
      if (!isNotice(notice)) return false;
      if (notice.kind === "cut") this.remember(deviceKey(notice), notice.at);
      else this.cuts.delete(deviceKey(notice));
      return true;
    });
    this.timer = setInterval(() => this.check(), CHECK_INTERVAL_MS).unref();
  }

  /** Stops the periodic check. */
  stop(): void {
    clearInterval(this.timer);
  }

  /** Measures every socket once and disconnects those over the limit. */
  check(): void {
    this.forEachSocket(this.measure);
  }

  /** One socket's check; a bound field, so the walk over every connection makes no closure. */
  private readonly measure = ({ socket }: { socket: TrussSocket }): void => {
    const conn = socket.conn as unknown as EngineConnection;
    // Engine.IO hands its queue to the transport whenever the transport can take it, so a reader
    // that stopped shows as packets waiting here: a socket with none is not falling behind, and
    // costs one read (the transport's byte count is a getter over two buffers).
    if (conn.writeBuffer.length === 0 || conn.readyState !== "open") return;
    const inTransport = conn.transport.socket?.bufferedAmount ?? 0;
    if (queuedBytes(conn) + inTransport > this.maxBufferedBytes) this.disconnect(socket, conn);
  };

  /**
   * Tells a device that has just connected that its previous connection was
   * cut as a slow consumer, if it was within {@link REMEMBER_CUT_MS}: an
   * `error` with `SLOW_CONSUMER`, once (the other nodes forget it too).
   */
  open({ socket, principal }: Connection): void {
    if (this.cuts.size === 0) return;
    const key = deviceKey(principal);
    const at = this.cuts.get(key);
    if (at === undefined) return;
    this.cuts.delete(key);
    if (Date.now() - at > REMEMBER_CUT_MS) return;
    socket.emit(PROTOCOL_EVENTS.error, {
      code: "SLOW_CONSUMER",
      message: `This device's previous connection was cut at ${new Date(at).toISOString()}: it stopped reading while more than ${this.maxBufferedBytes} bytes waited for it. It is connected again; what it missed is caught up as after any reconnection.`,
    });
    this.tellOtherNodes({ kind: "told", ...deviceOf(principal), at });
  }

  private disconnect(socket: TrussSocket, conn: EngineConnection): void {
    this.ctx.metrics.inc("truss_slow_consumers_total");
    // What is queued would never be read in time: drop it, so the refusal is next in line.
    conn.writeBuffer.length = 0;
    socket.emit(PROTOCOL_EVENTS.error, SLOW_CONSUMER);
    socket.disconnect(true);
    // A WebSocket close waits for the peer's answer, which a stalled client never sends.
    setTimeout(() => {
      if (conn.readyState !== "closed") conn.transport.socket?.terminate?.();
    }, TERMINATE_AFTER_MS).unref();
    const { principal } = socket.data;
    const key = deviceKey(principal);
    const at = Date.now();
    this.remember(key, at);
    this.tellOtherNodes({ kind: "cut", ...deviceOf(principal), at });
    // A WebSocket peer that answers the close frame (any code but 1006, "closed without one") has read everything
    // sent before it, the goodbye included: it need not be told again. Polling gives no such proof.
    conn.transport.socket?.once?.("close", (code) => {
      if (code === ABNORMAL_CLOSURE || this.cuts.get(key) !== at) return;
      this.cuts.delete(key);
      this.tellOtherNodes({ kind: "told", ...deviceOf(principal), at });
    });
  }

  private remember(key: string, at: number): void {
    this.cuts.delete(key);
    this.cuts.set(key, at);
    const now = Date.now();
    for (const [oldest, cutAt] of this.cuts) {
      if (this.cuts.size <= MAX_REMEMBERED_CUTS && now - cutAt <= REMEMBER_CUT_MS) break;
      this.cuts.delete(oldest);
    }
  }

  /** Best effort: a node that misses a notice only fails to explain one reconnection. */
  private tellOtherNodes(notice: SlowConsumerNotice): void {
    const namespace = this.ctx.namespace();
    if (!isClustered(namespace)) return;
    const failed = (error: unknown) =>
      this.ctx.logger.warn("a slow consumer notice could not be sent to the other nodes", { error: messageOf(error) });
    try {
      // The adapter directly, as revocations do: the namespace drops an async adapter's rejection.
      const sent: unknown = namespace.adapter.serverSideEmit([NOTICE_EVENT, notice]);
      if (sent instanceof Promise) sent.catch(failed);
    } catch (error) {
      failed(error);
    }
  }
}

function queuedBytes(conn: EngineConnection): number {
  let bytes = 0;
  for (const packet of conn.writeBuffer) bytes += packetBytes(packet.data);
  return bytes;
}

function deviceOf(principal: { companyId: string; userId: string; deviceId: string }): { companyId: string; userId: string; deviceId: string } {
  return { companyId: principal.companyId, userId: principal.userId, deviceId: principal.deviceId };
}

function isNotice(value: unknown): value is SlowConsumerNotice {
  const notice = value as Partial<SlowConsumerNotice> | null;
  return (
    typeof notice === "object" &&
    notice !== null &&
    (notice.kind === "cut" || notice.kind === "told") &&
    typeof notice.companyId === "string" &&
    typeof notice.userId === "string" &&
    typeof notice.deviceId === "string" &&
    typeof notice.at === "number"
  );
}
