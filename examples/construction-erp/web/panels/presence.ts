import type { PresenceUser } from "@truss/client";
import { roleMay } from "../../src/policy.js";
import type { ApiError } from "../api.js";
import type { DashboardContext } from "../context.js";
import { byId, h, time, toast } from "../dom.js";
import { deviceId } from "../session.js";

/**
 * Who in the company is online, with each of their devices (one per browser
 * tab or phone). The client refetches the list whenever someone's first
 * device connects or last device leaves. A manager can remove a colleague
 * from the company here: the server disconnects every device of theirs.
 */
export function mountPresence({ client, api, session, directory }: DashboardContext): void {
  const list = byId<HTMLUListElement>("presence");
  const thisDevice = deviceId();
  const mayRemove = roleMay(session.user.role, "user:remove");
  let users: PresenceUser[] = [];

  /** Two clicks: "Remove", then "Remove Chloe Park?", so a slip does not lock someone out. */
  const removeButton = (userId: string, name: string) => {
    const button = h("button", { type: "button", class: "small ghost remove", "data-remove": userId }, "Remove");
    button.addEventListener("click", () => {
      if (button.dataset.armed !== "true") {
        button.dataset.armed = "true";
        button.textContent = `Remove ${name}?`;
        return;
      }
      button.disabled = true;
      api<{ name: string; disconnectedSockets: number }>(`/users/${userId}`, { method: "DELETE" }).then(
        (removed) => {
          toast(`Removed ${removed.name}; ${removed.disconnectedSockets} device${removed.disconnectedSockets === 1 ? "" : "s"} disconnected.`);
          void directory.load(api);
        },
        (error: ApiError) => {
          button.disabled = false;
          toast(error.message);
        },
      );
    });
    return button;
  };

  const render = () => {
    const offline = client.status === "reconnecting" || (client.status === "connecting" && !navigator.onLine);
    if (offline) {
      list.replaceChildren(h("li", { class: "empty" }, "You are offline; who is online shows again once connected."));
      return;
    }
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
            person ? h("div", { class: "devices" }, `${person.title} · ${person.role}`) : null,
            h("div", { class: "devices" }, `${user.devices.length} device${user.devices.length === 1 ? "" : "s"}: ${devices.join(", ")}`),
          ),
          mayRemove && user.userId !== session.user.id ? removeButton(user.userId, name) : null,
        );
      }),
    );
  };

  client.presence.subscribe((next) => {
    users = next;
    render();
  });
  directory.onChange(render);
  client.onStatus(render);
  render();
}
