import { useCallback, useSyncExternalStore } from "react";
import { useTrussClient } from "./context.js";
import { sharedOf, type SharedRefs } from "./shares.js";
import { PENDING, type SubscriptionState } from "./shared-subscriptions.js";

/**
 * Holds a topic or a watched document, shared with the other components
 * on it, while mounted, and returns where it stands. `ref` must keep its
 * identity while it names the same subscription (memoize an object).
 */
export function useSharedSubscription<K extends keyof SharedRefs>(kind: K, ref: SharedRefs[K]): SubscriptionState {
  const client = useTrussClient();
  const subscribe = useCallback(
    (onChange: () => void) => {
      if (!client) return () => undefined;
      return sharedOf(client, kind).hold(ref, onChange).release;
    },
    [client, kind, ref],
  );
  const read = () => (client ? sharedOf(client, kind).state(ref) : PENDING);
  return useSyncExternalStore(subscribe, read, () => PENDING);
}
