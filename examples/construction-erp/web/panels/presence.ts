import type { PresenceUser } from "@truss/client";
import type { DashboardContext } from "../context.js";
import { byId, h, time } from "../dom.js";
import { deviceId } from "../session.js";

/**
 * Who in the company is online, with each of their devices (one per browser
 * tab or phone). The client refetches the list whenever someone's first
 * device connects or last device leaves.
 */
export function mountPresence({ client, session, directory }: DashboardContext): void {
  const list = byId<HTMLUListElement>("presence");
  const thisDevice = deviceId();
  let users: PresenceUser[] = [];

  const render = () => {
    if (users.length === 0) {
      list.replaceChildren(h("li", { class: "empty" }, "Nobody is online."));
      return;
    }
    list.replaceChildren(
      ...users.map((user) => {
        const person = directory.get(user.userId);
        const name = directory.nameOf(user.userId);
        const initials = name.split(/\s+/).map((part) => part[0] ?? "").join("").slice(0, 2).toUpperCase();
        const devices = user.devices.map((device) => `${device.deviceId}${device.deviceId === thisDevice ? " (this tab)" : ""} since ${time(device.connectedAt)}`);
        return h(
          "li",
          { "data-user-id": user.userId },
          h("span", { class: "avatar", "aria-hidden": "true" }, initials),
          h(
            "div",
            {},
            h("strong", {}, name),
            user.userId === session.user.id ? h("span", { class: "me-tag" }, " (you)") : null,
            person ? h("div", { class: "devices" }, person.title) : null,
            h("div", { class: "devices" }, `${user.devices.length} device${user.devices.length === 1 ? "" : "s"}: ${devices.join(", ")}`),
          ),
        );
      }),
    );
  };

  client.presence.subscribe((next) => {
    users = next;
    render();
  });
  directory.onChange(render);
}
