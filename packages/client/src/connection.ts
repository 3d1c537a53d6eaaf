import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";
import {
  CONNECTION_ACTIONS,
  PROTOCOL_EVENTS,
  SESSION_ENDING_CODES,
  withinDeadline,
  type AuthExpiring,
  type AuthSession,
  type ErrorPayload,
  type HandshakeAuth,
  type TrussClientEvents,
} from "@truss/protocol";
import { Backoff, type ReconnectOptions } from "./backoff.js";
import { errorAction, fromPayload, isServerErrorCode, isTrussClientError, TrussClientError } from "./errors.js";
import { Listeners } from "./listeners.js";

/**
 * Where the connection stands:
 * - `connecting`: not connected yet, trying (also between failed first attempts);
 * - `connected`: the server accepted the handshake;
 * - `reconnecting`: was connected, lost it, and is trying again;
 * - `closed`: `close()` was called or the client stopped for good, e.g. its
 *   access was revoked (the change's `reason` says why).
 */
export type ConnectionStatus = "connecting" | "connected" | "reconnecting" | "closed";

/** The credential and transport options of a connection. */
export interface ConnectionOptions {
  /**
   * A fixed token (JWT). With only a token, the client cannot renew it: when
   * the server refuses or expires it, the client stops and reports why.
   */
  token?: string;
  /**
   * Returns a current token; called before every connection attempt (the
   * first one too, unless `token` is also given) and on `auth:expiring`, so a
   * refresh never drops the connection.
   */
  getToken?: () => string | Promise<string>;
  /** This device's stable id (one per phone or browser profile); inbox cursors are kept per device. */
  deviceId: string;
  /** Backoff between reconnection attempts. */
  reconnect?: ReconnectOptions;
  /** How long a request waits for the server's ack, in ms, including while offline. Default 10,000. */
  ackTimeoutMs?: number;
  /**
   * How long the client waits for the app's own code, in ms: `getToken`, each
   * call to the dedup, position and outbox stores, `onConflict`, and each
   * inbox handler. Past it the call counts as failed, as if it had thrown
   * (`TOKEN_UNAVAILABLE` and a retry with backoff; `STORAGE_FAILED`; a handler
   * reported as `HANDLER_ERROR`, its message still counting as handled), so a
   * token fetch that hangs on a flaky network, or an IndexedDB transaction
   * that never completes, cannot stop reconnection or the inbox for good. What
   * it answers later is dropped. Default 10,000.
   */
  callbackTimeoutMs?: number;
  /**
   * Extra socket.io-client options (`path`, `transports`, `extraHeaders`…).
   * `autoConnect`, `reconnection` and the `token`, `deviceId`, `session`
   * and `principal` fields of `auth` are the client's own; other `auth`
   * fields are sent along.
   */
  socketOptions?: Partial<ManagerOptions & SocketOptions>;
}

/** The default `ackTimeoutMs`. */
export const DEFAULT_ACK_TIMEOUT_MS = 10_000;
/** The default `callbackTimeoutMs`. */
export const DEFAULT_CALLBACK_TIMEOUT_MS = 10_000;

/** Events the client sends with an ack, and the body of their successful ack. */
type RequestEvent = keyof TrussClientEvents;
type AckOf<E extends RequestEvent> = Parameters<Parameters<TrussClientEvents[E]>[1]>[0];
/** The body of a successful ack of `E`, without `ok`. */
export type AckBody<E extends RequestEvent> = WithoutOk<Extract<AckOf<E>, { ok: true }>>;
/** Omits `ok` from each member of a union (a plain `Omit` would merge the members). */
type WithoutOk<T> = T extends unknown ? Omit<T, "ok"> : never;

/** What a status change reports besides the new status. */
export interface StatusChange {
  /** The new status. */
  status: ConnectionStatus;
  /** The status before. */
  previous: ConnectionStatus;
  /**
   * Why it changed, when it was not the client's own doing: the refusal, the
   * lost transport or the server's reason for ending the session (for
   * `closed`, the error that stopped the client; `null` after `close()`).
   */
  reason: TrussClientError | null;
}

/**
 * Owns the socket: credentials, connection attempts, reconnection policy,
 * token refresh and acknowledged requests. socket.io-client's own
 * reconnection is off because it gives up after a server-side disconnect or
 * a refused handshake, where Truss knows better (an expired token is renewed,
 * a shutting-down server is retried, a forged token is not).
 */
