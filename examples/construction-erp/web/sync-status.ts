import type { SyncState, TrussClient } from "@truss/client";
import type { ErpCatalog } from "../src/catalog.js";

/**
 * What the pill in the top bar says, from the client's sync state
 * (`client.sync`, `client.onSync`):
 * - `in sync`: connected, caught up, nothing waiting;
 * - `syncing…`: connected, and still sending queued changes or catching up
 *   on what was missed;
 * - `offline · 2 changes waiting`: the server cannot be reached (the browser
 *   is offline, or the connection dropped); saved changes wait on this device;
 * - `connecting…`: the first connection of this page, with the network up;
 * - `disconnected`: the client stopped for good (access revoked).
 */
export type SyncLabel = "in-sync" | "syncing" | "offline" | "connecting" | "closed";

/** The label and text for a state; `online` is the browser's `navigator.onLine`. */
export function describeSync(state: SyncState, online: boolean): { label: SyncLabel; text: string } {
  const { status, pendingWrites } = state;
  const waiting = pendingWrites === 0 ? "" : ` · ${pendingWrites} change${pendingWrites === 1 ? "" : "s"} waiting`;
  if (status === "closed") return { label: "closed", text: `disconnected${waiting}` };
  if (status === "connected") return state.inSync ? { label: "in-sync", text: "in sync" } : { label: "syncing", text: "syncing…" };
  // Before the first connection with the network up, it is too early to say "offline", unless something already waits.
  if (status === "connecting" && online && pendingWrites === 0) return { label: "connecting", text: "connecting…" };
  return { label: "offline", text: `offline${waiting}` };
}

/**
 * Keeps `element` showing the client's sync state. Its attributes are for
 * styles and tests: `data-status` is the connection's status
 * (`connected`, `reconnecting`…), `data-sync` the label above and
 * `data-pending` the number of changes waiting in the outbox.
 */
export function showSyncStatus(client: TrussClient<ErpCatalog>, element: HTMLElement): void {
  const render = () => {
    const state = client.sync;
    const { label, text } = describeSync(state, navigator.onLine);
    element.dataset.status = state.status;
    element.dataset.sync = label;
    element.dataset.pending = String(state.pendingWrites);
    element.textContent = text;
    const doing = [
      state.pendingWrites > 0 ? `sending ${state.pendingWrites} waiting change${state.pendingWrites === 1 ? "" : "s"}` : "",
      state.recovering ? "catching up on updates missed while away" : "",
    ].filter(Boolean);
    element.title =
      label === "offline" ? "Changes you save are kept on this device and sent, once each, when the connection is back." : label === "syncing" ? `Connected; ${doing.join(" and ")}.` : "";
  };
  render();
  client.onSync(render);
  addEventListener("online", render);
  addEventListener("offline", render);
}
