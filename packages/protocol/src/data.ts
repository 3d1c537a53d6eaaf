/** A document's fields: a flat-or-nested JSON object. */
export type DocumentData = Record<string, unknown>;

/** One committed version of a document. */
export interface DocumentVersion<TData extends DocumentData = DocumentData> {
  /** The document's kind. */
  type: string;
  /** The document's id. */
  id: string;
  /** 1 for the first commit, then +1 per commit. */
  version: number;
  /** The full document at this version. */
  data: TData;
  /** When this version was committed, epoch ms. */
  updatedAt: number;
  /** The user who committed it, or `null` for a server-side write. */
  updatedBy: string | null;
}

/** One field two writers changed differently. */
export interface FieldConflict {
  /** The top-level field name. */
  field: string;
  /** Its value at the writer's base version (`undefined` when that version is gone). */
  base: unknown;
  /** Its value in the latest committed version. */
  current: unknown;
  /** The value the writer sent. */
  incoming: unknown;
}

/** A message in a user's inbox, as delivered in `inbox:message`. */
export interface InboxMessage<TData = unknown> {
  /**
   * Unique within the user's inbox and increasing in append order, in the form
   * `<epoch ms>-<sequence>` (a Redis Stream id). Compare with `compareInboxIds`.
   */
  id: string;
  /** The application event name, e.g. `expense:approved`. */
  event: string;
  /** The event's payload, JSON-serialisable. */
  data: TData;
  /** When the message was appended, epoch ms. */
  ts: number;
}

/** One connected device of a user, as the presence store holds it. */
export interface PresenceDevice {
  /** The device id from the principal. */
  deviceId: string;
  /** When this device came online, epoch ms. */
  connectedAt: number;
  /** When this device was last heartbeated, epoch ms. */
  lastSeen: number;
}

/** A user who is online, with every device that holds them online. */
export interface PresenceUser {
  /** The user's id. */
  userId: string;
  /** The devices currently online, oldest first. At least one. */
  devices: PresenceDevice[];
}

