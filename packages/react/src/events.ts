import { useEffect, useRef } from "react";
import { useTrussClient } from "./context.js";
import type { EventHandler, EventHandlers, ServerEvent } from "./register.js";

/**
 * Handles server event `event` while the component is mounted, as
 * `client.on` does: company and topic broadcasts, and inbox messages (then
 * the message is acknowledged once the handler settles). The latest
 * `handler` is always the one called, and a new handler identity on each
 * render does not subscribe again.
 *
 * @example
 * ```tsx
 * useEvent("expense:approved", (expense) => toast(`Expense ${expense.id} approved`));
 * ```
 */
export function useEvent<E extends ServerEvent>(event: E, handler: EventHandler<E>): void {
  useEventHandlers({ [event]: handler } as EventHandlers);
}

/**
 * Handles each event of `handlers` while mounted, calling the handler of
 * the latest render; subscribes again only when the client, the topic or
 * the set of events changes. With `topic`, only events that came through
 * that topic's stream are handled (`client.onTopic`).
 */
export function useEventHandlers(handlers: EventHandlers | undefined, topic?: string): void {
  const client = useTrussClient();
  const latest = useRef(handlers);
  useEffect(() => {
    latest.current = handlers;
  });
  const events = Object.keys(handlers ?? {}).sort().join("\n");
  useEffect(() => {
    if (!client || events === "") return;
    const handle =
      (event: string) =>
      (data: unknown, message?: unknown): void | Promise<void> =>
        (latest.current?.[event as ServerEvent] as ((data: unknown, message?: unknown) => void | Promise<void>) | undefined)?.(data, message);
    const stops = events
      .split("\n")
      .map((event) => (topic === undefined ? client.on(event as ServerEvent, handle(event)) : client.onTopic(topic, event as ServerEvent, handle(event))));
    return () => {
      for (const stop of stops) stop();
    };
  }, [client, events, topic]);
}
