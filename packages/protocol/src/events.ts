import type { DocumentData, DocumentVersion, FieldConflict, InboxMessage, PresenceUser } from "./data.js";
import type { ErrorPayload } from "./errors.js";
import type { PresenceScope, ScopedPresenceChanges, ScopedPresenceListing } from "./scoped-presence.js";

/** Event names Truss itself uses; application events must not reuse them. */
export const PROTOCOL_EVENTS = {
  presenceUpdate: "presence:update",
  presenceUpdates: "presence:updates",
  documentUpdated: "document:updated",
  inboxMessage: "inbox:message",
  authExpiring: "auth:expiring",
  authSession: "auth:session",
  error: "error",
  authRefresh: "auth:refresh",
  inboxAck: "inbox:ack",
  presenceList: "presence:list",
  documentGet: "document:get",
  documentUpdate: "document:update",
  documentHistory: "document:history",
  documentRollback: "document:rollback",
  documentWatch: "document:watch",
  documentUnwatch: "document:unwatch",
  documentDropped: "document:dropped",
  topicSubscribe: "topic:subscribe",
  topicUnsubscribe: "topic:unsubscribe",
  topicDropped: "topic:dropped",
  streamRead: "stream:read",
  streamStart: "stream:start",
  presenceJoin: "presence:join",
  presenceSet: "presence:set",
  presenceLeave: "presence:leave",
  presenceMembers: "presence:members",
  presenceChanges: "presence:changes",
} as const;

/** Every reserved event name, for quick membership checks. */
export const RESERVED_EVENTS: ReadonlySet<string> = new Set(Object.values(PROTOCOL_EVENTS));

/** An acknowledgement: success with a body, or a coded error. */
export type Ack<TBody extends object = object> = ({ ok: true } & TBody) | { ok: false; error: ErrorPayload };

/** Payload of `presence:update`, sent to the company's sockets that follow its presence (`presence:list` with `follow: true`). */
export interface PresenceUpdate {
  /** The user whose first device came online or whose last device went. */
  userId: string;
  /** Whether the user is now online. */
  online: boolean;
}

/**
 * Payload of `presence:updates`: the changes of one company collected during
 * a burst (a site's phones reconnecting together), oldest first. The first
 * change of a burst still goes out at once as `presence:update`.
 */
export interface PresenceUpdates {
  /** Each user's change, in the order they happened. */
  updates: PresenceUpdate[];
  /**
   * `true` when the server may have missed other servers' changes (its link
   * to them was cut and is back): `updates` is then every user online now,
   * each `online: true`, and a user the client shows online who is not among
   * them went offline meanwhile. `@truss/client` lists the company again on
   * any `presence:updates`, this one included.
   */
  resync?: true;
}

/**
 * Payload of `auth:session`, the first event of a connection whose handshake
 * asked for it ({@link HandshakeAuth.session}): the user and company the
 * server took the token for. A client names them back in
 * the `auth.principal` of each later handshake ({@link HandshakeAuth}).
 */
export interface AuthSession {
  /** The user the token names. */
  userId: string;
  /** The user's company. */
  companyId: string;
}

/** What a client sends as Socket.IO's `auth` when it connects. */
export interface HandshakeAuth {
  /** The credential (or an `Authorization: Bearer` header instead; never the query string). */
  token?: string;
  /** This device's stable id. */
  deviceId?: string;
  /**
   * The user and company of the client's first connection (its
   * `auth:session`), sent on every later one: the server refuses a token
   * that names another user or company with `AUTH_PRINCIPAL_MISMATCH`, so
   * nothing a client kept for one user (queued writes, subscriptions,
   * requests waiting for the connection) reaches another's session.
   */
  principal?: AuthSession;
  /**
   * Asks the server to name the connection's user and company in
   * `auth:session`, first of all its events: a client that does not know
   * them yet (its first connection) asks; one that names `principal` need
   * not. Without it the server sends no `auth:session`.
   */
  session?: true;
}

/** Payload of `auth:expiring`. */
export interface AuthExpiring {
  /** When the connection's credential expires, epoch ms. */
  expiresAt: number;
  /** Milliseconds left until the server disconnects without an `auth:refresh`. */
  expiresInMs: number;
}

/**
 * A committed version of a document in full: the whole-document form of
 * `document:updated`, and what `@truss/client` hands the app for every
 * version whichever form came over the wire.
 *
 * The server sends this form to every socket that may read the document
 * except the writer's (without an `authorize` policy the writer's whole
 * company, with one only the sockets watching it, `document:watch`) when
 * the document was just created, when the delta would not save at least
 * {@link DOCUMENT_DELTA_MIN_SAVING_BYTES}, and, without a policy, to the
 * company's sockets that do not watch the document (they hold no copy to
 * apply a delta to).
 */
