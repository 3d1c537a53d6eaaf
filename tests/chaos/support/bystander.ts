import { randomUUID } from "node:crypto";
import { createClient, open, request, waitFor, type TestServer } from "@truss/test-utils";
import type { Socket as ClientSocket } from "socket.io-client";

/** The event a bystander listens for to prove the server still broadcasts. */
export const HEALTH_EVENT = "chaos:health";

/**
 * A well-behaved client of a company, connected to `node`. After each bout
 * of hostile input a case asks it to {@link Bystander.expectServed}: a fresh
 * company broadcast (sent on `emitter`, which may be another node) must reach
 * it, and a request of its own must be answered. It reconnects if it was
 * dropped, and counts that, since a bystander should never be dropped.
 */
export class Bystander {
  reconnects = 0;
  private socket: ClientSocket | undefined;
  private readonly heard = new Set<string>();

  constructor(
    private readonly node: TestServer,
    private readonly claims: { userId: string; companyId: string; deviceId?: string },
  ) {}

  /** Connects, or reconnects after a drop. */
  async connect(): Promise<ClientSocket> {
    if (this.socket?.connected) return this.socket;
    if (this.socket) this.reconnects += 1;
    this.socket?.close();
    const socket = createClient(this.node.url, this.claims);
    socket.on(HEALTH_EVENT, (payload: { nonce?: string }) => {
      if (typeof payload?.nonce === "string") this.heard.add(payload.nonce);
    });
    this.socket = await open(socket);
    return socket;
  }

  /** Throws unless a broadcast from `emitter` and a `presence:list` both come through within `timeoutMs` each. */
  async expectServed(emitter: TestServer, timeoutMs = 5_000): Promise<void> {
    const socket = await this.connect();
    const nonce = randomUUID();
    emitter.engine.toCompany(this.claims.companyId).emit(HEALTH_EVENT, { nonce });
    await waitFor(() => this.heard.has(nonce), { timeoutMs, message: "a company broadcast to a well-behaved client" });
    this.heard.delete(nonce);
    const listed = await request(socket, "presence:list", {}, timeoutMs);
    if (listed?.ok !== true) throw new Error(`a well-behaved client's presence:list was answered ${JSON.stringify(listed)}`);
  }

  close(): void {
    this.socket?.close();
  }
}
