import type { SentNotification } from "../../src/data/index.js";
import type { DashboardContext } from "../context.js";
import { byId, h, time } from "../dom.js";

/** How often the list is read again while the page is visible. */
const REFRESH_MS = 5000;

const VERB = { email: "e-mailed to", push: "pushed to" } as const;

/**
 * What reached people another way because none of their devices took a
 * message in time: "e-mailed to Chloe Park, 09:42: Expense rejected". A
 * manager sees the company's, everyone else their own. The rows are
 * written by the server's undelivered hook, a minute or so after the
 * message, so the list is read again every few seconds while the page is
 * visible.
 */
export function mountSentNotifications({ api, session }: DashboardContext): void {
  const list = byId<HTMLUListElement>("sent-notifications");
  const render = (rows: SentNotification[]) => {
    if (rows.length === 0) {
      list.replaceChildren(h("li", { class: "empty" }, "Nothing sent: every message reached a device in time."));
      return;
    }
    list.replaceChildren(
      ...rows.map((row) => {
        const who = row.userId === session.user.id ? "you" : row.userName;
        return h("li", { "data-channel": row.channel, "data-message-id": row.messageId }, `${VERB[row.channel]} ${who}, ${time(row.sentAt)}: `, h("strong", {}, row.summary));
      }),
    );
  };
  const load = () => {
    if (document.visibilityState !== "visible") return;
    api<SentNotification[]>("/notifications-sent").then(render, () => undefined);
  };
  load();
  setInterval(load, REFRESH_MS);
  document.addEventListener("visibilitychange", load);
}
