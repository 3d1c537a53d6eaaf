import type { DocumentKey, DocumentVersion } from "../documents/store.js";
import { TrussError, type ErrorPayload } from "../errors.js";
import { PROTOCOL_EVENTS } from "@truss/protocol";
import type { Connection, Subscription } from "./connection.js";
import type { EngineContext } from "./context.js";
import type { AuthorizationRequest, Policy } from "./policy.js";
import { documentRoom, topicRoom, type TopicPatterns } from "./topics.js";

/** What a refresh ended: the subscriptions the policy no longer allows. */
export interface DroppedSubscriptions {
  topics: string[];
  documents: Array<{ type: string; id: string }>;
}

/**
 * A socket's topics and watched documents: each one authorized by the policy
 * before the socket joins its room, counted against one cap, authorized
 * again on every `auth:refresh`, and ended with a coded notice when the
 * policy or the application takes it away.
 */
export class Subscriptions {
  constructor(
    private readonly ctx: EngineContext,
    private readonly policy: Policy,
    private readonly patterns: TopicPatterns,
    private readonly maxPerConnection: number,
  ) {}

  /**
   * Subscribes a socket to a topic of its company: the name is checked
   * against the declared patterns, then the cap, then the policy. Idempotent.
   */
  async subscribe(connection: Connection, payload: unknown): Promise<{ topic: string }> {
    const { topic, pattern, params } = this.patterns.match((payload as { topic?: unknown } | null | undefined)?.topic);
    const room = topicRoom(connection.principal.companyId, topic);
    if (connection.subscriptions?.has(room)) return { topic };
    this.assertRoom(connection);
    await this.authorize(connection, { action: "topic:subscribe", topic, pattern, params } as AuthorizationRequest);
    this.add(connection, room, { kind: "topic", topic, pattern, params });
    this.ctx.metrics.inc("truss_topic_subscriptions_total");
    return { topic };
  }

  /** Ends a socket's subscription to a topic; a topic it did not hold is fine. */
  unsubscribe(connection: Connection, payload: unknown): void {
    const { topic } = this.patterns.match((payload as { topic?: unknown } | null | undefined)?.topic);
    this.remove(connection, topicRoom(connection.principal.companyId, topic));
  }

  /**
   * Authorizes the read of a document, sends the socket its updates from now
   * on, and reads its latest version (`null` when it does not exist yet).
   * The socket joins before the read, so no commit can fall between the two.
   */
  async watch(connection: Connection, key: DocumentKey, read: () => Promise<DocumentVersion | null>): Promise<DocumentVersion | null> {
    const room = documentRoom(key.companyId, key.type, key.id);
    if (!connection.subscriptions?.has(room)) {
      this.assertRoom(connection);
      await this.authorize(connection, { action: "document:read", type: key.type, id: key.id });
      this.add(connection, room, { kind: "document", type: key.type, id: key.id });
    }
    return read();
  }

  /** Stops sending a document's updates to a socket. */
  unwatch(connection: Connection, key: DocumentKey): void {
    this.remove(connection, documentRoom(key.companyId, key.type, key.id));
  }

  /**
   * Authorizes every subscription of a socket again with its (refreshed)
   * principal and ends those now refused, telling the socket each one.
   */
  async recheck(connection: Connection): Promise<DroppedSubscriptions> {
    const dropped: DroppedSubscriptions = { topics: [], documents: [] };
    const held = connection.subscriptions;
    if (!held || held.size === 0) return dropped;
    const { principal } = connection;
    await Promise.all(
      [...held].map(async ([room, subscription]) => {
        const refusal = await this.policy.decide(principal, requestOf(subscription));
        if (!refusal || connection.principal !== principal) return;
        if (this.end(connection, room, { code: refusal.code ?? "FORBIDDEN", message: refusal.message })) {
          if (subscription.kind === "topic") dropped.topics.push(subscription.topic);
          else dropped.documents.push({ type: subscription.type, id: subscription.id });
        }
      }),
    );
    return dropped;
  }

  /** Ends one topic subscription of a socket with a coded notice; whether it held the topic. */
  revokeTopic(connection: Connection, topic: string, error: ErrorPayload): boolean {
    return this.end(connection, topicRoom(connection.principal.companyId, topic), error);
  }

  /** Ends a subscription by room and sends the socket `topic:dropped` or `document:dropped`. */
  private end(connection: Connection, room: string, error: ErrorPayload): boolean {
    const subscription = connection.subscriptions?.get(room);
    if (!subscription) return false;
    this.remove(connection, room);
    if (subscription.kind === "topic") connection.socket.emit(PROTOCOL_EVENTS.topicDropped, { topic: subscription.topic, error });
    else connection.socket.emit(PROTOCOL_EVENTS.documentDropped, { type: subscription.type, id: subscription.id, error });
    this.ctx.metrics.inc("truss_subscriptions_dropped_total", { kind: subscription.kind });
    return true;
  }

  /**
   * Asks the policy with the connection's principal, and again if an
   * `auth:refresh` replaced it meanwhile: the refresh's re-check only sees
   * subscriptions already made, so one in flight must pass the new roles too.
   */
  private async authorize(connection: Connection, request: AuthorizationRequest): Promise<void> {
    for (;;) {
      const { principal } = connection;
      await this.policy.check(principal, request);
      if (connection.principal === principal) return;
    }
  }

  private assertRoom(connection: Connection): void {
    if ((connection.subscriptions?.size ?? 0) >= this.maxPerConnection) throw tooMany(this.maxPerConnection);
  }

  /**
   * Joins after the policy's answer, checking again what may have changed
   * while it ran: the socket may be gone (joining would leak the room) or
   * other subscriptions may have filled the cap.
   */
  private add(connection: Connection, room: string, subscription: Subscription): void {
    if (!connection.socket.connected) return;
    const held = (connection.subscriptions ??= new Map());
    if (held.has(room)) return;
    if (held.size >= this.maxPerConnection) throw tooMany(this.maxPerConnection);
    held.set(room, subscription);
    void connection.socket.join(room);
  }

  private remove(connection: Connection, room: string): void {
    if (!connection.subscriptions?.delete(room)) return;
    void connection.socket.leave(room);
    if (connection.subscriptions.size === 0) connection.subscriptions = undefined;
  }
}

function requestOf(subscription: Subscription): AuthorizationRequest {
  return subscription.kind === "topic"
    ? ({ action: "topic:subscribe", topic: subscription.topic, pattern: subscription.pattern, params: subscription.params } as AuthorizationRequest)
    : { action: "document:read", type: subscription.type, id: subscription.id };
}

function tooMany(max: number): TrussError {
  return new TrussError("TOO_MANY_TOPICS", `This connection already holds ${max} subscriptions (topics and watched documents); unsubscribe from one first.`);
}
