import { messageOf, TrussError, type ErrorPayload } from "../kernel/errors.js";
import { isTopicName, PROTOCOL_EVENTS } from "@truss/protocol";
import type { Connection } from "../kernel/connection.js";
import type { Principal } from "../kernel/principal.js";
import type { UserKey } from "../inbox/store.js";
import { RevocationsByUser } from "./by-user.js";
import { DEFAULT_MAX_REVOCATIONS } from "./memory.js";
import { isRevocationRecord, type RevocationRecord, type RevocationStore } from "./store.js";
import { ADAPTER_RESUBSCRIBED_EVENT, isClustered, onNodeEvent, type EngineContext, type TrussSocket } from "../kernel/context.js";
import { storeCall } from "../kernel/failures.js";
import { assertIds } from "../kernel/payload.js";
import type { Subscriptions } from "../topics/subscriptions.js";
import { userKeyOf } from "../kernel/rooms.js";

/** Server-side event that carries a revocation to the other nodes. */
const REVOKE_EVENT = "truss:revoke";
/**
 * How long a revocation waits for the other nodes' counts. The adapters time
 * out at 5 s on their own, but may never answer when Redis is unreachable;
 * past this the call resolves with what it has and `complete: false`.
 */
const REVOKE_ANSWER_TIMEOUT_MS = 6_000;
/** Records read from the store per call while catching up. */
const PAGE_SIZE = 500;
/** Records this node made but could not store yet, kept to store again; past it the oldest are given up (and logged). */
const MAX_UNSAVED = 1_000;

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
   * Whether every node answered within the adapter's request timeout and the
   * revocation was stored. When `false`, a node that did not answer still
   * acts on the revocation when it receives it or reads it from the store,
   * and a revocation that could not be stored is stored again by this node
   * until it is.
   */
  complete: boolean;
}

/** How long revocations are kept and how often a node reads the ones it may have missed. */
export interface RevocationTiming {
  /** How long a revocation is kept, in ms: as long as a token issued before it can live. */
  ttlMs: number;
  /** How often each node reads the revocations stored since it last looked, in ms. */
  pollIntervalMs: number;
}

const DISCONNECT_CODES: ReadonlySet<string> = new Set<DisconnectCode>(["ACCESS_REVOKED", "FORBIDDEN", "AUTH_TOKEN_EXPIRED"]);

/**
 * Revocations that reach a user's sockets on every node, and stay in force
 * for as long as a token issued before them can live.
 *
 * Two paths carry each one. The fast path: the node acts on its own sockets
 * and sends the revocation through the adapter (Redis pub/sub with
 * `@truss/redis`); each node acts on its sockets and answers with how many,
 * and the caller gets the sum. The durable path: the revocation is kept in
 * the revocation store; every node reads what was added since it last looked
 * every `pollIntervalMs` and as soon as its adapter resubscribes, and applies
 * it to the sessions that began before it. So a node that was cut off from
 * the adapter when the revocation was made still applies it, and a token
 * issued before it is refused at every handshake and `auth:refresh`.
 */
export class Revocations {
  /** Every unexpired revocation this node knows of, for the checks that cannot wait for the store. */
  private readonly known = new RevocationsByUser(DEFAULT_MAX_REVOCATIONS);
  /** Revocations made here that the store refused, stored again at the next read. */
  private readonly unsaved: RevocationRecord[] = [];
  /** Where this node's next read of the store starts. */
  private cursor: string | null = null;
  private poller: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  /** Whether the last read of the store failed, so an outage is logged once, not at every read. */
  private readFailed = false;
  /** Whether a revoked user's token without an issue time was let in and logged (once per process, it is a configuration matter). */
  private warnedUndated = false;

  constructor(
    private readonly ctx: EngineContext,
    private readonly store: RevocationStore,
    private readonly timing: RevocationTiming,
    private readonly connectionsOf: (userKey: string, visit: (connection: Connection) => void) => void,
    private readonly subscriptions: Subscriptions,
  ) {}

