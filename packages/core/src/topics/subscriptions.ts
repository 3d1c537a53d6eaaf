import type { DocumentKey, DocumentVersion } from "../documents/store.js";
import { TrussError, type ErrorPayload } from "../kernel/errors.js";
import { PROTOCOL_EVENTS } from "@truss/protocol";
import type { Connection } from "../kernel/connection.js";
import type { EngineContext } from "../kernel/context.js";
import type { AuthorizationRequest, Policy } from "../policy/policy.js";
import type { TopicPatterns } from "./patterns.js";
import { documentRoom, subscriptionOf, topicRoom, type Subscription } from "../kernel/rooms.js";
import { RequestOrder } from "../kernel/request-order.js";

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
 *
 * The socket's rooms are the only record: a topic or document room names
 * its subscription ({@link subscriptionOf}), so a subscription costs the
 * room Socket.IO keeps anyway and nothing more per socket.
 *
 * A socket's requests on one topic or document take effect in the order it
 * sent them ({@link RequestOrder}): the last one wins.
 */
export class Subscriptions {
  /** A socket's requests on one room run in the order sent. */
  private readonly order = new RequestOrder();

  constructor(
    private readonly ctx: EngineContext,
    private readonly policy: Policy,
    private readonly patterns: TopicPatterns,
    private readonly maxPerConnection: number,
    /** Why a topic may not be subscribed by this connection though the policy allowed it (`unsubscribeUser` took it), if so. */
    private readonly revokedTopic: (connection: Connection, topic: string) => ErrorPayload | undefined = () => undefined,
  ) {}

  /**
   * Subscribes a socket to a topic of its company: the name is checked
   * against the declared patterns, then the cap, then the policy. Idempotent.
   * `beforeJoin` runs once the subscription is allowed and before the socket
   * joins the topic's room (the stream's start is read there); its result is
   * returned as `prepared`.
   */
  async subscribe<T>(connection: Connection, payload: unknown, beforeJoin: (topic: string) => Promise<T>): Promise<{ topic: string; prepared: T }> {
    const { topic, pattern, params } = this.patterns.match((payload as { topic?: unknown } | null | undefined)?.topic);
    const room = topicRoom(connection.principal.companyId, topic);
    return this.order.run(connection, room, async () => {
      if (connection.socket.rooms.has(room)) return { topic, prepared: await beforeJoin(topic) };
      this.assertRoom(connection);
      await this.authorize(connection, { action: "topic:subscribe", topic, pattern, params } as AuthorizationRequest);
      const prepared = await beforeJoin(topic);
      // After the policy's answer and `beforeJoin`, right before the join: an unsubscribeUser may have come meanwhile.
      const revoked = this.revokedTopic(connection, topic);
      if (revoked) throw new TrussError(revoked.code, revoked.message);
      this.add(connection, room);
      this.ctx.metrics.inc("truss_topic_subscriptions_total");
      return { topic, prepared };
    });
  }

  /**
   * Ends a socket's subscription to a topic; a topic it did not hold is fine.
   * One it is still subscribing to is ended once that subscribe finishes.
   */
  unsubscribe(connection: Connection, payload: unknown): void | Promise<void> {
    const { topic } = this.patterns.match((payload as { topic?: unknown } | null | undefined)?.topic);
    const room = topicRoom(connection.principal.companyId, topic);
    return this.order.run(connection, room, () => void connection.socket.leave(room));
  }

  /**
   * Authorizes the read of a document, sends the socket its updates from now
   * on, and reads its latest version (`null` when it does not exist yet).
   * The socket joins before the read, so no commit can fall between the two.
   */
  async watch(connection: Connection, key: DocumentKey, read: () => Promise<DocumentVersion | null>): Promise<DocumentVersion | null> {
    const room = documentRoom(key.companyId, key.type, key.id);
    return this.order.run(connection, room, async () => {
      if (connection.socket.rooms.has(room)) return read();
      this.assertRoom(connection);
      await this.authorize(connection, { action: "document:read", type: key.type, id: key.id });
      // Joined before the read, so an update committed in between still reaches the socket; a failed read leaves
      // again, since the client was told it does not watch the document.
      this.add(connection, room);
      try {
        return await read();
      } catch (error) {
        void connection.socket.leave(room);
        throw error;
      }
    });
  }