export class Connection {
  /** The socket.io-client socket, reused across reconnections so its listeners and send buffer survive. */
  readonly socket: Socket;
  private currentStatus: ConnectionStatus = "connecting";
  private everConnected = false;
  private stopped = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private attempting = false;
  /** Whether an attempt already went out with the `token` option. */
  private initialTokenUsed = false;
  private token: string | undefined;
  /**
   * Whom the first connection was (its `auth:session`): every later
   * handshake names them, and the server refuses a token of anyone else
   * (`AUTH_PRINCIPAL_MISMATCH`), before anything this client holds goes out.
   */
  private principal: AuthSession | undefined;
  /** An `error` event that explains the server-side disconnect right after it. */
  private disconnectReason: ErrorPayload | null = null;
  private readonly backoff: Backoff;
  private readonly ackTimeoutMs: number;
  /** How long the app's own code may take: see {@link ConnectionOptions.callbackTimeoutMs}. */
  readonly callbackTimeoutMs: number;
  private readonly getToken: (() => string | Promise<string>) | undefined;
  private readonly deviceId: string;
  private readonly pending = new Set<(error: TrussClientError) => void>();
  private readonly statusListeners: Listeners<[ConnectionStatus, StatusChange]>;
  private readonly errorListeners: Listeners<[TrussClientError]>;

  constructor(url: string, options: ConnectionOptions) {
    if (typeof url !== "string" || url.length === 0) throw new TypeError("connect(url, options) needs the server's URL, e.g. https://erp.example.com.");
    if (!options || typeof options.deviceId !== "string" || options.deviceId.length === 0) {
      throw new TypeError("connect() needs a `deviceId`: a stable id for this phone or browser profile, kept across restarts.");
    }
    if (options.getToken !== undefined && typeof options.getToken !== "function") throw new TypeError("`getToken` must be a function returning a token.");
    if (options.getToken === undefined && (typeof options.token !== "string" || options.token.length === 0)) {
      throw new TypeError("connect() needs `token` (a string) or `getToken` (a function that returns one).");
    }
    this.token = options.token;
    this.getToken = options.getToken;
    this.deviceId = options.deviceId;
    this.backoff = new Backoff(options.reconnect);
    this.ackTimeoutMs = options.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS;
    if (!(this.ackTimeoutMs > 0)) throw new TypeError(`ackTimeoutMs must be a positive number; got ${String(options.ackTimeoutMs)}.`);
    this.callbackTimeoutMs = options.callbackTimeoutMs ?? DEFAULT_CALLBACK_TIMEOUT_MS;
    if (!(this.callbackTimeoutMs > 0)) throw new TypeError(`callbackTimeoutMs must be a positive number; got ${String(options.callbackTimeoutMs)}.`);
    // Listener failures are reported as errors; an error listener's own failure has nowhere else to go.
    this.errorListeners = new Listeners((error) => console.error("[truss] an onError listener threw", error));
    this.statusListeners = new Listeners((error) => this.report(handlerError("onStatus", error)));

    const socketOptions = options.socketOptions ?? {};
    const extraAuth = typeof socketOptions.auth === "object" && socketOptions.auth !== null ? socketOptions.auth : {};
    this.socket = io(url, {
      // One manager per client: its lifecycle (close, reconnect) is this client's alone.
      forceNew: true,
      ...socketOptions,
      autoConnect: false,
      reconnection: false,
      // Read on every attempt, so a reconnection carries the newest token.
      // Until the first connection named its user and company, the client asks for them (`session`); then it names them back.
      auth: (send) =>
        send({ ...extraAuth, token: this.token, deviceId: this.deviceId, ...(this.principal === undefined ? { session: true } : { principal: this.principal }) } satisfies HandshakeAuth),
    });
    this.listen();
  }

  /** The current status. */
  get status(): ConnectionStatus {
    return this.currentStatus;
  }

  /** Whether the client has stopped for good. */
  get closed(): boolean {
    return this.stopped;
  }

  /** Calls `callback` on every status change, with the change and its reason; returns an unsubscribe function. */
  onStatus(callback: (status: ConnectionStatus, change: StatusChange) => void): () => void {
    return this.statusListeners.add(callback);
  }

  /** Calls `callback` with every coded error; returns an unsubscribe function. */
  onError(callback: (error: TrussClientError) => void): () => void {
    return this.errorListeners.add(callback);
  }

  /** Hands an error to the `onError` listeners. */
  report(error: TrussClientError): void {
    this.errorListeners.emit(error);
  }

  /** Starts the first connection attempt. */
  start(): void {
    void this.attempt();
  }

  /**
   * Sends a protocol event and resolves with its ack body, or rejects with a
   * {@link TrussClientError}. While offline the event waits in the socket's
   * buffer and goes out on reconnection, within `ackTimeoutMs`.
   */
  request<E extends RequestEvent>(event: E, payload: Parameters<TrussClientEvents[E]>[0]): Promise<AckBody<E>> {
    return this.call(event, payload) as Promise<AckBody<E>>;
  }

