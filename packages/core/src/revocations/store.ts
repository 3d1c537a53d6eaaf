import { methodsOf } from "../kernel/contract.js";
import type { ErrorPayload } from "../kernel/errors.js";
import type { UserKey } from "../inbox/store.js";

/** What every revocation record says: whose access went, when, and what their clients are told. */
interface RevocationFields {
  /** The tenant. */
  companyId: string;
  /** The user within the tenant. */
  userId: string;
  /** The coded error the user's sockets are sent, and a refused handshake or subscribe answers with. */
  error: ErrorPayload;
  /** When the revocation was made, epoch ms (the revoking node's clock). */
  at: number;
  /** When the record may be forgotten, epoch ms: past it no token issued before `at` is still valid. */
  expiresAt: number;
}

/**
 * `engine.disconnectUser`: every session of the user that began before `at`
 * ends, and a token issued before `at` is refused at the handshake and on
 * `auth:refresh`.
 */
export interface DisconnectRevocation extends RevocationFields {
  kind: "disconnect";
}

/**
 * `engine.unsubscribeUser`: the topic is dropped from the user's sockets
 * whose token was issued before `at`, and such a token cannot subscribe to it
 * again.
 */
export interface UnsubscribeRevocation extends RevocationFields {
  kind: "unsubscribe";
  /** The topic taken away. */
  topic: string;
}

/** One revocation, as the engine keeps it so that every node applies it, even one that was cut off when it was made. */
export type RevocationRecord = DisconnectRevocation | UnsubscribeRevocation;

/** What {@link RevocationStore.since} read: records in the order they were added, and where to read on from. */
export interface RevocationPage {
  /** Up to `limit` records added after the cursor, oldest first. */
  records: RevocationRecord[];
  /** The cursor to pass next time; opaque to the engine. */
  cursor: string;
}

/**
 * Where revocations outlive the message that carried them. The engine adds a
 * record on every `disconnectUser` and `unsubscribeUser`, reads a user's
 * records at every handshake and `auth:refresh`, and each node reads what
 * was added since it last looked, every few seconds and when its adapter
 * resubscribes, so a node that missed the adapter's message still applies
 * the revocation. Records are small and rare; a store keeps each one until
 * its `expiresAt` (or, for a bounded store, until its cap pushes it out).
 * Records are copied in and out: a caller changing a record after `add`, or
 * one that `forUser` or `since` handed it, changes nothing the store holds.
 */
export interface RevocationStore {
  /**
   * Keeps a record until its `expiresAt`. A user's newer record of the same
   * kind (and topic) replaces an older one in {@link forUser}; every record
   * is read once by {@link since}. Rejects (nothing kept) when the store is
   * unreachable.
   */
  add(record: RevocationRecord): Promise<void>;
  /**
   * The user's unexpired records, at most one per kind and topic (the one
   * with the latest `at`), in no particular order. Never another company's
   * or another user's, whatever characters the ids contain.
   */
  forUser(user: UserKey): Promise<RevocationRecord[]>;
  /**
   * Unexpired records added after `cursor`, oldest first, at most `limit`,
   * with the cursor to pass next. `null` reads from the first record kept.
   * A cursor the store cannot place (another store's, or one from before
   * the store lost its data) reads from the first record kept as well:
   * records may be read twice, never skipped.
   */
  since(cursor: string | null, limit: number): Promise<RevocationPage>;
  /** Rejects when the store cannot be reached; used by `engine.health()`. Optional. */
  ping?(): Promise<void>;
}

/** The methods every {@link RevocationStore} must have, checked when the engine is created. */
export const REVOCATION_STORE_METHODS = methodsOf<RevocationStore>({ add: true, forUser: true, since: true });

/**
 * How long a revocation is kept by default: 24 hours, the longest an access
 * token usually lives. Past it, a token issued before the revocation is
 * expired anyway. Set `revocationTiming.ttlMs` to your tokens' lifetime.
 */
export const DEFAULT_REVOCATION_TTL_MS = 24 * 60 * 60 * 1000;

/** The key that one user's records are replaced by: its kind, and for an unsubscribe the topic. */
export function revocationSlot(record: RevocationRecord): string {
  return record.kind === "disconnect" ? "disconnect" : `unsubscribe:${record.topic}`;
}

/**
 * Whether a value read back from a store is a well-formed record, for stores
 * that keep records serialised (a record that is not is skipped, never
 * applied half-read).
 */
export function isRevocationRecord(value: unknown): value is RevocationRecord {
  if (value === null || typeof value !== "object") return false;
  const record = value as Partial<Omit<UnsubscribeRevocation, "kind">> & { kind?: unknown };
  const fields =
    typeof record.companyId === "string" &&
    typeof record.userId === "string" &&
    typeof record.at === "number" &&
    typeof record.expiresAt === "number" &&
    typeof record.error?.code === "string" &&
    typeof record.error.message === "string";
  return fields && (record.kind === "disconnect" || (record.kind === "unsubscribe" && typeof record.topic === "string"));
}
