import { useState } from "react";
import type { Notification } from "@truss/example-construction-erp/catalog";
import { useEvent } from "@truss/react";

/** The user's notifications (expense decisions, tasks, stock), including those sent while the phone was off. */
export function Notifications() {
  const [received, setReceived] = useState<Notification[]>([]);
  useEvent("notification:new", (notification) => setReceived((current) => [notification, ...current.filter((known) => known.id !== notification.id)].slice(0, 20)));
  return (
    <section className="card" id="notifications">
      <h2>Notifications</h2>
      {received.length === 0 ? <p className="muted">Nothing new.</p> : null}
      <ul>
        {received.map((notification) => (
          <li key={notification.id}>
            <strong>{notification.title}</strong> {notification.body}
          </li>
        ))}
      </ul>
    </section>
  );
}