  /**
   * {@link request} for any event name (the application's own). `meta`, when
   * given, goes as the event's second argument (`{ mutationId }` of a queued
   * write); `ackTimeoutMs` replaces the client's for this call.
   */
  call(event: string, payload: unknown, meta?: { mutationId: string }, ackTimeoutMs = this.ackTimeoutMs): Promise<Record<string, unknown>> {
    if (this.stopped) return Promise.reject(closedError());
    return new Promise((resolve, reject) => {
      const fail = (error: TrussClientError) => {
        this.pending.delete(fail);
        reject(error);
      };
      this.pending.add(fail);
      const onAck = (error: Error | null, ack: unknown) => {
        if (!this.pending.has(fail)) return;
        if (error) return fail(this.transportError(event, error, ackTimeoutMs));
        this.pending.delete(fail);
        const reply = ack as { ok?: unknown; error?: ErrorPayload } | null | undefined;
        if (reply?.ok === true) {
          const { ok: _ok, ...body } = reply;
          resolve(body);
        } else {
          reject(fromPayload(reply?.error, `"${event}" was refused without a reason.`));
        }
      };
      const socket = this.socket.timeout(ackTimeoutMs);
      if (meta) socket.emit(event, payload, meta, onAck);
      else socket.emit(event, payload, onAck);
    });
  }

