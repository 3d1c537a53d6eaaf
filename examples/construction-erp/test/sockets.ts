/**
 * Socket.IO connections for tests: open one as a device, record what it
 * receives, send with an ack. Used against this ERP and the Express and
 * NestJS examples built on its modules.
 */
import { io, type Socket } from "socket.io-client";

/** How long a test waits for an event before failing. */
export const EVENT_TIMEOUT_MS = 5000;

/** A connected device, with the log of everything it received since before its handshake. */
export interface Device {
  socket: Socket;
  log: EventLog;
}

/**
 * Opens a Socket.IO connection as one device of a logged-in user and
 * resolves once connected. The log starts before the handshake: the server
 * replays queued inbox messages right after it, possibly in the same read.
 */
export async function openSocket(url: string, token: string, deviceId: string): Promise<Device> {
  const socket = io(url, { transports: ["websocket"], auth: { token, deviceId }, reconnection: false, forceNew: true, autoConnect: false });
  const log = new EventLog(socket);
  socket.connect();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${deviceId} did not connect within ${EVENT_TIMEOUT_MS} ms`)), EVENT_TIMEOUT_MS);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once("connect_error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
  return { socket, log };
}

/**
 * Records every event a socket receives, so a test can wait for one or
 * assert that one never came.
 */
export class EventLog {
  readonly events: Array<{ event: string; data: any }> = [];
  private readonly waiters = new Set<() => void>();

  constructor(socket: Socket) {
    socket.onAny((event: string, data: unknown) => {
      // Where the company's stream stood at connection: bookkeeping of every connection, not something the app did.
      if (event === "stream:start") return;
      this.events.push({ event, data });
      for (const waiter of this.waiters) waiter();
    });
  }

  /** The payloads of `event` received so far. */
  of(event: string): any[] {
    return this.events.filter((entry) => entry.event === event).map((entry) => entry.data);
  }

  /** Resolves with the first payload of `event` matching `predicate` (already received or future). */
  waitFor(event: string, predicate: (data: any) => boolean = () => true, timeoutMs = EVENT_TIMEOUT_MS): Promise<any> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.events.find((entry) => entry.event === event && predicate(entry.data));
        if (!found) return false;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(found.data);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`no "${event}" within ${timeoutMs} ms; got ${JSON.stringify(this.events.map((entry) => entry.event))}`));
      }, timeoutMs);
      if (!check()) this.waiters.add(check);
    });
  }
}

/** Sends an event with an ack and resolves with the ack. */
export function request<T = any>(socket: Socket, event: string, payload: unknown): Promise<T> {
  return socket.timeout(EVENT_TIMEOUT_MS).emitWithAck(event, payload) as Promise<T>;
}

/** Subscribes a socket to topics (`topic:subscribe`), failing the test on any refusal. */
export async function subscribe(socket: Socket, ...topics: string[]): Promise<void> {
  for (const topic of topics) {
    const ack = await request(socket, "topic:subscribe", { topic });
    if (!ack.ok) throw new Error(`subscribing to ${topic} was refused: ${JSON.stringify(ack.error)}`);
  }
}

/** Watches a document (`document:watch`), failing the test on a refusal; resolves with its latest version. */
export async function watch(socket: Socket, type: string, id: string): Promise<any> {
  const ack = await request(socket, "document:watch", { type, id });
  if (!ack.ok) throw new Error(`watching ${type}/${id} was refused: ${JSON.stringify(ack.error)}`);
  return ack.document;
}

/**
 * What a socket of Sam, a subcontractor on Riverside Tower only, gets for
 * each request of the policy's edge: Harbor Bridge's topic, site report and
 * their presence, the staff's company-wide feed, and his own project's topic
 * and report.
 * Each entry is `allowed` or the refusal's code; every app of the examples
 * must answer {@link SUBCONTRACTOR_VIEW}.
 */
export async function subcontractorView(socket: Socket): Promise<Record<string, string>> {
  const outcome = async (event: string, payload: unknown) => {
    const ack = await request(socket, event, payload);
    return ack.ok ? "allowed" : String(ack.error?.code);
  };
  const harbor = { type: "site-report", id: "harbor-daily" };
  const riverside = { type: "site-report", id: "riverside-daily" };
  return {
    "subscribe project:p-harbor": await outcome("topic:subscribe", { topic: "project:p-harbor" }),
    "get harbor-daily": await outcome("document:get", harbor),
    "watch harbor-daily": await outcome("document:watch", harbor),
    "update harbor-daily": await outcome("document:update", { ...harbor, baseVersion: 1, changes: { notes: "x" } }),
    "join presence of harbor-daily": await outcome("presence:join", { scope: harbor, state: { field: "notes" } }),
    "read presence of project:p-harbor": await outcome("presence:members", { scope: { topic: "project:p-harbor" } }),
    "subscribe company:projects": await outcome("topic:subscribe", { topic: "company:projects" }),
    "subscribe project:p-riverside": await outcome("topic:subscribe", { topic: "project:p-riverside" }),
    "watch riverside-daily": await outcome("document:watch", riverside),
    "update riverside-daily": await outcome("document:update", { ...riverside, baseVersion: 1, changes: { notes: "Formwork ties delivered." } }),
    "join presence of riverside-daily": await outcome("presence:join", { scope: riverside, state: { field: "notes" } }),
  };
}

/** The answers of {@link subcontractorView}: another project's things are `NOT_FOUND` (their presence `FORBIDDEN`), the staff feed `FORBIDDEN`, his own allowed. */
export const SUBCONTRACTOR_VIEW: Readonly<Record<string, string>> = {
  "subscribe project:p-harbor": "NOT_FOUND",
  "get harbor-daily": "NOT_FOUND",
  "watch harbor-daily": "NOT_FOUND",
  "update harbor-daily": "NOT_FOUND",
  // Presence stands on a subscription or watch he was refused, so it is refused before the policy is asked.
  "join presence of harbor-daily": "FORBIDDEN",
  "read presence of project:p-harbor": "FORBIDDEN",
  "subscribe company:projects": "FORBIDDEN",
  "subscribe project:p-riverside": "allowed",
  "watch riverside-daily": "allowed",
  "update riverside-daily": "allowed",
  "join presence of riverside-daily": "allowed",
};
