import type { Namespace } from "socket.io";
import type { ConflictResolver } from "../documents/resolver.js";
import type { DocumentStore } from "../documents/store.js";
import { isTrussError, TrussError } from "../errors.js";
import type { Inbox } from "../inbox/store.js";
import type { PresenceStore } from "../presence/store.js";
import type { MetricsRegistry } from "./metrics.js";
import type { Logger } from "./options.js";

/** The stores an engine runs on, by the name used in health and errors. */
export interface EngineStores {
  presence: PresenceStore;
  inbox: Inbox;
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
/** The room of a user: every device of theirs, on every node. */
export const userRoom = (userId: string): string => `user:${userId}`;

/**
 * Awaits a store call, turning a failure that is not a deliberate TrussError
 * (a dropped connection, a timeout) into `STORE_UNAVAILABLE`, so callers and
 * clients learn the operation was not confirmed rather than seeing a driver's error.
 */
export async function storeCall<T>(store: keyof EngineStores, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (isTrussError(error)) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new TrussError("STORE_UNAVAILABLE", `The ${store} store is unavailable (${reason}); the operation was not confirmed. Retry later.`, {
      cause: error,
    });
  }
}