  /**
   * Answers other nodes' revocations and starts reading the store: now (to
   * learn the revocations still in force), every `pollIntervalMs`, and when
   * the adapter resubscribes after losing Redis.
   */
  start(): void {
    const namespace = this.ctx.namespace();
    onNodeEvent(this.ctx, REVOKE_EVENT, (record, answer) => {
      if (!isRevocationRecord(record)) return false;
      this.known.add(record);
      const sockets = this.applyLocally(record, "all");
      if (typeof answer === "function") answer(sockets);
      return true;
    });
    namespace.adapter.on(ADAPTER_RESUBSCRIBED_EVENT, () => void this.catchUp());
    this.poller = setInterval(() => void this.catchUp(), this.timing.pollIntervalMs);
    this.poller.unref();
    void this.catchUp();
  }

  /** Stops reading the store; resolves once a read in progress is done. */
  async stop(): Promise<void> {
    clearInterval(this.poller);
    this.poller = undefined;
    await this.reading;
  }

  /** Disconnects every socket of a user of a company, on every node, with a coded reason. */
  async disconnectUser(companyId: string, userId: string, reason: DisconnectReason = {}): Promise<RevocationResult> {
    assertIds("disconnectUser(companyId, userId, reason)", { companyId, userId });
    const code = reason.code ?? "ACCESS_REVOKED";
    if (!DISCONNECT_CODES.has(code)) throw new TypeError(`disconnectUser: code must be one of ${[...DISCONNECT_CODES].join(", ")}; got ${String(code)}.`);
    const message = typeof reason.message === "string" && reason.message !== "" ? reason.message : "Your access to this company was revoked.";
    return this.run({ kind: "disconnect", companyId, userId, error: { code, message }, ...this.lifetime() });
  }

  /** Ends one topic subscription on every socket of a user of a company, on every node. */
  async unsubscribeUser(companyId: string, userId: string, topic: string): Promise<RevocationResult> {
    assertIds("unsubscribeUser(companyId, userId, topic)", { companyId, userId });
    if (!isTopicName(topic)) throw new TypeError(`unsubscribeUser: ${JSON.stringify(topic)} is not a topic name.`);
    const error: ErrorPayload = { code: "ACCESS_REVOKED", message: `Your access to "${topic}" was revoked.` };
    return this.run({ kind: "unsubscribe", companyId, userId, topic, error, ...this.lifetime() });
  }

  /**
   * Refuses a handshake whose credential a `disconnectUser` came after: its
   * token was issued before the revocation, or (issue time unknown) the
   * handshake began before it. Reads the store; when the store cannot
   * answer, decides on the revocations this node knows of.
   *
   * @throws TrussError with the revocation's code and message.
   */
  async admit(principal: Principal, sessionStart: number): Promise<void> {
    const disconnects = (await this.recordsOf(principal)).filter((record) => record.kind === "disconnect");
    const revoked = disconnects.find((record) => sessionCovered(record, sessionStart, principal.issuedAt));
    if (revoked) throw new TrussError(revoked.error.code, revoked.error.message);
    if (disconnects.length > 0 && typeof principal.issuedAt !== "number" && !this.warnedUndated) {
      this.warnedUndated = true;
      this.ctx.logger.warn(
        "a revoked user connected with a token that does not say when it was issued, so it could not be told from one issued before the revocation; issue tokens with iat (or set Principal.issuedAt)",
        { companyId: principal.companyId, userId: principal.userId },
      );
    }
  }

  /**
   * Applies the user's revocations to a connection about to take a
   * refreshed principal, then refuses the refresh if a `disconnectUser`
   * came after the new token was issued. A connection that missed a
   * revocation is disconnected (and the refresh refused with its code), and
   * topics revoked since its current token was issued are dropped.
   *
   * @throws TrussError with the revocation's code and message.
   */
  async refresh(connection: Connection, next: Principal): Promise<void> {
    const records = await this.recordsOf(connection.principal);
    for (const record of records) {
      if (this.applyTo(connection, record, "covered") && record.kind === "disconnect") throw new TrussError(record.error.code, record.error.message);
    }
    const issuedAt = next.issuedAt ?? Date.now();
    const revoked = records.find((record) => record.kind === "disconnect" && issuedAt <= record.at);
    if (revoked) throw new TrussError(revoked.error.code, revoked.error.message);
  }

