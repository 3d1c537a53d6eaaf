import { PROTOCOL_EVENTS, type PresenceScope, type PresenceUser } from "@truss/protocol";
import type { Connection } from "./connection.js";
import { isServerErrorCode, type TrussClientError } from "./errors.js";
import { Listeners } from "./listeners.js";
import { ScopedPresences, type ScopePresence } from "./scoped-presence.js";

/**
 * Who is here, as `client.presence`: the company's online users (`list`,
 * `subscribe`, `current`), and who is in one topic or document with their
 * state (`in(scope)`).
 */
export interface PresenceClient {
  /** Asks the server for the online users of the company, with their devices. */
  list(): Promise<PresenceUser[]>;
  /**
   * Calls `callback` with the whole list whenever it changes (a user or a
   * device came or went), and right away when a list is already known.
   * The list is fetched on each (re)connection and after each
   * `presence:update`. Returns an unsubscribe function.
   */
  subscribe(callback: (users: PresenceUser[]) => void): () => void;
  /** The last list seen, or `null` before the first one. */
  readonly current: PresenceUser[] | null;
  /**
   * This connection's presence in a topic it subscribed to
   * (`{ topic: "project:p-17" }`) or a document it watches
   * (`{ type: "site-report", id: "r-1" }`): join with a state, update it,
   * leave, and see the others. One object per scope; the client itself
   * holds it only while joined or listened to, so scopes left behind cost
   * nothing.
   *
   * @throws TrussClientError `INVALID_PAYLOAD` when `scope` is neither shape.
   */
  in(scope: PresenceScope): ScopePresence;
}

/** Keeps the company's presence list of one connection. */
export class PresenceTracker implements PresenceClient {
  private users: PresenceUser[] | null = null;
  private readonly listeners: Listeners<[PresenceUser[]]>;
  private refreshing = false;
  private stale = false;
  private readonly scopes: ScopedPresences;

  constructor(
    private readonly connection: Connection,
    onListenerFailure: (error: unknown) => void,
  ) {
    this.listeners = new Listeners(onListenerFailure);
    this.scopes = new ScopedPresences(connection, onListenerFailure);
    // Presence events say who changed, not their devices, so the listing is fetched rather than patched;
    // `presence:updates` carries a burst's changes in one packet, so a storm costs one refresh.
    connection.socket.on("connect", () => this.refresh());
    connection.socket.on(PROTOCOL_EVENTS.presenceUpdate, () => this.refresh());
    connection.socket.on(PROTOCOL_EVENTS.presenceUpdates, () => this.refresh());
  }

  get current(): PresenceUser[] | null {
    return this.users;
  }

  in(scope: PresenceScope): ScopePresence {
    return this.scopes.in(scope);
  }

  /** Lets go of the company's list and of every scope's members, telling their listeners: the session passed to another user. */
  forget(): void {
    this.scopes.forget();
    if (this.users === null) return;
    this.users = [];
    this.listeners.emit([]);
  }

  async list(): Promise<PresenceUser[]> {
    // While something is subscribed, the socket follows: the server sends presence changes only to followers.
    const { users } = await this.connection.request(PROTOCOL_EVENTS.presenceList, this.listeners.size > 0 ? { follow: true } : {});
    this.accept(users);
    return users;
  }

  subscribe(callback: (users: PresenceUser[]) => void): () => void {
    const unsubscribe = this.listeners.add(callback);
    const known = this.users;
    if (known) {
      // Deferred so the callback never runs before `subscribe` has returned its unsubscribe function.
      queueMicrotask(() => {
        if (this.users === known) callback(known);
      });
    }
    if (this.connection.status === "connected") this.refresh();
    return () => {
      const before = this.listeners.size;
      unsubscribe();
      // The last subscriber gone: stop following, so the server no longer sends this socket every change.
      if (before === 1 && this.listeners.size === 0 && this.connection.status === "connected") {
        this.connection.request(PROTOCOL_EVENTS.presenceList, { follow: false }).catch(() => undefined);
      }
    };
  }

  /**
   * Fetches the list, at most one request at a time: updates that arrive
   * while one is in flight cause a single follow-up fetch, so a crew of
   * twenty logging in at 7:00 costs two requests, not twenty.
   */
  private refresh(): void {
    if (this.listeners.size === 0) return;
    if (this.refreshing) {
      this.stale = true;
      return;
    }
    this.refreshing = true;
    void (async () => {
      try {
        do {
          this.stale = false;
          try {
            await this.list();
          } catch (error) {
            const failure = error as TrussClientError;
            // No answer (dropped, timed out, closed): the next connection refetches anyway. The server's refusals are news.
            if (!isServerErrorCode(failure.code)) return;
            this.connection.report(failure);
          }
        } while (this.stale && !this.connection.closed);
      } finally {
        this.refreshing = false;
      }
    })();
  }

  /** Stores the list and tells subscribers when it differs from the last one. */
  private accept(users: PresenceUser[]): void {
    const changed = this.users === null || signature(this.users) !== signature(users);
    this.users = users;
    if (changed) this.listeners.emit(users);
  }
}

/** Users and their devices, ignoring heartbeat times, which change without anyone coming or going. */
function signature(users: PresenceUser[]): string {
  return JSON.stringify(users.map((user) => [user.userId, user.devices.map((device) => device.deviceId).sort()]).sort());
}
