import type { TestServer } from "@truss/test-utils";

/** The parts of an Engine.IO connection this reads: packets it still holds, and the WebSocket under it. */
interface EngineConnection {
  writeBuffer: Array<{ data?: unknown }>;
  transport: { socket?: { bufferedAmount?: number } };
}

/**
 * Bytes the server holds for one socket that it has not handed to the
 * kernel: Engine.IO's write buffer plus the WebSocket's `bufferedAmount`.
 * This is what a stalled reader makes grow, so the test watches the same
 * quantity the engine's guard must bound. `null` once the socket is gone.
 */
export function queuedBytes(server: TestServer, socketId: string): number | null {
  const socket = server.engine.io?.of("/").sockets.get(socketId);
  if (!socket) return null;
  const conn = socket.conn as unknown as EngineConnection;
  let bytes = conn.transport.socket?.bufferedAmount ?? 0;
  for (const packet of conn.writeBuffer) {
    if (typeof packet.data === "string") bytes += Buffer.byteLength(packet.data);
    else if (packet.data instanceof ArrayBuffer || ArrayBuffer.isView(packet.data)) bytes += packet.data.byteLength;
  }
  return bytes;
}