  /** Stops for good: no more attempts, pending requests reject with `CLIENT_CLOSED`. */
  close(reason?: TrussClientError): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.unwatchNetwork();
    this.socket.disconnect();
    const error = closedError(reason);
    for (const fail of [...this.pending]) fail(error);
    this.setStatus("closed", reason ?? null);
  }

  /**
   * Follows the browser's own idea of the network (`online` / `offline` on
   * `window`): going offline drops the transport at once instead of waiting
   * for a ping to time out, so writes queue and the status says so; coming
   * back online tries to connect now instead of waiting out the backoff.
   * A no-op where there is no such event source (Node).
   */
  private watchNetwork(): void {
    const target = globalThis as { addEventListener?: typeof addEventListener; removeEventListener?: typeof removeEventListener };
    if (typeof target.addEventListener !== "function" || typeof target.removeEventListener !== "function") return;
    const offline = () => {
      if (this.socket.connected) this.socket.io.engine?.close();
    };
    const online = () => {
      if (this.stopped || this.socket.connected || this.attempting) return;
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      void this.attempt();
    };
    target.addEventListener("offline", offline);
    target.addEventListener("online", online);
    this.unwatchNetwork = () => {
      target.removeEventListener!("offline", offline);
      target.removeEventListener!("online", online);
    };
  }

  private unwatchNetwork: () => void = () => undefined;

  private listen(): void {
    this.watchNetwork();
    const { socket } = this;
    socket.on("connect", () => {
      this.attempting = false;
      this.everConnected = true;
      this.disconnectReason = null;
      this.backoff.reset();
      this.setStatus("connected", null);
    });
    socket.on("connect_error", (error: Error & { data?: ErrorPayload }) => {
      this.attempting = false;
      if (this.stopped) return;
      const refusal = error.data && isServerErrorCode(error.data.code) ? fromPayload(error.data, error.message) : null;
      this.fail(refusal ?? new TrussClientError("CONNECTION_FAILED", `Could not reach the server (${error.message}); retrying.`, { cause: error }));
    });
    socket.on("disconnect", (reason: string) => {
      this.attempting = false;
      if (this.stopped) return;
      if (reason === "io client disconnect") return this.close();
      const cause = this.disconnectReason;
      this.disconnectReason = null;
      if (reason !== "io server disconnect") {
        return this.fail(new TrussClientError("DISCONNECTED", `The connection dropped (${reason}); reconnecting.`), { silently: true });
      }
      // The server ended the session on purpose; its `error` event just before says why (and was reported then).
      if (cause) return this.fail(fromPayload(cause, cause.message), { silently: true });
      this.fail(new TrussClientError("SERVER_DISCONNECTED", "The server closed this session without a reason; not reconnecting. Create a new client to try again."));
    });
    socket.on(PROTOCOL_EVENTS.error, (payload: ErrorPayload) => {
      // A session-ending code explains the server-side disconnect that follows; any other is a notice.
      if (payload && SESSION_ENDING_CODES.includes(payload.code)) this.disconnectReason = payload;
      this.report(fromPayload(payload, "The server reported an error without a message."));
    });
    socket.on(PROTOCOL_EVENTS.authSession, (session: AuthSession) => {
      if (this.principal !== undefined || typeof session?.userId !== "string" || typeof session.companyId !== "string") return;
      this.principal = { userId: session.userId, companyId: session.companyId };
    });
    socket.on(PROTOCOL_EVENTS.authExpiring, (notice: AuthExpiring) => void this.refresh(notice));
  }

  /**
   * The one reconnection policy, reporting the failure unless it was
   * already: what its code means for a connection (`CONNECTION_ACTIONS`).
   * Causes: a refused handshake (the server's code), no answer
   * (`CONNECTION_FAILED`), a dropped transport (`DISCONNECTED`), a failed
   * token provider (`TOKEN_UNAVAILABLE`), and a session the server ended
   * (the code of its `error` event right before, `SERVER_DISCONNECTED` when
   * it gave none). Every attempt asks `getToken` first, so a renewal is a
   * retry; without `getToken` there is no new token, and the client stops.
   */
  private fail(error: TrussClientError, { silently = false } = {}): void {
    if (!silently) this.report(error);
    const action = CONNECTION_ACTIONS[errorAction(error.code)];
    if (action === "retry" || (action === "renew-token" && this.getToken)) this.retry(error);
    else this.close(error);
  }

  /** One connection attempt: a fresh token if there is a provider, then the handshake. */
  private async attempt(): Promise<void> {
    this.retryTimer = undefined;
    if (this.stopped || this.attempting || this.socket.connected) return;
    this.attempting = true;
    // The first attempt may use the `token` it was given; later ones always ask the provider.
    if (this.getToken && (this.token === undefined || this.initialTokenUsed)) {
      try {
        this.token = await this.fetchToken();
      } catch (error) {
        this.attempting = false;
        if (this.stopped) return;
        return this.fail(tokenError(error));
      }
      if (this.stopped) {
        this.attempting = false;
        return;
      }
    }
    this.initialTokenUsed = true;
    this.socket.connect();
  }

  private retry(reason: TrussClientError): void {
    if (this.stopped || this.retryTimer !== undefined) return;
    this.setStatus(this.everConnected ? "reconnecting" : "connecting", reason);
    this.retryTimer = setTimeout(() => void this.attempt(), this.backoff.next());
  }

  /**
   * Renews the credential on the live connection. If this fails the server
   * closes the connection at expiry, and the reconnection asks `getToken`
   * again, so a failed refresh costs a reconnect, never the session.
   */
  private async refresh(notice: AuthExpiring): Promise<void> {
    if (!this.getToken) return;
    try {
      const token = await this.fetchToken();
      await this.request(PROTOCOL_EVENTS.authRefresh, { token });
      this.token = token;
    } catch (error) {
      if (this.stopped) return;
      const cause = isTrussClientError(error) ? error : tokenError(error);
      this.report(
        new TrussClientError(cause.code, `Refreshing the token failed (${cause.message}); the server closes this connection in ${Math.max(0, notice.expiresInMs)} ms and the client will reconnect with a new token.`, { cause: error }),
      );
    }
  }

  /** The app's `answer` within `callbackTimeoutMs`; a rejection with `DeadlineExceeded` past it (its late answer is dropped). */
  settled<T>(answer: T | PromiseLike<T>): Promise<T> {
    return withinDeadline(answer, this.callbackTimeoutMs);
  }

  private async fetchToken(): Promise<string> {
    const token = await this.settled(this.getToken!());
    if (typeof token !== "string" || token.length === 0) throw new TypeError(`getToken() returned ${token === "" ? "an empty string" : typeof token}, not a token.`);
    return token;
  }

  private transportError(event: string, error: Error, ackTimeoutMs: number): TrussClientError {
    if (this.stopped) return closedError();
    if (/timed out/i.test(error.message)) {
      return new TrussClientError("TIMEOUT", `"${event}" got no answer within ${ackTimeoutMs} ms; it may or may not have been applied.`, { cause: error });
    }
    return new TrussClientError("DISCONNECTED", `The connection dropped before "${event}" was answered; it may or may not have been applied.`, { cause: error });
  }

  private setStatus(status: ConnectionStatus, reason: TrussClientError | null): void {
    if (status === this.currentStatus) return;
    const previous = this.currentStatus;
    this.currentStatus = status;
    this.statusListeners.emit(status, { status, previous, reason });
  }
}

/** The error of a call the client cannot make or finish because it stopped; `reason` is why it stopped. */
export function closedError(reason?: TrussClientError): TrussClientError {
  return new TrussClientError("CLIENT_CLOSED", reason ? `The client stopped: ${reason.message}` : "The client is closed.", reason ? { cause: reason } : undefined);
}

function tokenError(error: unknown): TrussClientError {
  if (isTrussClientError(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new TrussClientError("TOKEN_UNAVAILABLE", `getToken() failed: ${message}`, { cause: error });
}

/** Wraps a failure of an application callback. */
export function handlerError(where: string, error: unknown): TrussClientError {
  const message = error instanceof Error ? error.message : String(error);
  return new TrussClientError("HANDLER_ERROR", `A ${where} handler threw: ${message}`, { cause: error });
}
