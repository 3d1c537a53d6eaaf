import type { ErrorPayload } from "../errors.js";
import { isTopicName, PROTOCOL_EVENTS } from "@truss/protocol";
import type { Connection } from "./connection.js";
import type { Principal } from "../auth/authenticator.js";
import { isClustered, userKeyOf, userRoom, type EngineContext, type RevokeCommand, type TrussSocket } from "./context.js";
import { assertIds } from "./payload.js";
import type { Subscriptions } from "./subscriptions.js";

/** Server-side event that carries a revocation to the other nodes. */
const REVOKE_EVENT = "truss:revoke";
/**
 * How long a revocation waits for the other nodes' counts. The adapters time
 * out at 5 s on their own, but may never answer when Redis is unreachable;
 * past this the call resolves with what it has and `complete: false`.
 */
const REVOKE_ANSWER_TIMEOUT_MS = 6_000;
/**
 * How long a node remembers a `disconnectUser`, to refuse that user's sockets
 * whose handshake began before it but had not joined their rooms yet.
 */
const TOMBSTONE_MS = 30_000;

/** Codes `disconnectUser` may close a session with, as the client reads them. */
export type DisconnectCode = "ACCESS_REVOKED" | "FORBIDDEN" | "AUTH_TOKEN_EXPIRED";

/** Why `disconnectUser` closes a user's sessions, as their clients are told. */
export interface DisconnectReason {
  /**
   * `ACCESS_REVOKED` (default) and `FORBIDDEN` stop `@truss/client` for good;
   * `AUTH_TOKEN_EXPIRED` makes it reconnect with a fresh token from
   * `getToken` (for "your roles changed, sign in again").
   */
  code?: DisconnectCode;
  /** A sentence for the user. Default: "Your access to this company was revoked." */
  message?: string;
}

/** What a revocation reached. */
export interface RevocationResult {
  /** Sockets disconnected (or unsubscribed) on every node that answered. */
  sockets: number;
  /**
   * Whether every node answered within the adapter's request timeout. When
   * `false`, a node that did not answer still acts on the revocation when it
   * receives it; only its count is missing.
   */
  complete: boolean;
}

const DISCONNECT_CODES: ReadonlySet<string> = new Set<DisconnectCode>(["ACCESS_REVOKED", "FORBIDDEN", "AUTH_TOKEN_EXPIRED"]);

/**
 * Revocations that reach a user's sockets on every node: each node acts on
 * its own sockets and answers with how many it reached, through the adapter
 * (Redis pub/sub with `@truss/redis`), and the caller gets the sum.
 */
export class Revocations {
  /** Users disconnected in the last {@link TOMBSTONE_MS}, by user key: when, and what they were told. */
  private readonly tombstones = new Map<string, { at: number; error: ErrorPayload }>();

  constructor(
    private readonly ctx: EngineContext,
    private readonly connectionOf: (socketId: string) => Connection | undefined,
    private readonly subscriptions: Subscriptions,
  ) {}

  /** Answers other nodes' revocations. Call once the namespace exists. */
  bindNamespace(): void {
    this.ctx.namespace().on(REVOKE_EVENT, (command: RevokeCommand, answer: unknown) => {
      const sockets = this.applyLocally(command);
      if (typeof answer === "function") answer(sockets);
    });
  }

  /** Disconnects every socket of a user of a company, on every node, with a coded reason. */
  async disconnectUser(companyId: string, userId: string, reason: DisconnectReason = {}): Promise<RevocationResult> {
    assertIds("disconnectUser(companyId, userId, reason)", { companyId, userId });
    const code = reason.code ?? "ACCESS_REVOKED";
    if (!DISCONNECT_CODES.has(code)) throw new TypeError(`disconnectUser: code must be one of ${[...DISCONNECT_CODES].join(", ")}; got ${String(code)}.`);
    const message = typeof reason.message === "string" && reason.message !== "" ? reason.message : "Your access to this company was revoked.";
    return this.run({ kind: "disconnect", companyId, userId, error: { code, message } });
  }

