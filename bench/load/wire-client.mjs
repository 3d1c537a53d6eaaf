import WebSocket from "ws";

/** Where every bench server listens, in the Engine.IO v4 WebSocket-only form. */
export const socketUrl = (port) => `ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`;

const OPEN = 48; // "0"
const CLOSE = 49; // "1"
const PING = 50; // "2"
const MESSAGE = 52; // "4"
// Socket.IO packet types, the second character of an Engine.IO message.
const SIO_CONNECT = 48; // "0"
const SIO_DISCONNECT = 49; // "1"
const SIO_EVENT = 50; // "2"
const SIO_ACK = 51; // "3"
const SIO_CONNECT_ERROR = 52; // "4"

/**
 * A Socket.IO client reduced to what the bench needs, on `ws`: Engine.IO v4
 * open and ping/pong, Socket.IO v5 CONNECT with an auth payload, events and
 * acks, over a WebSocket from the first request (no polling, no upgrade).
 * Incoming events are handed over as the raw packet text so the generator
 * parses only the fields it measures.
 */
export class WireClient {
  /**
   * @param {object} options
   * @param {string} options.url `socketUrl(port)`
   * @param {object} options.auth The CONNECT payload, `{ token, deviceId }`; may be replaced before a reconnection.
   * @param {(client: WireClient, event: string, packet: string) => void} [options.onEvent]
   */
  constructor({ url, auth, onEvent }) {
    this.url = url;
    this.auth = auth;
    this.onEvent = onEvent ?? (() => {});
    this.ws = null;
    this.connected = false;
    /** The server's CONNECT answer as sent (`{"sid":…}`, with Socket.IO's connection state recovery also `"pid"`). */
    this.connectAnswer = null;
    this.nextAckId = 0;
    this.acks = new Map();
    /** Set by the generator: per-client counters and state of the running scenario. */
    this.state = null;
  }

  /** Opens the WebSocket and completes the Socket.IO CONNECT; rejects on `connect_error`. */
  connect(timeoutMs = 20_000) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, { perMessageDeflate: false, skipUTF8Validation: true });
      this.ws = ws;
      let settled = false;
      const settle = (error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error) {
          ws.terminate();
          reject(error);
        } else resolve(this);
      };
      const timer = setTimeout(() => settle(new Error("connect timed out")), timeoutMs);
      this.onConnected = () => settle();
      this.onConnectError = (payload) => settle(Object.assign(new Error(`connect_error: ${payload}`), { payload }));
      ws.on("message", (data) => this.onMessage(typeof data === "string" ? data : data.toString()));
      ws.on("error", (error) => settle(error));
      ws.on("close", () => {
        this.connected = false;
        settle(new Error("closed before connecting"));
        for (const pending of this.acks.values()) pending.reject(new Error("closed before the ack"));
        this.acks.clear();
      });
    });
  }

  onMessage(packet) {
    const type = packet.charCodeAt(0);
    if (type === MESSAGE) {
      const kind = packet.charCodeAt(1);
      if (kind === SIO_EVENT) {
        const start = packet.indexOf('"') + 1;
        this.onEvent(this, packet.slice(start, packet.indexOf('"', start)), packet);
      } else if (kind === SIO_ACK) {
        const bracket = packet.indexOf("[");
        const id = Number(packet.slice(2, bracket));
        const pending = this.acks.get(id);
        if (pending) {
          this.acks.delete(id);
          pending.resolve(JSON.parse(packet.slice(bracket))[0]);
        }
      } else if (kind === SIO_CONNECT) {
        this.connected = true;
        this.connectAnswer = packet.slice(2);
        this.onConnected();
      } else if (kind === SIO_CONNECT_ERROR) {
        this.onConnectError(packet.slice(2));
      } else if (kind === SIO_DISCONNECT) {
        this.connected = false;
      }
    } else if (type === PING) {
      this.ws.send("3");
    } else if (type === OPEN) {
      this.ws.send(`40${JSON.stringify(this.auth)}`);
    } else if (type === CLOSE) {
      this.ws.close();
    }
  }

  /** Sends an event without an ack. */
  emit(event, data) {
    this.ws.send(`42${JSON.stringify([event, data])}`);
  }

  /** Sends an event and resolves with the first argument of its ack. */
  request(event, data) {
    const id = this.nextAckId++;
    return new Promise((resolve, reject) => {
      this.acks.set(id, { resolve, reject });
      this.ws.send(`42${id}${JSON.stringify([event, data])}`);
    });
  }

  /** Closes the connection and resolves once it is closed. */
  close() {
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      ws.once("close", resolve);
      ws.terminate();
    });
  }
}

/** Reads a number field (`"t":123.4`) from a raw packet without parsing the rest. */
export function numberField(packet, marker) {
  const at = packet.indexOf(marker);
  return at < 0 ? NaN : parseFloat(packet.slice(at + marker.length, at + marker.length + 24));
}

/** Reads a string field (`"id":"…"`) from a raw packet; the first occurrence wins. */
export function stringField(packet, marker) {
  const at = packet.indexOf(marker);
  if (at < 0) return undefined;
  const start = at + marker.length;
  return packet.slice(start, packet.indexOf('"', start));
}
