import { SUSPECT_RETRY_CODES, type ErrorCode } from "@truss/protocol";
import { Backoff } from "./backoff.js";
import { closedError, type Connection } from "./connection.js";
import { DEFAULT_MAX_REFUSED_ATTEMPTS, isRetryableCode, TrussClientError } from "./errors.js";

/**
 * A subscription the server ended, as `client.onDropped` reports it: a topic
 * or a watched document, with why (`ACCESS_REVOKED` after
 * `engine.unsubscribeUser`, `FORBIDDEN` when a refreshed token or a
 * reconnection no longer passes the server's policy).
 */
export type DroppedSubscription =
  | {
      /** A topic of `client.subscribe`. */
      kind: "topic";
      /** The topic the client no longer receives. */
      topic: string;
      /** Why, as the server said it. */
      error: TrussClientError;
    }
  | {
      /** A document of `client.documents.watch`. */
      kind: "document";
      /** The document's kind. */
      type: string;
      /** The document's id. */
      id: string;
      /** Why, as the server said it. */
      error: TrussClientError;
    };

/** How one kind of subscription (topics, watched documents) is asked for, ended and reported. */
export interface SubscriptionKind<K, A> {
  /** A string that tells keys apart. */
  id(key: K): string;
  /** The key as a person reads it in a message (`topic "project:p-17"`). */
  describe(key: K): string;
  /** Asks the server for the subscription; resolves with the ack's body. */
  subscribe(key: K): Promise<A>;
  /** Ends the subscription on the server. */
  unsubscribe(key: K): Promise<unknown>;
  /** Called with each accepted ack; `resumed` when the server had accepted this key before (a re-send after a reconnection). */
  accepted?(key: K, ack: A, resumed: boolean): void;
  /** The server ended, or refused again, a subscription it had accepted; the key is already forgotten. */
  dropped(key: K, error: TrussClientError): void;
}

/** Spacing of new attempts after a passing failure (a burst past the rate limit). */
const RETRY = { initialDelayMs: 1000, maxDelayMs: 30_000 };

interface Entry<K, A> {
  key: K;
  /** Whether the server holds it on the current connection. */
  active: boolean;
  /** Whether the server ever accepted it: a later refusal is then a drop, not an answer to a caller. */
  accepted: boolean;
  /** Whether a subscribe request is queued or on its way. */
  sending: boolean;
  /** Whether that request has left the client: its callers then get the server's answer, however it is withdrawn. */
  sent: boolean;
  /** How many of its requests in a row the server failed on (`SUSPECT_RETRY_CODES`): at {@link DEFAULT_MAX_REFUSED_ATTEMPTS} it is a refusal. */
  suspectRefusals: number;
  /** Callers of `add` waiting for the server's answer. */
  waiters: Array<{ resolve(ack: A): void; reject(error: TrussClientError): void }>;
}

/**
 * The subscriptions of one kind that the app wants, kept across
 * reconnections: the server forgets a socket's subscriptions when it goes,
 * so every one is asked for again on each `connect`. A caller of
 * {@link add} waits for the server's first answer, however long the client
 * is offline, and through refusals that may pass (no answer in time, a store
 * down, a rate limit: a `retry` or `renew-token` code), which are asked
 * again with backoff; a key the server refuses after having accepted it is
 * forgotten and reported as dropped.
 *
 * Requests for one key go out one at a time, in call order: the server runs
 * a socket's events concurrently, and an unsubscribe overtaking a subscribe
 * still waiting for the policy would leave the socket subscribed.
 */
