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
 * the latest render; subscribes again only when the client or the set of
 * events changes.
 */
export function useEventHandlers(handlers: EventHandlers | undefined): void {
  const client = useTrussClient();
  const latest = useRef(handlers);
  useEffect(() => {
    latest.current = handlers;
  });
  const events = Object.keys(handlers ?? {}).sort().join("\n");
  useEffect(() => {
    if (!client || events === "") return;
    const stops = events.split("\n").map((event) =>
      client.on(event as ServerEvent, (data, message) => (latest.current?.[event as ServerEvent] as EventHandler<ServerEvent> | undefined)?.(data, message)),
    );
    return () => {
      for (const stop of stops) stop();
    };
  }, [client, events]);
}
