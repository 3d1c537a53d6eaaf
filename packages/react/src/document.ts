import { useCallback, useMemo, useState, useSyncExternalStore } from "react";
import {
  isTrussClientError,
  TrussClientError,
  type DocumentData,
  type DocumentUpdateOptions,
  type DocumentUpdateOutcome,
  type FieldConflict,
  type TrussClient,
} from "@truss/client";
import { useTrussClient } from "./context.js";
import type { DocumentRef } from "./shares.js";
import { useSharedSubscription } from "./use-shared.js";

/** What {@link useDocument} returns. */
export interface DocumentState<T extends DocumentData> {
  /** The latest version's data the client holds; `null` while loading, and when the document does not exist or cannot be read. */
  document: T | null;
  /** The version of `document`; `null` with it. */
  version: number | null;
  /**
   * - `loading`: the watch is not answered yet (or the client is offline, or not made yet);
   * - `ready`: `document` is the latest version the client heard of;
   * - `missing`: the document does not exist yet (the first `update` creates it);
   * - `refused`: the server would not let this user read it (`error`: `FORBIDDEN`, `NOT_FOUND`…);
   * - `dropped`: the server stopped sending its updates (`error`: `ACCESS_REVOKED`…).
   *
   * An answer that may pass (`TIMEOUT`, `STORE_UNAVAILABLE`…) is asked again, with backoff: `loading` meanwhile.
   */
  status: "loading" | "ready" | "missing" | "refused" | "dropped";
  /**
   * Why, when `refused` or `dropped`. Otherwise the refusal of this
   * component's last `update` of this document (`FORBIDDEN`,
   * `DOCUMENT_TOO_LARGE`…), until an update is accepted; `null` if none.
   */
  error: TrussClientError | null;
  /**
   * `client.documents.update` for this document: through the outbox, so an
   * edit made offline waits and commits once when the network is back. The
   * hook's `document` moves when the server committed it. Resolves with the
   * outcome; rejects as `documents.update` does, the refusal also going to
   * `error`: handle the rejection (`.catch`) where you do not await it.
   */
  update(changes: Partial<T> | DocumentData, options?: DocumentUpdateOptions): Promise<DocumentUpdateOutcome>;
  /** The fields the last `update` from this component conflicted on (nobody settled them); empty otherwise. */
  conflicts: readonly FieldConflict[];
}

const NO_CONFLICTS: readonly FieldConflict[] = Object.freeze([]);

/** What this component's last `update` came to, and on which client and document it was made. */
interface LastUpdate {
  client: TrussClient<any>;
  ref: DocumentRef;
  conflicts: readonly FieldConflict[];
  error: TrussClientError | null;
}

/**
 * Watches a document while the component is mounted and returns the
 * version the client holds of it, read straight from the client
 * (`client.documents.snapshot`, through `useSyncExternalStore`): one
 * source of truth, no copy that drifts. A commit by anyone re-renders the
 * components that show this document, and no others. Components on the same
 * document share one watch.
 *
 * @example
 * ```tsx
 * const { document, status, update, conflicts } = useDocument<SiteReport>("site-report", reportId);
 * if (status === "loading") return <Spinner />;
 * // A refusal is also in `error`: nothing more to do with it here.
 * return <textarea value={document?.notes ?? ""} onChange={(event) => void update({ notes: event.target.value }).catch(() => undefined)} />;
 * ```
 */
export function useDocument<T extends DocumentData = DocumentData>(type: string, id: string): DocumentState<T> {
  const client = useTrussClient();
  const ref = useMemo(() => ({ type, id }), [type, id]);
  const watch = useSharedSubscription("documents", ref);
  const onSnapshot = useCallback(
    (onChange: () => void) => {
      if (!client) return () => undefined;
      return client.documents.onSnapshot((changed) => {
        if (changed.type === ref.type && changed.id === ref.id) onChange();
      });
    },
    [client, ref],
  );
  const snapshot = useSyncExternalStore(onSnapshot, () => client?.documents.snapshot(type, id), () => undefined);
  const [lastUpdate, setLastUpdate] = useState<LastUpdate | null>(null);
  // Another document, or another client (another user signed in), shows nothing of this one's.
  const last = lastUpdate?.client === client && lastUpdate.ref === ref ? lastUpdate : null;
  const update = useCallback(
    async (changes: Partial<T> | DocumentData, options?: DocumentUpdateOptions) => {
      if (!client) throw new TrussClientError("CLIENT_CLOSED", `There is no Truss client yet to update ${ref.type}/${ref.id}: a TrussProvider with a url connects after its first render.`);
      try {
        const outcome = await client.documents.update(ref.type, ref.id, changes as DocumentData, options);
        setLastUpdate({ client, ref, conflicts: outcome.status === "conflict" ? outcome.conflicts : NO_CONFLICTS, error: null });
        return outcome;
      } catch (error) {
        if (isTrussClientError(error)) setLastUpdate({ client, ref, conflicts: NO_CONFLICTS, error });
        throw error;
      }
    },
    [client, ref],
  );
  const status = snapshot ? "ready" : watch.status === "pending" ? "loading" : watch.status === "active" ? "missing" : watch.status;
  return {
    document: (snapshot?.data as T | undefined) ?? null,
    version: snapshot?.version ?? null,
    status,
    error: watch.error ?? last?.error ?? null,
    update,
    conflicts: last?.conflicts ?? NO_CONFLICTS,
  };
}