  /**
   * Whether a socket that is joining now began its handshake before a
   * `disconnectUser` this node knows of: the revocation came after the
   * handshake read the store but before the socket joined the rooms where
   * the revocation looked for it. Such a socket is told the revocation's
   * reason and disconnected.
   */
  revokedWhileJoining(socket: TrussSocket, principal: Principal): boolean {
    const revoked = this.known.of(principal).find((record) => record.kind === "disconnect" && sessionCovered(record, socket.handshake.issued, principal.issuedAt));
    if (!revoked) return false;
    socket.emit(PROTOCOL_EVENTS.error, revoked.error);
    socket.disconnect(true);
    return true;
  }

  /**
   * The refusal for a subscription to a topic that `unsubscribeUser` took
   * from the connection's user after its token was issued, if any: checked
   * right before the socket joins, after a policy check that may have been
   * running while the revocation came.
   */
  topicRefusal(connection: Connection, topic: string): ErrorPayload | undefined {
    return this.known
      .of(connection.principal)
      .find((record) => record.kind === "unsubscribe" && record.topic === topic && credentialCovered(record, connection))?.error;
  }

  /** Reads what was stored since this node last looked, and applies it; one read at a time. */
  catchUp(): Promise<void> {
    this.reading ??= this.readNew().finally(() => (this.reading = undefined));
    return this.reading;
  }

  private async readNew(): Promise<void> {
    try {
      await this.saveUnsaved();
      for (;;) {
        const page = await storeCall(this.ctx, "revocations", "since", () => this.store.since(this.cursor, PAGE_SIZE));
        const now = Date.now();
        for (const record of page.records) {
          if (record.expiresAt <= now) continue;
          this.known.add(record);
          this.applyLocally(record, "covered");
        }
        this.cursor = page.cursor;
        this.readFailed = false;
        if (page.records.length < PAGE_SIZE) return;
      }
    } catch (error) {
      if (!this.readFailed) {
        this.ctx.logger.warn("could not read revocations from the store; reading again every poll until it answers", {
          error: messageOf(error),
        });
      }
      this.readFailed = true;
    }
  }

  /** When a revocation made now is made, and until when it is kept. */
  private lifetime(): { at: number; expiresAt: number } {
    const at = Date.now();
    return { at, expiresAt: at + this.timing.ttlMs };
  }

  private async run(record: RevocationRecord): Promise<RevocationResult> {
    this.known.add(record);
    const local = this.applyLocally(record, "all");
    this.ctx.metrics.inc("truss_revocations_total", { kind: record.kind });
    const [stored, remote] = await Promise.all([this.save(record), this.sendToOtherNodes(record)]);
    return { sockets: local + remote.sockets, complete: stored && remote.complete };
  }

  /** Stores a revocation; when the store refuses, keeps it to store again at the next read. */
  private async save(record: RevocationRecord): Promise<boolean> {
    try {
      await storeCall(this.ctx, "revocations", "add", () => this.store.add(record));
      return true;
    } catch (error) {
      this.ctx.logger.warn("a revocation could not be stored; this node stores it again shortly", { error: messageOf(error) });
      this.unsaved.push(record);
      if (this.unsaved.length > MAX_UNSAVED) {
        const [dropped] = this.unsaved.splice(0, 1);
        this.ctx.logger.error("a revocation was given up unstored: too many waiting to be stored", { companyId: dropped!.companyId, userId: dropped!.userId });
      }
      return false;
    }
  }

  private async saveUnsaved(): Promise<void> {
    while (this.unsaved.length > 0) {
      const record = this.unsaved[0]!;
      if (record.expiresAt > Date.now()) await storeCall(this.ctx, "revocations", "add", () => this.store.add(record));
      this.unsaved.shift();
    }
  }

