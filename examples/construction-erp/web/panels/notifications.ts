import type { Notification } from "../../src/catalog.js";
import type { DashboardContext } from "../context.js";
import { byId, flash, h, time } from "../dom.js";

interface Shown {
  notification: Notification;
  /** Whether it was queued while this device was offline and replayed on connect. */
  offline: boolean;
}

const KEEP = 30;

/**
 * The user's notifications. They come through the user's inbox
 * (`toUser`): messages sent while this device was offline are replayed when
 * it connects, in order, and marked as such. The client drops replays it has
 * already handled, so the list is kept in `sessionStorage` to survive a reload.
 */
export function mountNotifications({ client, session }: DashboardContext): void {
  const list = byId<HTMLUListElement>("notifications");
  const count = byId("notification-count");
  const storageKey = `erp:notifications:${session.user.id}`;
  const shown: Shown[] = readStored(storageKey);
  let connectedAt = Number.POSITIVE_INFINITY;

  const render = (fresh?: Shown) => {
    count.hidden = shown.length === 0;
    count.textContent = String(shown.length);
    if (shown.length === 0) {
      list.replaceChildren(h("li", { class: "empty" }, "Nothing yet."));
      return;
    }
    list.replaceChildren(
      ...shown.map((entry) => {
        const item = h(
          "li",
          { class: entry.offline ? "offline" : null, "data-kind": entry.notification.kind },
          h("div", { class: "title" }, entry.notification.title),
          h("div", {}, entry.notification.body),
          h("div", { class: "when" }, time(entry.notification.createdAt)),
        );
        if (entry === fresh) flash(item);
        return item;
      }),
    );
  };

  client.onStatus((status) => {
    if (status === "connected") connectedAt = Date.now();
  });
  client.on("notification:new", (notification, message) => {
    // Stored before this connection opened means it waited in the inbox. The
    // server's and the browser's clocks are compared, so a skewed client clock
    // can mislabel a message; the label is a hint, the delivery is what counts.
    const sentAt = message?.ts ?? notification.createdAt;
    const entry = { notification, offline: message !== undefined && sentAt < connectedAt };
    shown.unshift(entry);
    shown.splice(KEEP);
    sessionStorage.setItem(storageKey, JSON.stringify(shown));
    render(entry);
  });
  render();
}

function readStored(key: string): Shown[] {
  try {
    const stored = JSON.parse(sessionStorage.getItem(key) ?? "[]") as unknown;
    return Array.isArray(stored) ? (stored as Shown[]) : [];
  } catch {
    return [];
  }
}