export class KeptSubscriptions<K, A> {
  private readonly entries = new Map<string, Entry<K, A>>();
  /** Per key, the end of its request chain. */
  private readonly queues = new Map<string, Promise<void>>();
  private readonly backoff = new Backoff(RETRY);
  private retryTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly connection: Connection,
    private readonly kind: SubscriptionKind<K, A>,
  ) {
    connection.socket.on("connect", () => this.sendMissing());
    connection.socket.on("disconnect", () => {
      for (const entry of this.entries.values()) entry.active = false;
    });
    connection.onStatus((status, change) => {
      if (status === "closed") this.forgetAll(closedError(change.reason ?? undefined));
    });
  }

  /** The wanted keys, in the order they were first asked for. */
  keys(): K[] {
    return [...this.entries.values()].map((entry) => entry.key);
  }

  /** Whether `key` is wanted. */
  has(key: K): boolean {
    return this.entries.has(this.kind.id(key));
  }

  /**
   * Wants `key` from now on and resolves with the server's ack once it
   * accepted it (sent now, or on the next `connect` when offline); rejects
   * with its refusal, and the key is forgotten.
   */
  add(key: K): Promise<A> {
    if (this.connection.closed) return Promise.reject(closedError());
    const id = this.kind.id(key);
    let entry = this.entries.get(id);
    if (!entry) {
      entry = { key, active: false, accepted: false, sending: false, sent: false, suspectRefusals: 0, waiters: [] };
      this.entries.set(id, entry);
    }
    const { waiters } = entry;
    const answer = new Promise<A>((resolve, reject) => waiters.push({ resolve, reject }));
    this.send(entry);
    return answer;
  }

  /**
   * Stops wanting `key` and ends it on the server. A caller of {@link add}
   * whose request was not sent yet gets `CANCELLED`; one already sent gets
   * the server's answer. Resolves once the server confirmed, or right away
   * when offline (a new connection holds no subscriptions).
   */
  async remove(key: K): Promise<void> {
    const id = this.kind.id(key);
    const entry = this.entries.get(id);
    if (entry) {
      this.entries.delete(id);
      if (!entry.sent) {
        const cancelled = new TrussClientError("CANCELLED", `The subscription to ${this.kind.describe(key)} was withdrawn while it waited to be sent to the server.`);
        for (const waiter of entry.waiters.splice(0)) waiter.reject(cancelled);
      }
    }
    if (this.connection.closed) return;
    await this.enqueue(id, async () => {
      if (!this.connection.socket.connected) return;
      try {
        await this.kind.unsubscribe(key);
      } catch (error) {
        // Without the connection the server forgot the subscription anyway.
        if (this.connection.socket.connected) throw error;
      }
    });
  }

  /** Forgets `key` because the server ended it, and reports the drop. */
  drop(key: K, error: TrussClientError): void {
    const id = this.kind.id(key);
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    for (const waiter of entry.waiters.splice(0)) waiter.reject(error);
    this.kind.dropped(entry.key, error);
  }

  /** Sends every wanted key the server does not hold yet. */
  private sendMissing(): void {
    for (const entry of this.entries.values()) if (!entry.active) this.send(entry);
  }

  private send(entry: Entry<K, A>): void {
    if (entry.sending || !this.connection.socket.connected) return;
    entry.sending = true;
    const id = this.kind.id(entry.key);
    void this.enqueue(id, async () => {
      try {
        // Waiting in the queue, it may have been removed, or the connection lost (the next `connect` sends it).
        if (this.entries.get(id) !== entry || !this.connection.socket.connected) return;
        entry.sent = true;
        const ack = await this.kind.subscribe(entry.key);
        if (this.entries.get(id) === entry) {
          const resumed = entry.accepted;
          entry.active = true;
          entry.accepted = true;
          entry.suspectRefusals = 0;
          this.backoff.reset();
          this.kind.accepted?.(entry.key, ack, resumed);
        }
        for (const waiter of entry.waiters.splice(0)) waiter.resolve(ack);
      } catch (error) {
        this.refused(entry, error as TrussClientError);
      } finally {
        entry.sending = false;
        entry.sent = false;
      }
    });
  }

  /**
   * Applies a failed subscribe request by what its code says
   * (`errorAction`): a refusal that may pass is asked again (on the next
   * `connect`, or after a backoff) while its callers wait; any other
   * forgets the key.
   */
  private refused(entry: Entry<K, A>, error: TrussClientError): void {
    const id = this.kind.id(entry.key);
    const current = this.entries.get(id) === entry;
    // A server that fails on this request every time (a policy that throws for this topic) would keep its callers
    // waiting for good: after a few such failures in a row it is a refusal, as the outbox gives up such a write.
    const suspect = SUSPECT_RETRY_CODES.includes(error.code as ErrorCode) && ++entry.suspectRefusals >= DEFAULT_MAX_REFUSED_ATTEMPTS;
    if (current && isRetryableCode(error.code) && !suspect) {
      // The next `connect` sends it again.
      if (!this.connection.socket.connected) return;
      // A burst past the rate limit is the client's own doing (every key goes out on `connect`): it only waits its turn.
      if (error.code !== "RATE_LIMITED") this.connection.report(error);
      this.retryLater();
      return;
    }
    if (current) this.entries.delete(id);
    for (const waiter of entry.waiters.splice(0)) waiter.reject(error);
    if (current && entry.accepted) this.kind.dropped(entry.key, error);
  }

  private retryLater(): void {
    if (this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.sendMissing();
    }, this.backoff.next());
  }

  /** Runs `request` after every request queued before for the same key. */
  private enqueue(id: string, request: () => Promise<void>): Promise<void> {
    const run = (this.queues.get(id) ?? Promise.resolve()).then(request);
    const tail = run.catch(() => undefined);
    this.queues.set(id, tail);
    void tail.then(() => {
      if (this.queues.get(id) === tail) this.queues.delete(id);
    });
    return run;
  }

  private forgetAll(error: TrussClientError): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    for (const entry of this.entries.values()) for (const waiter of entry.waiters.splice(0)) waiter.reject(error);
    this.entries.clear();
  }
}
