import type { IncomingHttpHeaders } from "node:http";

/**
 * Who is on the other end of a connection, as proven by its token. Rooms,
 * presence, inbox and documents are all keyed from this, never from anything
 * the client names.
 */
export interface Principal {
  /** The user's id, unique across all companies. */
  userId: string;
  /** The tenant the user belongs to; nothing crosses this boundary. */
  companyId: string;
  /** The device (browser, phone) this connection speaks for; a user may have many. */
  deviceId: string;
  /** Application roles, for the application's own checks. */
  roles: readonly string[];
  /** When the credential stops being valid, in epoch milliseconds; `null` for never. */
  expiresAt: number | null;
  /**
   * When the credential was issued, in epoch milliseconds (`jwtAuth`: the
   * `iat` claim); `null` or absent when unknown. A revocation
   * (`disconnectUser`) refuses credentials issued before it, at the handshake
   * and on `auth:refresh`; one whose issue time is unknown cannot be told
   * apart from a new one, so set it in your own authenticator.
   */
  issuedAt?: number | null;
}

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
}

/**
 * Turns a credential into a {@link Principal}. Called at the handshake and on
 * every `auth:refresh`.
 */
export interface Authenticator {
  /**
   * Resolves with the principal the credential proves, or rejects with a
   * `TrussError` whose code starts with `AUTH_` saying why not. Must never
   * resolve for a forged, expired or not-yet-valid credential.
   */
  authenticate(request: AuthRequest): Promise<Principal>;
}
