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