export interface DocumentUpdated {
  /** The document's kind. */
  type: string;
  /** The document's id. */
  id: string;
  /** The new version. */
  version: number;
  /** The full document at that version. */
  data: DocumentData;
  /** Who committed it. */
  updatedBy: string | null;
  /** The top-level fields this version changed. */
  changedFields: string[];
}

/**
 * What changed between two versions of a document, top-level field by
 * field: a changed field is sent whole (nested objects are not diffed).
 * Applied to the data of the base version it gives the new version's data:
 * each field of `set` takes its value, each field of `unset` is deleted,
 * every other field keeps its value.
 */
export interface DocumentDelta {
  /** Fields with a new value (added or changed), each value whole. */
  set?: DocumentData;
  /** Fields the new version no longer has. */
  unset?: string[];
}

/**
 * The delta form of `document:updated`: sent to the sockets that watch the
 * document (`document:watch`) instead of {@link DocumentUpdated} when it
 * saves at least {@link DOCUMENT_DELTA_MIN_SAVING_BYTES}. A client that
 * holds version `baseVersion` applies `delta` to it and has `version`; a
 * client at any other version (it missed one, or has not loaded the
 * document yet) ignores a delta older than what it holds, and otherwise
 * reads the document once (`document:get`) and applies the deltas that
 * follow it. `@truss/client` does this and hands its app the whole document.
 */
export interface DocumentDeltaUpdated {
  /** The document's kind. */
  type: string;
  /** The document's id. */
  id: string;
  /** The new version. */
  version: number;
  /** The version the delta applies to: the one committed just before `version`. */
  baseVersion: number;
  /** What changed from `baseVersion` to `version`. */
  delta: DocumentDelta;
  /** Who committed it. */
  updatedBy: string | null;
  /** The top-level fields this version changed. */
  changedFields: string[];
}

/**
 * Payload of `document:updated`: the whole document, or for a watcher the
 * delta from the version before (tell them apart by `"delta" in update`).
 * Earlier servers sent every update whole; a client that reads only `data`
 * must handle the delta form too, or never watch documents. A version may
 * arrive more than once (a write resent with its mutation id to another
 * node is announced by that node too, whole): drop a version you already
 * hold.
 */
export type DocumentUpdatedPayload = DocumentUpdated | DocumentDeltaUpdated;

/**
 * The fewest bytes (of JSON) a delta must save over the whole document for
 * the server to send it: below that the whole document costs about the
 * same on the wire (it still fits the same TCP segment) and needs no base
 * version, so it never makes a client read the document again.
 */
export const DOCUMENT_DELTA_MIN_SAVING_BYTES = 1024;

/** `document:update` request. */
export interface DocumentUpdateRequest {
  /** The document's kind. */
  type: string;
  /** The document's id. */
  id: string;
  /** The version the changes are based on; 0 creates the document. */
  baseVersion: number;
  /** The top-level fields to set (`null` deletes a field). */
  changes: DocumentData;
  /** The client's clock when the change was made, epoch ms (informational). */
  clientTs?: number;
  /**
   * The write's mutation id, unique among the user's writes (at most
   * {@link MAX_MUTATION_ID_LENGTH} characters; `@truss/client` sends 32 random
   * hex digits). The server commits a mutation once: sending it again answers
   * with the version the first commit made, `duplicate: true`.
   */
  mutationId?: string;
  /**
   * How long ago the change was made, in ms by the client's own clock (so the
   * two clocks need not agree). The server refuses a mutation older than the
   * window it remembers mutation ids for (`MUTATION_EXPIRED`) instead of
   * risking a second commit. Default 0.
   */
  mutationAgeMs?: number;
  /**
   * Changes this writer made on top of `baseVersion` in earlier writes that
   * are committed now (its outbox's writes to the same document, made
   * before this one). The resolver compares against the base with these
   * applied, so a writer's own queued edits never conflict with each other,
   * while others' edits since the base still do.
   */
  baseChanges?: DocumentData;
}

/** The longest mutation id a client may send. */
export const MAX_MUTATION_ID_LENGTH = 128;

/** The outcome of a `document:update`, in its ack. */
export type DocumentUpdateResult =
  | {
      /**
       * `applied` on the base version, `merged` by the resolver into a newer
       * one. A repeated mutation answers `applied`, with `duplicate: true`.
       */
      status: "applied" | "merged";
      /**
       * The committed version. For a repeated mutation, the version its first
       * commit made, or the latest when that one is no longer in the history.
       */
      document: DocumentVersion;
      /** Set when this mutation id had been committed before: nothing new was committed. */
      duplicate?: true;
    }
  | { status: "conflict"; current: DocumentVersion; conflicts: FieldConflict[] };

