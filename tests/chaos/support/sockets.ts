import type { Socket as ClientSocket } from "socket.io-client";

/**
 * What an emit with an ack came to: the ack, a disconnect first, nothing in
 * time, or the client library failing to encode the payload (JSON.stringify
 * runs out of stack a few thousand levels deep, depending on how much stack
 * the caller already uses), in which case nothing reached the server.
 */
export type EmitResult = { ack: unknown } | { disconnected: string } | { timedOut: true } | { notEncoded: string };

/**
 * Emits with an ack and resolves with the ack, or with the disconnect that
 * came first (a frame past the transport cap closes the connection), or with
 * a time-out, so no case waits the whole time-out for a closed socket.
 */
export function emitForAnswer(socket: ClientSocket, event: string, args: unknown[], timeoutMs: number): Promise<EmitResult> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish({ timedOut: true }), timeoutMs);
    const onDisconnect = (reason: string) => finish({ disconnected: reason });
    const finish = (result: EmitResult) => {
      clearTimeout(timer);
      socket.off("disconnect", onDisconnect);
      resolve(result);
    };
    socket.on("disconnect", onDisconnect);
    try {
      socket.emit(event, ...args, (ack: unknown) => finish({ ack }));
    } catch (error) {
      finish({ notEncoded: error instanceof Error ? error.message : String(error) });
    }
  });
}

/** A value as at most `max` characters of JSON, for assertion messages. */
export function preview(value: unknown, max = 300): string {
  let json: string;
  try {
    json = JSON.stringify(value) ?? String(value);
  } catch {
    json = String(value);
  }
  return json.length > max ? `${json.slice(0, max)}… (${json.length} chars)` : json;
}
