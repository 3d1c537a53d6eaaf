import type { Namespace } from "socket.io";
import type { ConflictResolver } from "../documents/resolver.js";
import type { DocumentStore } from "../documents/store.js";
import type { InboxStore } from "../inbox/store.js";
import type { PresenceStore } from "../presence/store.js";
import type { MetricsRegistry } from "./metrics.js";
import type { Logger } from "./options.js";

/** The stores an engine runs on, by the name used in health and errors. */
export interface EngineStores {
  presence: PresenceStore;
  inbox: InboxStore;
  documents: DocumentStore;
}

/** What the engine's services share. */
export interface EngineContext {
  /** The namespace once attached or bound; throws before. */
  namespace(): Namespace;
  readonly stores: EngineStores;
  readonly resolver: ConflictResolver;
  readonly metrics: MetricsRegistry;
  readonly logger: Logger;
}

/** The room of a company: every socket of its users, on every node. */
export const companyRoom = (companyId: string): string => `company:${companyId}`;
/**
 * The room of one user of one company: every device of theirs, on every node.
 * The company id is length-prefixed, so no pair of ids can name another pair's room.
 */
export const userRoom = (companyId: string, userId: string): string => `user:${companyId.length}:${companyId}:${userId}`;

/** A map key for one user of one company, unambiguous for any ids. */
export const userKeyOf = (user: { companyId: string; userId: string }): string => JSON.stringify([user.companyId, user.userId]);