/** Payload of `topic:dropped`: the server ended one subscription of this socket. */
export interface TopicDropped {
  /** The topic the socket no longer receives. */
  topic: string;
  /**
   * Why: `FORBIDDEN` when a refreshed token no longer passes the policy,
   * `ACCESS_REVOKED` when the application revoked it (`engine.unsubscribeUser`).
   */
  error: ErrorPayload;
}

/** Payload of `document:dropped`: the server stopped sending a watched document's updates to this socket. */
export interface DocumentDropped {
  /** The document's kind. */
  type: string;
  /** The document's id. */
  id: string;
  /** Why, as in {@link TopicDropped}. */
  error: ErrorPayload;
}

/** The stream of a company's broadcasts (`toCompany`); a topic's stream is `topic:` and the topic name. */
export const COMPANY_STREAM = "company";

/** The stream name of a topic's broadcasts. */
export const topicStream = (topic: string): string => `topic:${topic}`;

/** The topic a stream name carries (the inverse of {@link topicStream}), or `null` for the company's stream or any other name. */
export function topicOfStream(stream: string): string | null {
  return stream.startsWith("topic:") ? stream.slice("topic:".length) : null;
}

/**
 * The third argument of a topic broadcast that has no place in its stream
 * (sent `volatile`, or live only because the store could not keep it): the
 * stream it came through, so a client can tell topics' events apart. A
 * broadcast with no third argument is the company's.
 */
export interface StreamLabel {
  /** `topic:<name>`. */
  stream: string;
}

/**
 * Where a broadcast sits in its stream: the third argument of every company
 * and topic broadcast that was stored (volatile topic ones carry a
 * {@link StreamLabel}, volatile company ones nothing). Offsets
 * grow by one per message within an epoch; a new epoch means the stream's
 * history was lost and offsets started again.
 */
export interface StreamPosition {
  /** `company`, or `topic:<name>`. */
  stream: string;
  /** The stream's epoch. */
  epoch: string;
  /** The message's offset in that epoch. */
  offset: number;
}

/**
 * Where a stream stood when a socket started receiving it live: sent as
 * `stream:start` for the company's stream right after every connection, and
 * in the `topic:subscribe` ack for the topic's stream. Every message after
 * `top` reaches the socket live or can be read with `stream:read`; messages
 * up to `top` came before it. A device with no position of its own starts
 * here, never at whichever live message happens to arrive first: with
 * several nodes, a later offset published on the device's own node can
 * arrive before an earlier one relayed from another.
 */
export interface StreamStart {
  /** `company`, or `topic:<name>`. */
  stream: string;
  /**
   * The stream's epoch; `null` when the server could not read its store (a
   * store outage): the client then starts at the first message it receives.
   */
  epoch: string | null;
  /** The last offset stored before the socket joined (0 for an empty stream, or when `epoch` is `null`). */
  top: number;
}

/** Why a stream's gap could not be replayed: the app should refetch that state. */
export const RESYNC_REASONS = [
  /** The missed messages were dropped by the stream's size cap. */
  "HISTORY_TRIMMED",
  /** The missed messages were older than the stream's TTL. */
  "HISTORY_EXPIRED",
  /** The stream's history was lost (a store restarted empty); offsets started again. */
  "EPOCH_CHANGED",
  /** More messages were missed than the server replays at once (`recovery.maxReplay`). */
  "TOO_MANY_MISSED",
] as const;

/** One of {@link RESYNC_REASONS}. */
export type ResyncReason = (typeof RESYNC_REASONS)[number];

/** A stored broadcast, as `stream:read` returns it. */
export interface StreamMessage {
  /** Its offset in the stream's epoch. */
  offset: number;
  /** The application event. */
  event: string;
  /** The event's data. */
  data: unknown;
  /** When it was broadcast, epoch ms. */
  ts: number;
}

/**
 * The answer to `stream:read`: the messages after the asked offset, or a
 * resync when they cannot all be given. `top` is the stream's last offset;
 * read again after the last entry until it is reached.
 */
export type StreamReadResult =
  | { epoch: string; top: number; entries: StreamMessage[]; resync: null }
  | { epoch: string; top: number; entries: []; resync: { reason: ResyncReason; message: string } };

