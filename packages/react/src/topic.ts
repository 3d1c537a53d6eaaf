import { useEventHandlers } from "./events.js";
import type { EventHandlers } from "./register.js";
import type { SubscriptionState } from "./shared-subscriptions.js";
import { useSharedSubscription } from "./use-shared.js";

/**
 * Subscribes to a topic of the user's company (`project:p-17`) while the
 * component is mounted, and returns where the subscription stands:
 * `pending`, `active`, `refused` (`error.code` says why: `FORBIDDEN`,
 * `TOO_MANY_SUBSCRIPTIONS`, `INVALID_PAYLOAD`…) or `dropped` (the server
 * ended it: `ACCESS_REVOKED`, or `FORBIDDEN` after a token refresh). None of
 * them throws.
 *
 * Components on the same topic share one subscription: the first one to
 * mount subscribes, the last one to unmount unsubscribes. `handlers` are
 * called like {@link useEvent}'s, while mounted, but only for events sent to
 * this topic (stored or volatile): the same event sent to another topic, to
 * the company or through the inbox does not reach them.
 *
 * @example
 * ```tsx
 * const feed = useTopic("project:tower-b", { "site-report:filed": (report) => append(report) });
 * if (feed.status === "refused") return <p>No access to this project ({feed.error.code}).</p>;
 * ```
 */
export function useTopic(topic: string, handlers?: EventHandlers): SubscriptionState {
  const state = useSharedSubscription("topics", topic);
  useEventHandlers(handlers, topic);
  return state;
}
