import type { IncomingHttpHeaders } from "node:http";
import type { Principal } from "../kernel/principal.js";

/** What an {@link Authenticator} is given: the credential and the request around it. */
export interface AuthRequest {
  /** The bearer token from `handshake.auth.token` or `Authorization: Bearer`; never the query string. */
  token: string | undefined;
  /** The device id the client asked for (`handshake.auth.deviceId`), if any; treat as untrusted. */
  deviceId: string | undefined;
  /** The handshake's HTTP headers. */
  headers: IncomingHttpHeaders;
  /** The peer address. */
  address: string;
  /**
   * Aborted when the authenticator has not answered within
   * `limits.authenticateTimeoutMs` (the handshake has then been refused; the
   * reason is that refusal), or when `engine.close()` stops waiting for the
   * application's work (the reason is `SERVER_SHUTTING_DOWN`): pass it to
   * `fetch` or your database client so an identity call that hangs stops
   * too. Absent for `jwtAuth` reading claims by name, which the engine does
   * not time.
   */
  readonly signal?: AbortSignal;
}

/**
 * Turns a credential into a {@link Principal}. Called at the handshake and on
 * every `auth:refresh`.
 */
export interface Authenticator {
  /**
   * Resolves with the principal the credential proves, or rejects with a
   * `TrussError` whose code starts with `AUTH_` saying why not. Must never
   * resolve for a forged, expired or not-yet-valid credential. Past
   * `limits.authenticateTimeoutMs` (5 s) without an answer, the handshake is
   * refused with `INTERNAL_ERROR`, which clients retry.
   */
  authenticate(request: AuthRequest): Promise<Principal>;
}
