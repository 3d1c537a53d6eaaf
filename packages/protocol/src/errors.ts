/**
 * Every refusal Truss makes carries one of these codes: in a `connect_error`,
 * in an `{ ok: false, error }` ack, or in an `error` event. The list is closed;
 * a new code is a minor release. What a client does about each one is in
 * `ERROR_ACTIONS`.
 */
export const ERROR_CODES = [
  /** The handshake carried no token (`auth.token` or `Authorization: Bearer`). */
  "AUTH_MISSING_TOKEN",
  /** The token is malformed, forged, unsigned (`alg: none`) or its signature fails. */
  "AUTH_INVALID_TOKEN",
  /** The token is signed with an algorithm the server does not accept. */
  "AUTH_WRONG_ALGORITHM",
  /** The token's `exp` is in the past. */
  "AUTH_TOKEN_EXPIRED",
  /** The token's `nbf` is in the future. */
  "AUTH_TOKEN_NOT_YET_VALID",
  /** The token's `iss` is not the configured issuer. */
  "AUTH_WRONG_ISSUER",
  /** The token's `aud` is not the configured audience. */
  "AUTH_WRONG_AUDIENCE",
  /** The token is valid but lacks a claim Truss needs (user or company). */
  "AUTH_MISSING_CLAIMS",
  /** A refreshed token names another user or company than the connection's. */
  "AUTH_PRINCIPAL_MISMATCH",
  /** The request's Origin header is not on the allow-list. */
  "ORIGIN_NOT_ALLOWED",
  /** A client event was larger than `limits.maxPayloadBytes`. */
  "PAYLOAD_TOO_LARGE",
  /**
   * An event past a budget: the socket's `limits.eventsPerSecond`, or what all
   * of the user's sockets on the node may send together
   * (`limits.userEventsPerSecond`, `limits.userBytesPerSecond`); the message
   * names which. Retry after a moment.
   */
  "RATE_LIMITED",
  /** An update or rollback would make the document larger than `limits.maxDocumentBytes`; nothing was stored. */
  "DOCUMENT_TOO_LARGE",
  /**
   * The write would take the company past what the server's store keeps for
   * one company (in the default in-memory stores: documents, bytes of
   * documents and their history, bytes of inbox messages); nothing was
   * stored. Sending it again will not help until the company holds less:
   * tell the user their data is full and ask the operator to raise the quota
   * or move to a durable store.
   */
  "QUOTA_EXCEEDED",
  /** The socket stopped reading and more than `limits.maxBufferedBytes` waited for it; it was disconnected. Reconnect. */
  "SLOW_CONSUMER",
  /** The user already has `limits.maxDevicesPerUser` devices connected; close one first. */
  "TOO_MANY_DEVICES",
  /**
   * The device (same user and `deviceId`) already has
   * `limits.maxSocketsPerDevice` sockets open to this server, as many tabs
   * of one browser profile do; close one first. Not `TOO_MANY_DEVICES`, whose
   * remedy is to sign another device out.
   */
  "TOO_MANY_CONNECTIONS",
  /** The client sent an event that no handler is registered for. */
  "UNKNOWN_EVENT",
  /** The payload failed the event's schema. */
  "INVALID_PAYLOAD",
  /** The document (or inbox item) does not exist in the caller's company. */
  "NOT_FOUND",
  /** The requested document version is not in the history (never existed or trimmed). */
  "VERSION_NOT_FOUND",
  /**
   * A write carried a mutation id older than the window the server remembers
   * them for: it may have been committed already, so it was not applied again.
   * Reload the document and redo the change if it is missing.
   */
  "MUTATION_EXPIRED",
  /** The server's `authorize` policy refused the operation (or has none for topics, or threw, or timed out). */
  "FORBIDDEN",
  /**
   * The socket already holds `limits.maxSubscriptionsPerConnection`
   * subscriptions, topics and watched documents together; unsubscribe from
   * one (or unwatch a document) first.
   */
  "TOO_MANY_SUBSCRIPTIONS",
  /**
   * A presence state was larger than `scopedPresenceLimits.maxStateBytes` of
   * JSON; nothing was stored or sent. Send a smaller state (which field,
   * not its contents).
   */
  "PRESENCE_STATE_TOO_LARGE",
  /**
   * The socket is already present in `scopedPresenceLimits.maxScopesPerConnection`
   * scopes; leave one first.
   */
  "TOO_MANY_PRESENCE_SCOPES",
  /** The application revoked this user's access (`engine.disconnectUser` or `engine.unsubscribeUser`); do not reconnect with the same credential. */
  "ACCESS_REVOKED",
  /** A store (presence, inbox, documents) could not be reached or did not answer in time; the operation was not confirmed (a timed-out write may still land). */
  "STORE_UNAVAILABLE",
  /** The server is shutting down; reconnect to another node. */
  "SERVER_SHUTTING_DOWN",
  /**
   * The application's own code failed on this request, and would on the same
   * request again: an event handler threw (the server logged why), did not
   * answer within `limits.handlerTimeoutMs`, or answered what cannot be sent
   * (a BigInt, a cycle); or a custom conflict resolver failed on a stale write.
   */
  "HANDLER_ERROR",
  /** An unexpected failure inside Truss; the server log has the details. */
  "INTERNAL_ERROR",
] as const;

/** One of {@link ERROR_CODES}. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** The wire shape of an error: in acks, `error` events and `connect_error.data`. */
export interface ErrorPayload {
  /** A code from {@link ERROR_CODES}: branch on this, not on the message. */
  code: ErrorCode;
  /** A sentence a person can act on. */
  message: string;
}
