import { useCallback, useMemo, useRef, useSyncExternalStore } from "react";
import type { PendingWrite } from "@truss/client";
import { useTrussClient } from "./context.js";

/** What {@link useOutbox} returns. */
export interface OutboxState {
  /** The writes waiting to be sent, oldest first (the one being sent included). */
  pending: readonly PendingWrite[];
  /** Drops a waiting write (`client.outbox.discard`); resolves whether there was one. */
  discard(mutationId: string): Promise<boolean>;
}

const NOTHING_PENDING: readonly PendingWrite[] = Object.freeze([]);

/**
 * The client's outbox: the writes made offline (or whose answer was lost)
 * that wait for the server, for a "2 changes waiting" list with a way to
 * drop one. Re-renders when a write is queued or leaves.
 */
export function useOutbox(): OutboxState {
  const client = useTrussClient();
  // `outbox.pending` is a new copy each time: a count of changes stands for it, and the list is read once per change.
  const changes = useRef(0);
  const subscribe = useCallback(
    (onChange: () => void) =>
      client?.outbox.onChange(() => {
        changes.current += 1;
        onChange();
      }) ?? (() => undefined),
    [client],
  );
  const version = useSyncExternalStore(subscribe, () => changes.current, () => 0);
  const pending = useMemo(() => (client && client.outbox.size > 0 ? client.outbox.pending : NOTHING_PENDING), [client, version]);
  const discard = useCallback((mutationId: string) => client?.outbox.discard(mutationId) ?? Promise.resolve(false), [client]);
  return { pending, discard };
}
