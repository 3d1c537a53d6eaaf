import { WebSocket, type RawWebSocket } from "./deps.js";

/** A Socket.IO packet as the server sent it, parsed loosely (the fuzzer must cope with anything). */
export interface RawPacket {
  /** Socket.IO packet type: 0 connect, 1 disconnect, 2 event, 3 ack, 4 connect_error, 5/6 binary. */
  type: number;
  nsp: string;
  id: number | undefined;
  data: unknown;
}

/** Options of {@link RawSession.open}. */
export interface RawSessionOptions {
  /** Port to dial (the server's, or a proxy's in front of it). */
  port: number;
  /** Answer the server's pings (default true); a stalled reader does not. */
  answerPings?: boolean;
  /** How long to wait for the Engine.IO open packet. */
  timeoutMs?: number;
}

/**
 * A Socket.IO session spoken by hand over a WebSocket: the Engine.IO open
 * packet, the namespace `CONNECT`, then whatever frames a test wants to send,
 * valid or not. Every frame from the server is parsed and kept, so a test can
 * check what it was answered (acks by id, `error` events, connect errors) and
 * whether the server closed the connection.
 */
export class RawSession {
  /** Server events (`42[...]`) as `[name, ...args]`. */
  readonly events: unknown[][] = [];
  /** Acks by packet id. */
  readonly acks = new Map<number, unknown[]>();
  /** `44` packets: the namespace and the payload. */
  readonly connectErrors: Array<{ nsp: string; data: unknown }> = [];
  /** Text frames the server sent that did not parse. */
  readonly unparsed: string[] = [];
  /** The Socket.IO session id, once connected. */
  sid: string | undefined;
  /** The close code, once closed. */
  closeCode: number | undefined;
  readonly closed: Promise<number>;
  private readonly waiters = new Set<() => void>();

  private constructor(
    readonly ws: RawWebSocket,
    private readonly answerPings: boolean,
  ) {
    this.closed = new Promise((resolve) => {
      ws.on("close", (code) => {
        this.closeCode = code;
        this.notify();
        resolve(code);
      });
    });
    ws.on("error", () => undefined);
    ws.on("message", (data, isBinary) => {
      if (!isBinary) this.onText(data.toString("utf8"));
      this.notify();
    });
  }

  /** Opens the WebSocket and waits for the Engine.IO open packet (`0{...}`). */
  static async open(options: RawSessionOptions): Promise<RawSession> {
    const ws = new WebSocket(`ws://127.0.0.1:${options.port}/socket.io/?EIO=4&transport=websocket`, {
      perMessageDeflate: false,
      handshakeTimeout: options.timeoutMs ?? 5000,
    });
    const opened = new Promise<void>((resolve, reject) => {
      ws.on("message", (data, isBinary) => {
        if (!isBinary && data.toString("utf8").startsWith("0")) resolve();
      });
      ws.on("error", reject);
      ws.on("close", () => reject(new Error("closed before the Engine.IO open packet")));
    });
    const session = new RawSession(ws, options.answerPings ?? true);
    await withTimeout(opened, options.timeoutMs ?? 5000, "the Engine.IO open packet");
    return session;
  }

  /** Sends the namespace `CONNECT` with `auth` and waits for `40` (the sid) or `44` (a refusal). */
  async connect(auth: Record<string, unknown>, timeoutMs = 5000): Promise<{ sid: string } | { error: unknown }> {
    this.sendText(`40${JSON.stringify(auth)}`);
    await this.until(() => this.sid !== undefined || this.connectErrors.length > 0 || this.isClosed, timeoutMs);
    if (this.sid !== undefined) return { sid: this.sid };
    return { error: this.connectErrors[0]?.data ?? `closed (${this.closeCode})` };
  }

  /** Sends one raw text frame (an Engine.IO packet: `4` + a Socket.IO packet for a message). */
  sendText(frame: string): void {
    if (this.ws.readyState === 1) this.ws.send(frame);
  }

  /** Sends bytes as they are: a binary frame (a Socket.IO attachment, or garbage), or a text frame that need not be UTF-8. */
  sendBytes(frame: Buffer, binary: boolean): void {
    if (this.ws.readyState === 1) this.ws.send(frame, { binary });
  }

  /** Whether the WebSocket is closed or closing. */
  get isClosed(): boolean {
    return this.ws.readyState >= 2;
  }

  /** Resolves once `check` holds, or after `timeoutMs` (resolving `false`). */
  async until(check: () => boolean, timeoutMs: number): Promise<boolean> {
    if (check()) return true;
    return new Promise((resolve) => {
      const waiter = () => {
        if (!check()) return;
        cleanup();
        resolve(true);
      };
      const timer = setTimeout(() => {
        cleanup();
        resolve(check());
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      this.waiters.add(waiter);
    });
  }

  /** Closes the WebSocket at once. */
  terminate(): void {
    this.ws.terminate();
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  private onText(frame: string): void {
    const type = frame[0];
    if (type === "2") {
      if (this.answerPings) this.sendText("3");
      return;
    }
    if (type !== "4") return;
    const packet = parseSocketIoPacket(frame.slice(1));
    if (!packet) {
      this.unparsed.push(frame.slice(0, 200));
      return;
    }
    if (packet.type === 0) this.sid = (packet.data as { sid?: string } | undefined)?.sid;
    else if (packet.type === 2 && Array.isArray(packet.data)) this.events.push(packet.data);
    else if (packet.type === 3 && packet.id !== undefined) this.acks.set(packet.id, Array.isArray(packet.data) ? packet.data : [packet.data]);
    else if (packet.type === 4) this.connectErrors.push({ nsp: packet.nsp, data: packet.data });
  }
}

/** Parses a Socket.IO packet (`<type>[<attachments>-][<nsp>,][<id>][<json>]`); `null` when it does not parse. */
export function parseSocketIoPacket(text: string): RawPacket | null {
  let index = 0;
  const type = Number(text[index++]);
  if (!Number.isInteger(type) || type < 0 || type > 6) return null;
  if (type === 5 || type === 6) {
    const dash = text.indexOf("-", index);
    if (dash === -1) return null;
    index = dash + 1;
  }
  let nsp = "/";
  if (text[index] === "/") {
    const comma = text.indexOf(",", index);
    nsp = text.slice(index, comma === -1 ? undefined : comma);
    index = comma === -1 ? text.length : comma + 1;
  }
  let digits = "";
  while (index < text.length && text[index]! >= "0" && text[index]! <= "9") digits += text[index++];
  const rest = text.slice(index);
  let data: unknown;
  if (rest !== "") {
    try {
      data = JSON.parse(rest);
    } catch {
      return null;
    }
  }
  return { type, nsp, id: digits === "" ? undefined : Number(digits), data };
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
