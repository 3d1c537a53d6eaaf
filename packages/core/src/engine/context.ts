import type { Namespace } from "socket.io";
import type { ConflictResolver } from "../documents/resolver.js";
import type { DocumentStore } from "../documents/store.js";
import { isTrussError, TrussError } from "../errors.js";
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

/**
 * Awaits a store call and codes its failure. A driver's error (a dropped
 * connection, a timeout, a refusal by the server) becomes `STORE_UNAVAILABLE`:
 * the operation was not confirmed. A programming error or a value the store
 * could not take (`TypeError`, `RangeError`, a failed clone) is a bug, not an
 * outage: it becomes `INTERNAL_ERROR`, so it neither tells clients to retry
 * nor counts as a store error.
 */
export async function storeCall<T>(ctx: Pick<EngineContext, "metrics" | "logger">, store: keyof EngineStores, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (isTrussError(error)) throw error;
    if (isBug(error)) {
      ctx.logger.error(`${store} store call failed`, { error: error instanceof Error ? error.stack : String(error) });
      throw new TrussError("INTERNAL_ERROR", `The ${store} store failed on the server; it has been logged.`, { cause: error });
    }
    ctx.metrics.inc("truss_store_errors_total", { store });
    const reason = error instanceof Error ? error.message : String(error);
    throw new TrussError("STORE_UNAVAILABLE", `The ${store} store is unavailable (${reason}); the operation was not confirmed. Retry later.`, {
      cause: error,
    });
  }
}

function isBug(error: unknown): boolean {
  return (
    error instanceof TypeError ||
    error instanceof RangeError ||
    error instanceof ReferenceError ||
    error instanceof SyntaxError ||
    (error instanceof Error && error.name === "DataCloneError")
  );
}
