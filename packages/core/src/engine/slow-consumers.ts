import type { TrussSocket } from "./context.js";
import type { ErrorPayload } from "../errors.js";
import { PROTOCOL_EVENTS } from "@truss/protocol";
import type { EngineContext } from "./context.js";
import { packetBytes } from "./limits.js";

/** How often every socket's outgoing buffer is measured. */
const CHECK_INTERVAL_MS = 250;
/** How long a disconnected slow consumer's transport may take to close before it is cut. */
const TERMINATE_AFTER_MS = 1000;

/** The parts of Engine.IO's socket this reads: packets not yet handed to the transport, and the transport. */
interface EngineConnection {
  readyState: string;
  writeBuffer: Array<{ data?: unknown }>;
  transport: { name: string; socket?: { bufferedAmount?: number; terminate?: () => void } };
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
 */
export class SlowConsumerGuard {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: EngineContext,
    private readonly maxBufferedBytes: number,
    private readonly sockets: () => Iterable<{ socket: TrussSocket }>,
  ) {}

  /** Starts the periodic check; its timer never keeps the process alive. */
  start(): void {
    this.timer = setInterval(() => this.check(), CHECK_INTERVAL_MS).unref();
  }

  /** Stops the periodic check. */
  stop(): void {
    clearInterval(this.timer);
  }

  /** Measures every socket once and disconnects those over the limit. */
  check(): void {
    for (const { socket } of this.sockets()) {
      const conn = socket.conn as unknown as EngineConnection;
      if (conn.readyState !== "open") continue;
      const inTransport = conn.transport.socket?.bufferedAmount ?? 0;
      if (conn.writeBuffer.length === 0 && inTransport <= this.maxBufferedBytes) continue;
      if (queuedBytes(conn) + inTransport > this.maxBufferedBytes) this.disconnect(socket, conn);
    }
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
  }
}

function queuedBytes(conn: EngineConnection): number {
  let bytes = 0;
  for (const packet of conn.writeBuffer) bytes += packetBytes(packet.data);
  return bytes;
}
