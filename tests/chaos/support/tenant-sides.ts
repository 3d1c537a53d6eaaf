import { createClient, open, type TestClaims, type TestServer } from "@truss/test-utils";
import type { Socket as ClientSocket } from "socket.io-client";

/** One event a socket received, kept as JSON so a marker can be searched for in any field. */
export interface Received {
  event: string;
  json: string;
  /** The phase of the case it arrived in (`live`, `replay`), for the leak's channel. */
  phase: string;
}

/**
 * The sockets of one company in a cross-tenant case, each recording every
 * event it receives. A leak is any recorded event carrying the other
 * company's marker.
 */
export class TenantSide {
  readonly sockets: Map<string, ClientSocket> = new Map();
  readonly received = new Map<string, Received[]>();
  phase = "live";

  constructor(readonly label: string) {}

  /** Connects a recorded socket under `name`, listening before the handshake so replays are caught. */
  async connect(name: string, node: TestServer, claims: TestClaims): Promise<ClientSocket> {
    const socket = createClient(node.url, claims);
    const log = this.received.get(name) ?? [];
    this.received.set(name, log);
    socket.onAny((event: string, ...args: unknown[]) => log.push({ event, json: JSON.stringify(args), phase: this.phase }));
    this.sockets.set(name, socket);
    return open(socket);
  }

  /** Every event of this side's sockets that carries `marker`. */
  carrying(marker: string): Array<Received & { socket: string }> {
    const found: Array<Received & { socket: string }> = [];
    for (const [socket, log] of this.received) {
      for (const entry of log) if (entry.json.includes(marker)) found.push({ ...entry, socket });
    }
    return found;
  }

  /** Whether socket `name` received an event `event` carrying `marker`. */
  heard(name: string, event: string, marker: string): boolean {
    return (this.received.get(name) ?? []).some((entry) => entry.event === event && entry.json.includes(marker));
  }

  /** Closes one socket (to reconnect it later under the same name). */
  disconnect(name: string): void {
    this.sockets.get(name)?.close();
    this.sockets.delete(name);
  }

  closeAll(): void {
    for (const socket of this.sockets.values()) socket.close();
    this.sockets.clear();
  }
}

/** The channel a leaked event came through, for the figures. */
export function channelOf(entry: Received): string {
  if (entry.event === "inbox:message") return `inbox (${entry.phase})`;
  if (entry.event.startsWith("presence:")) return "presence";
  if (entry.event === "document:updated") return "document:updated";
  if (entry.event === "chaos:topic") return "topic";
  if (entry.event.startsWith("chaos:")) return "company broadcast";
  return entry.event;
}
