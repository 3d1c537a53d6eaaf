import { ServerResponse, type IncomingMessage } from "node:http";
import type { Server } from "socket.io";
import type { TrussSocket } from "../kernel/context.js";

/** The stand-in response Engine.IO gives its middlewares during a WebSocket upgrade. */
interface UpgradeResponse {
  req: IncomingMessage | null;
}

/**
 * Engine.IO keeps the HTTP upgrade request of every WebSocket connection for
 * as long as the connection lives: as `socket.conn.request`, and (engine.io
 * 6.6) as `req` of the upgrade's stand-in response, which a `close` listener
 * on the TCP socket keeps alive — so Socket.IO's documented
 * `rawSocket.request = null` alone frees nothing. Socket.IO copies what it
 * needs (headers, address, query, auth) into `socket.handshake` before any
 * middleware runs, and Truss reads only that, so both references can go once
 * the socket is admitted.
 */
export class UpgradeRequests {
  private readonly responses = new WeakMap<IncomingMessage, UpgradeResponse>();

  /** Remembers each upgrade's stand-in response, through an Engine.IO middleware. */
  track(io: Server): void {
    // A server bound before it is attached has no Engine.IO server yet; then nothing is tracked.
    io.engine?.use((req: IncomingMessage, res: ServerResponse | UpgradeResponse, next: () => void) => {
      if (!(res instanceof ServerResponse)) this.responses.set(req, res);
      next();
    });
  }

  /** Drops the socket's upgrade request; `socket.request` is `null` afterwards. */
  release(socket: TrussSocket): void {
    const conn = socket.conn as unknown as { request: IncomingMessage | null };
    const request = conn.request;
    if (!request) return;
    const response = this.responses.get(request);
    if (response) response.req = null;
    conn.request = null;
  }
}
