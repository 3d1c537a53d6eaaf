import type { InventoryItem } from "../../src/catalog.js";
import { companyTopic, mayFollowFeed } from "../../src/topics.js";
import type { ApiError } from "../api.js";
import type { DashboardContext } from "../context.js";
import { byId, flash, h, time, toast } from "../dom.js";
import { cachedGet } from "../offline-cache.js";

const STEPS = [-5, -1, 10];

/**
 * Stock levels, for staff: the panel follows the `company:inventory` feed,
 * where every adjustment anyone in the company makes arrives as
 * `stock:updated`; falling to the reorder level raises `reorder:triggered`.
 * Subcontractors see no stock, so for them the panel stays hidden.
 *
 * @returns a promise that settles once the feed is subscribed.
 */
export function mountStock(context: DashboardContext): Promise<void> {
  const { client, api, session } = context;
  if (!mayFollowFeed(session.user.role, "inventory")) {
    byId("stock-card").hidden = true;
    return Promise.resolve();
  }
  const body = byId<HTMLTableSectionElement>("stock");
  const alerts = byId<HTMLUListElement>("reorders");
  const rows = new Map<string, HTMLTableRowElement>();

  const show = (item: InventoryItem, highlight: boolean) => {
    let row = rows.get(item.id);
    if (!row) {
      row = body.appendChild(h("tr", { "data-item-id": item.id }));
      rows.set(item.id, row);
    }
    const low = item.quantity <= item.reorderLevel;
    row.className = low ? "low" : "";
    row.replaceChildren(
      h("td", {}, item.name, h("span", { class: "sub" }, `${item.sku} · ${item.location}`)),
      h("td", { class: "qty" }, `${item.quantity} ${item.unit}`),
      h("td", {}, `${item.reorderLevel} ${item.unit}`),
      h("td", {}, h("div", { class: "steppers" }, ...STEPS.map((delta) => stepButton(item, delta)))),
    );
    if (highlight) flash(row);
  };

  const stepButton = (item: InventoryItem, delta: number) => {
    const button = h("button", { type: "button", class: "small ghost", "aria-label": `${delta > 0 ? "Add" : "Take"} ${Math.abs(delta)} ${item.name}` }, delta > 0 ? `+${delta}` : `−${-delta}`);
    button.addEventListener("click", () => {
      api<InventoryItem>(`/inventory/${item.id}/adjust`, { body: { delta, reason: "dashboard" } }).then(
        (updated) => show(updated, true),
        (error: ApiError) => toast(error.message),
      );
    });
    return button;
  };

  client.on("stock:updated", ({ item }) => show(item, true));
  client.on("item:added", (item) => show(item, true));
  client.on("reorder:triggered", ({ item, suggestedQuantity }) => {
    alerts.querySelector(".empty")?.remove();
    const alert = h("li", { "data-item-id": item.id }, `${time(Date.now())} Reorder ${item.name}: ${item.quantity} ${item.unit} left, order ${suggestedQuantity} ${item.unit}.`);
    alerts.prepend(alert);
    flash(alert);
  });
  const load = () => api<InventoryItem[]>("/inventory").then((items) => items.forEach((item) => show(item, false)));
  // Stock changes were missed and cannot be replayed: load the stock again.
  client.onResync(({ stream }) => {
    if (stream === `topic:${companyTopic("inventory")}`) void load();
  });
  // Offline, the stock this browser cached shows at once; the server's replaces it once reachable.
  void cachedGet<InventoryItem[]>(context, "/inventory", (items) => items.forEach((item) => show(item, false))).catch(() => undefined);
  return client.subscribe(companyTopic("inventory")).then(
    () => void (body.dataset.live = "true"),
    (error: Error) => toast(`No live stock updates: ${error.message}`),
  );
}