  /** Ends one topic subscription on every socket of a user of a company, on every node. */
  async unsubscribeUser(companyId: string, userId: string, topic: string): Promise<RevocationResult> {
    assertIds("unsubscribeUser(companyId, userId, topic)", { companyId, userId });
    if (!isTopicName(topic)) throw new TypeError(`unsubscribeUser: ${JSON.stringify(topic)} is not a topic name.`);
    const error: ErrorPayload = { code: "ACCESS_REVOKED", message: `Your access to "${topic}" was revoked.` };
    return this.run({ kind: "unsubscribe", companyId, userId, topic, error });
  }

  private async run(command: RevokeCommand): Promise<RevocationResult> {
    const namespace = this.ctx.namespace();
    const local = this.applyLocally(command);
    this.ctx.metrics.inc("truss_revocations_total", { kind: command.kind });
    if (!isClustered(namespace)) return { sockets: local, complete: true };
    const { responses, complete } = await new Promise<{ responses: unknown[]; complete: boolean }>((resolve) => {
      let settled = false;
      const finish = (responses: unknown[], complete: boolean, error?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error) this.ctx.logger.warn("revocation sent to other nodes without every count", { error: error instanceof Error ? error.message : String(error) });
        resolve({ responses, complete });
      };
      const timer = setTimeout(() => finish([], false, new Error(`no answer from the adapter within ${REVOKE_ANSWER_TIMEOUT_MS} ms`)), REVOKE_ANSWER_TIMEOUT_MS);
      const answered = (error: (Error & { responses?: unknown[] }) | null, responses: unknown[]) =>
        finish((error ? error.responses : responses) ?? [], !error, error ?? undefined);
      try {
        // The adapter directly rather than the namespace, which drops the promise
        // of an adapter whose serverSideEmit is async (a rejection there, as when
        // Redis is unreachable, would otherwise go unhandled).
        const sent: unknown = namespace.adapter.serverSideEmit([REVOKE_EVENT, command, answered]);
        if (sent instanceof Promise) sent.catch((error: unknown) => finish([], false, error));
      } catch (error) {
        finish([], false, error);
      }
    });
    const remote = responses.reduce<number>((sum, answer) => sum + (typeof answer === "number" && answer >= 0 ? answer : 0), 0);
    return { sockets: local + remote, complete };
  }

  /**
   * Whether a socket that is joining now was disconnected while its
   * handshake ran: `disconnectUser` came after the handshake began but before
   * the socket joined its rooms, where the revocation looked for it. Such a
   * socket is told the revocation's reason and disconnected.
   */
  revokedWhileJoining(socket: TrussSocket, principal: Principal): boolean {
    if (this.tombstones.size === 0) return false;
    const tombstone = this.tombstones.get(userKeyOf(principal));
    if (!tombstone || tombstone.at < socket.handshake.issued) return false;
    socket.emit(PROTOCOL_EVENTS.error, tombstone.error);
    socket.disconnect(true);
    return true;
  }

  /** Acts on this node's sockets of the command's user; how many it reached. */
  private applyLocally(command: RevokeCommand): number {
    const namespace = this.ctx.namespace();
    if (command.kind === "disconnect") this.remember(command);
    const ids = namespace.adapter.rooms.get(userRoom(command.companyId, command.userId));
    if (!ids) return 0;
    let reached = 0;
    for (const id of [...ids]) {
      const connection = this.connectionOf(id);
      if (!connection) continue;
      if (command.kind === "unsubscribe") {
        if (this.subscriptions.revokeTopic(connection, command.topic, command.error)) reached++;
        continue;
      }
      connection.socket.emit(PROTOCOL_EVENTS.error, command.error);
      connection.socket.disconnect(true);
      reached++;
    }
    return reached;
  }

  private remember(command: RevokeCommand): void {
    const now = Date.now();
    for (const [key, { at }] of this.tombstones) {
      if (now - at < TOMBSTONE_MS) break;
      this.tombstones.delete(key);
    }
    const key = userKeyOf(command);
    this.tombstones.delete(key);
    this.tombstones.set(key, { at: now, error: command.error });
  }
}
