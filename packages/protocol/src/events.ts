import type { DocumentData, DocumentVersion, FieldConflict, InboxMessage, PresenceUser } from "./data.js";
import type { ErrorPayload } from "./errors.js";

/** Event names Truss itself uses; application events must not reuse them. */
export const PROTOCOL_EVENTS = {
  presenceUpdate: "presence:update",
  presenceUpdates: "presence:updates",
  documentUpdated: "document:updated",
  inboxMessage: "inbox:message",
  authExpiring: "auth:expiring",
  error: "error",
  authRefresh: "auth:refresh",
  inboxAck: "inbox:ack",
  presenceList: "presence:list",
  documentGet: "document:get",
  documentUpdate: "document:update",
  documentHistory: "document:history",
  documentRollback: "document:rollback",
} as const;

/** Every reserved event name, for quick membership checks. */
export const RESERVED_EVENTS: ReadonlySet<string> = new Set(Object.values(PROTOCOL_EVENTS));

/** An acknowledgement: success with a body, or a coded error. */
export type Ack<TBody extends object = object> = ({ ok: true } & TBody) | { ok: false; error: ErrorPayload };

/** Payload of `presence:update`, sent to the company room. */
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
}

/** Payload of `auth:expiring`. */
export interface AuthExpiring {
  /** When the connection's credential expires, epoch ms. */
  expiresAt: number;
  /** Milliseconds left until the server disconnects without an `auth:refresh`. */
  expiresInMs: number;
}

/** Payload of `document:updated`, sent to the writer's company (not the writer). */
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
}

/** The outcome of a `document:update`, in its ack. */
export type DocumentUpdateResult =
  | { status: "applied"; document: DocumentVersion }
  | { status: "merged"; document: DocumentVersion }
  | { status: "conflict"; current: DocumentVersion; conflicts: FieldConflict[] };

/** Events the server sends to clients. */
export interface TrussServerEvents {
  "presence:update": (update: PresenceUpdate) => void;
  "presence:updates": (batch: PresenceUpdates) => void;
  "document:updated": (update: DocumentUpdated) => void;
  "inbox:message": (message: InboxMessage) => void;
  "auth:expiring": (notice: AuthExpiring) => void;
  error: (error: ErrorPayload) => void;
}

/** Events clients send to the server; each takes an ack callback. */
export interface TrussClientEvents {
  "auth:refresh": (request: { token: string }, ack: (result: Ack<{ expiresAt: number | null }>) => void) => void;
  "inbox:ack": (request: { ids: string[] }, ack: (result: Ack) => void) => void;
  "presence:list": (request: Record<string, never>, ack: (result: Ack<{ users: PresenceUser[] }>) => void) => void;
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
}