  /** Stops sending a document's updates to a socket, once a watch of it still running has finished. */
  unwatch(connection: Connection, key: DocumentKey): void | Promise<void> {
    const room = documentRoom(key.companyId, key.type, key.id);
    return this.order.run(connection, room, () => void connection.socket.leave(room));
  }

  /** Whether a socket holds a topic of its company. */
  holds(connection: Connection, topic: string): boolean {
    return connection.socket.rooms.has(topicRoom(connection.principal.companyId, topic));
  }

  /**
   * Authorizes every subscription of a socket again with its (refreshed)
   * principal and ends those now refused, telling the socket each one.
   */
  async recheck(connection: Connection): Promise<DroppedSubscriptions> {
    const dropped: DroppedSubscriptions = { topics: [], documents: [] };
    const { principal } = connection;
    const held = this.held(connection);
    await Promise.all(
      held.map(async ([room, subscription]) => {
        const refusal = await this.policy.decide(principal, this.requestOf(subscription));
        if (!refusal || connection.principal !== principal) return;
        if (this.end(connection, room, subscription, { code: refusal.code ?? "FORBIDDEN", message: refusal.message })) {
          if (subscription.kind === "topic") dropped.topics.push(subscription.topic);
          else dropped.documents.push({ type: subscription.type, id: subscription.id });
        }
      }),
    );
    return dropped;
  }

  /** Ends one topic subscription of a socket with a coded notice; whether it held the topic. */
  revokeTopic(connection: Connection, topic: string, error: ErrorPayload): boolean {
    return this.end(connection, topicRoom(connection.principal.companyId, topic), { kind: "topic", topic }, error);
  }

  /** Ends a subscription and sends the socket `topic:dropped` or `document:dropped`; whether it was held. */
  private end(connection: Connection, room: string, subscription: Subscription, error: ErrorPayload): boolean {
    if (!connection.socket.rooms.has(room)) return false;
    void connection.socket.leave(room);
    if (subscription.kind === "topic") connection.socket.emit(PROTOCOL_EVENTS.topicDropped, { topic: subscription.topic, error });
    else connection.socket.emit(PROTOCOL_EVENTS.documentDropped, { type: subscription.type, id: subscription.id, error });
    this.ctx.metrics.inc("truss_subscriptions_dropped_total", { kind: subscription.kind });
    return true;
  }

  /** The socket's subscriptions with their rooms. */
  private held(connection: Connection): Array<[string, Subscription]> {
    const held: Array<[string, Subscription]> = [];
    for (const room of connection.socket.rooms) {
      const subscription = subscriptionOf(connection.principal.companyId, room);
      if (subscription) held.push([room, subscription]);
    }
    return held;
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
    const { companyId } = connection.principal;
    let held = 0;
    for (const room of connection.socket.rooms) if (subscriptionOf(companyId, room)) held++;
    if (held >= this.maxPerConnection) throw tooMany(this.maxPerConnection);
  }

  /**
   * Joins after the policy's answer, checking again what may have changed
   * while it ran: the socket may be gone (joining would leak the room) or
   * other subscriptions may have filled the cap.
   */
  private add(connection: Connection, room: string): void {
    if (!connection.socket.connected || connection.socket.rooms.has(room)) return;
    this.assertRoom(connection);
    void connection.socket.join(room);
  }

  /** The policy request a held subscription was granted under, with a topic's pattern and parameters matched again. */
  private requestOf(subscription: Subscription): AuthorizationRequest {
    if (subscription.kind === "document") return { action: "document:read", type: subscription.type, id: subscription.id };
    const { topic, pattern, params } = this.patterns.match(subscription.topic);
    return { action: "topic:subscribe", topic, pattern, params } as AuthorizationRequest;
  }
}

function tooMany(max: number): TrussError {
  return new TrussError("TOO_MANY_SUBSCRIPTIONS", `This connection already holds ${max} subscriptions (topics and watched documents); unsubscribe from one first.`);
}