/** Events the server sends to clients. */
export interface TrussServerEvents {
  "presence:update": (update: PresenceUpdate) => void;
  "presence:updates": (batch: PresenceUpdates) => void;
  "document:updated": (update: DocumentUpdatedPayload) => void;
  "inbox:message": (message: InboxMessage) => void;
  /** Who this connection is (sent first, on every connection). */
  "auth:session": (session: AuthSession) => void;
  "auth:expiring": (notice: AuthExpiring) => void;
  "topic:dropped": (notice: TopicDropped) => void;
  "document:dropped": (notice: DocumentDropped) => void;
  /** Where the company's stream stood when this connection joined it; sent once per connection. */
  "stream:start": (start: StreamStart) => void;
  /** Members of a scope this connection joined came, changed their state or went: one scope's changes of one short window, together. */
  "presence:changes": (batch: ScopedPresenceChanges) => void;
  error: (error: ErrorPayload) => void;
}

/** Events clients send to the server; each takes an ack callback. */
export interface TrussClientEvents {
  /**
   * Renews the connection's credential. Every subscription is authorized
   * again with it; those the policy now refuses are ended (each with a
   * `topic:dropped` or `document:dropped`) and listed in `dropped`.
   */
  "auth:refresh": (
    request: { token: string },
    ack: (result: Ack<{ expiresAt: number | null; dropped: { topics: string[]; documents: Array<{ type: string; id: string }> } }>) => void,
  ) => void;
  "inbox:ack": (request: { ids: string[] }, ack: (result: Ack) => void) => void;
  /**
   * Lists the company's online users. `follow: true` also starts sending this
   * socket `presence:update` / `presence:updates` (until it disconnects or
   * sends `follow: false`); a socket that never follows hears none.
   */
  "presence:list": (request: { follow?: boolean }, ack: (result: Ack<{ users: PresenceUser[] }>) => void) => void;
  "document:get": (request: { type: string; id: string }, ack: (result: Ack<{ document: DocumentVersion }>) => void) => void;
  "document:update": (request: DocumentUpdateRequest, ack: (result: Ack<DocumentUpdateResult>) => void) => void;
  "document:history": (
    request: { type: string; id: string; limit?: number },
    ack: (result: Ack<{ versions: DocumentVersion[] }>) => void,
  ) => void;
  "document:rollback": (
    request: { type: string; id: string; toVersion: number },
    ack: (result: Ack<{ document: DocumentVersion }>) => void,
  ) => void;
  /**
   * Reads a document and, once the policy allowed the read, sends this socket
   * its `document:updated` from then on. The ack carries the latest version,
   * or `document: null` when it does not exist yet (it is watched anyway).
   */
  "document:watch": (request: { type: string; id: string }, ack: (result: Ack<{ document: DocumentVersion | null }>) => void) => void;
  /** Stops a watch; answers `ok` even when the document was not watched. */
  "document:unwatch": (request: { type: string; id: string }, ack: (result: Ack) => void) => void;
  /** Subscribes this socket to a topic of its company once the policy allowed it. Idempotent. */
  "topic:subscribe": (request: { topic: string }, ack: (result: Ack<{ topic: string; start: StreamStart }>) => void) => void;
  /** Ends a subscription; answers `ok` even when the socket was not subscribed. */
  "topic:unsubscribe": (request: { topic: string }, ack: (result: Ack) => void) => void;
  /**
   * Reads a stream's messages after `after` in `epoch`: the company's stream,
   * or a topic this socket is subscribed to. A page holds at most 200.
   * `until` (optional) is the last offset the reader needs, for filling a
   * hole in live delivery: only the messages up to it count against
   * `recovery.maxReplay`.
   */
  "stream:read": (request: { stream: string; epoch: string; after: number; until?: number }, ack: (result: Ack<StreamReadResult>) => void) => void;
  /**
   * Joins the presence of a scope this socket holds (a subscribed topic, a
   * watched document) with a state, once the policy allowed `presence:join`;
   * joining again replaces the state. The ack lists the scope's members, this
   * one included.
   */
  "presence:join": (request: { scope: PresenceScope; state: unknown }, ack: (result: Ack<ScopedPresenceListing>) => void) => void;
  /** Replaces this socket's state in a scope it joined; the others hear it coalesced (at most about ten a second). */
  "presence:set": (request: { scope: PresenceScope; state: unknown }, ack: (result: Ack) => void) => void;
  /** Leaves a scope's presence; answers `ok` also when the socket was not in it. */
  "presence:leave": (request: { scope: PresenceScope }, ack: (result: Ack) => void) => void;
  /** Lists a scope's members without joining, once the policy allowed `presence:read`; the socket must hold the scope. */
  "presence:members": (request: { scope: PresenceScope }, ack: (result: Ack<ScopedPresenceListing>) => void) => void;
}
