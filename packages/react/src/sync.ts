import { useCallback, useRef, useSyncExternalStore } from "react";
import type { ConnectionStatus, SyncState } from "@truss/client";
import { useTrussClient } from "./context.js";

/** What the hooks report before there is a client (a server-side render, a provider's first render). */
const NOT_CONNECTED: SyncState = Object.freeze({ status: "connecting", pendingWrites: 0, recovering: false, inSync: false });

/**
 * The client's {@link SyncState} (`status`, `pendingWrites`, `recovering`,
 * `inSync`): what an "offline · 2 changes waiting" or "syncing…" banner
 * shows. Re-renders only when one of them changes.
 *
 * @example
 * ```tsx
 * const { inSync, status, pendingWrites } = useSync();
 * if (!inSync) return <p>{status === "connected" ? "syncing…" : `offline · ${pendingWrites} waiting`}</p>;
 * ```
 */
export function useSync(): SyncState {
  const client = useTrussClient();
  const last = useRef(NOT_CONNECTED);
  const subscribe = useCallback((onChange: () => void) => client?.onSync(onChange) ?? (() => undefined), [client]);
  // `client.sync` is a new object each time: the one returned last is kept while it says the same.
  const read = () => {
    if (!client) return NOT_CONNECTED;
    const now = client.sync;
    const before = last.current;
    if (before.status === now.status && before.pendingWrites === now.pendingWrites && before.recovering === now.recovering) return before;
    last.current = now;
    return now;
  };
  return useSyncExternalStore(subscribe, read, () => NOT_CONNECTED);
}

/** The connection's status alone: `connecting`, `connected`, `reconnecting` or `closed`. */
export function useStatus(): ConnectionStatus {
  const client = useTrussClient();
  const subscribe = useCallback((onChange: () => void) => client?.onStatus(onChange) ?? (() => undefined), [client]);
  return useSyncExternalStore(subscribe, () => client?.status ?? "connecting", () => "connecting");
}