  /** Sends a revocation through the adapter and sums the other nodes' answers. */
  private async sendToOtherNodes(record: RevocationRecord): Promise<{ sockets: number; complete: boolean }> {
    const namespace = this.ctx.namespace();
    if (!isClustered(namespace)) return { sockets: 0, complete: true };
    const { responses, complete } = await new Promise<{ responses: unknown[]; complete: boolean }>((resolve) => {
      let settled = false;
      const finish = (responses: unknown[], complete: boolean, error?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error) this.ctx.logger.warn("revocation sent to other nodes without every count", { error: messageOf(error) });
        resolve({ responses, complete });
      };
      const timer = setTimeout(() => finish([], false, new Error(`no answer from the adapter within ${REVOKE_ANSWER_TIMEOUT_MS} ms`)), REVOKE_ANSWER_TIMEOUT_MS);
      const answered = (error: (Error & { responses?: unknown[] }) | null, responses: unknown[]) =>
        finish((error ? error.responses : responses) ?? [], !error, error ?? undefined);
      try {
        // The adapter directly rather than the namespace, which drops the promise
        // of an adapter whose serverSideEmit is async (a rejection there, as when
        // Redis is unreachable, would otherwise go unhandled).
        const sent: unknown = namespace.adapter.serverSideEmit([REVOKE_EVENT, record, answered]);
        if (sent instanceof Promise) sent.catch((error: unknown) => finish([], false, error));
      } catch (error) {
        finish([], false, error);
      }
    });
    const sockets = responses.reduce<number>((sum, answer) => sum + (typeof answer === "number" && answer >= 0 ? answer : 0), 0);
    return { sockets, complete };
  }

  /**
   * The user's revocations in force: the store's, and this node's own (one
   * not stored yet among them). When the store cannot answer, this node's alone.
   */
  private async recordsOf(user: UserKey): Promise<RevocationRecord[]> {
    let stored: RevocationRecord[] = [];
    try {
      stored = await storeCall(this.ctx, "revocations", "forUser", () => this.store.forUser({ companyId: user.companyId, userId: user.userId }));
    } catch (error) {
      this.ctx.logger.warn("could not read a user's revocations from the store; deciding on this node's", { error: messageOf(error) });
    }
    for (const record of stored) this.known.add(record);
    return this.known.of(user);
  }

  /**
   * Acts on this node's sockets of the record's user; how many it reached.
   * `all` (the revocation is being made now): every socket of the user.
   * `covered` (read later from the store): only the sessions and tokens
   * that began before it, so a session let in since is left alone.
   */
  private applyLocally(record: RevocationRecord, scope: "all" | "covered"): number {
    // Collected first: applying a record may disconnect a socket, which leaves the index.
    const connections: Connection[] = [];
    this.connectionsOf(userKeyOf(record), (connection) => connections.push(connection));
    let reached = 0;
    for (const connection of connections) if (this.applyTo(connection, record, scope)) reached++;
    return reached;
  }


  /** Applies one record to one connection; whether it disconnected it or dropped its topic. */
  private applyTo(connection: Connection, record: RevocationRecord, scope: "all" | "covered"): boolean {
    if (record.kind === "unsubscribe") {
      if (scope === "covered" && !credentialCovered(record, connection)) return false;
      return this.subscriptions.revokeTopic(connection, record.topic, record.error);
    }
    const { socket, principal } = connection;
    if (scope === "covered" && !sessionCovered(record, socket.handshake.issued, principal.issuedAt)) return false;
    socket.emit(PROTOCOL_EVENTS.error, record.error);
    socket.disconnect(true);
    return true;
  }
}

/**
 * Whether a `disconnectUser` reaches a session: it began no later than the
 * revocation, or its token was issued no later (`iat` has whole seconds, so
 * a token of the revocation's own second is treated as older).
 */
function sessionCovered(record: RevocationRecord, sessionStart: number, issuedAt: number | null | undefined): boolean {
  return sessionStart <= record.at || (typeof issuedAt === "number" && issuedAt <= record.at);
}

/** Whether an `unsubscribeUser` reaches a connection's subscriptions: its token (or, issue time unknown, its session) is no newer. */
function credentialCovered(record: RevocationRecord, connection: Connection): boolean {
  return (connection.principal.issuedAt ?? connection.socket.handshake.issued) <= record.at;
}
