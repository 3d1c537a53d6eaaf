import type { TrussSocket } from "./context.js";

/**
 * Socket.IO packets written as text the engine already holds, instead of
 * objects Socket.IO walks for binary and encodes again for each socket.
 *
 * The engine checks and encodes application data once, at the call (see
 * `jsonCopy`). A `socket.emit` of the same data would walk it again for
 * binary parts and stringify it again, once per socket it goes to. Here the
 * packet is put together from that JSON text once and handed to each socket's
 * Engine.IO connection, as Socket.IO's own adapters do with a broadcast they
 * encoded once.
 *
 * Only where that gives the same bytes: the server encodes with Socket.IO's
 * default parser and no replacer (checked once per encoder, by encoding a
 * probe), the server keeps no packets for connection state recovery (that goes
 * through the adapter), and nobody listens to the socket's outgoing packets
 * (`socket.onAnyOutgoing`). Anywhere else the caller emits as usual.
 */

/** What a Socket.IO server's encoder looks like from here. */
interface Encoder {
  encode(packet: { type: number; nsp: string; data: unknown[] }): unknown[];
  replacer?: unknown;
}

/** What the parts of a socket this module uses look like; not public in Socket.IO's types. */
interface WritableClient {
  encoder: Encoder;
  writeToEngine(encoded: string, options: { compress: boolean }): void;
}

/** Encoders known to write `2[...]` + the namespace as the default parser does, by the encoder. */
const plainEncoders = new WeakMap<object, boolean>();

/** Socket.IO's packet type of an event. */
const EVENT = 2;

/**
 * The text of an event packet of `namespace` (Socket.IO's wire form, before
 * Engine.IO's own prefix): `2["<event>",<payload>]`, or with `/<name>,`
 * after the type outside the main namespace. `payloadJson` must be JSON text.
 */
export function encodeEvent(namespace: string, event: string, payloadJson: string): string {
  return `${EVENT}${namespace === "/" ? "" : `${namespace},`}[${JSON.stringify(event)},${payloadJson}]`;
}

/** A packet that can give its text (from {@link encodeEvent}) for a socket of `namespace`, made only when asked. */
export interface EncodedPacket {
  encoded(namespace: string): string;
}

/**
 * Writes the packet's text to the socket when the server would have written
 * those same bytes for an emit, and says so; `false` means the caller emits
 * the event the usual way. Nothing is written to a socket that has left.
 */
export function writeEncoded(socket: TrussSocket, packet: EncodedPacket): boolean {
  const client = socket.client as unknown as WritableClient;
  if (!takesEncodedText(socket, client)) return false;
  if (socket.connected) client.writeToEngine(packet.encoded(socket.nsp.name), { compress: true });
  return true;
}

function takesEncodedText(socket: TrussSocket, client: WritableClient): boolean {
  if ((socket.nsp.server as unknown as { opts?: { connectionStateRecovery?: unknown } }).opts?.connectionStateRecovery) return false;
  if (socket.listenersAnyOutgoing().length > 0) return false;
  const { encoder } = client;
  if (typeof encoder?.encode !== "function" || typeof client.writeToEngine !== "function") return false;
  let plain = plainEncoders.get(encoder);
  if (plain === undefined) {
    plain = encoder.replacer === undefined && isDefaultEncoding(encoder);
    plainEncoders.set(encoder, plain);
  }
  return plain;
}

/** Whether the encoder writes a probe event exactly as {@link encodeEvent} does. */
function isDefaultEncoding(encoder: Encoder): boolean {
  try {
    const probe = { n: 1, s: "é\u2028", a: [true, null] };
    const encoded = encoder.encode({ type: EVENT, nsp: "/probe", data: ["probe", probe] });
    return encoded.length === 1 && encoded[0] === encodeEvent("/probe", "probe", JSON.stringify(probe));
  } catch {
    return false;
  }
}
