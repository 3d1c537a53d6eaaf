/**
 * The live dashboard: logs in over REST, then opens one Truss connection
 * for the tab and hands it to each panel. Each panel subscribes to the
 * topics and watches the documents it shows; the server's policy decides
 * which ones this user may have.
 *
 * It also works offline: a service worker (`/sw.js`) keeps the page's own
 * files for a reload without the network, panels render from what they
 * cached of the API, and the site report's saves and expense submissions
 * wait in the client's outbox (IndexedDB, per user) until the server
 * committed them, across reloads and closed tabs.
 */
import {
  connect,
  indexedDbOutboxStore,
  localStorageDedupStore,
  localStorageOutboxStore,
  type DroppedSubscription,
  type OutboxStore,
  type TrussClientError,
} from "@truss/client";
import type { ErpCatalog } from "../src/catalog.js";
import type { DemoLogin } from "../src/seed.js";
import { createApi, type ApiError } from "./api.js";
import { Directory, type DashboardContext } from "./context.js";
import { byId, h, toast } from "./dom.js";
import { isNetworkFailure, OfflineCache } from "./offline-cache.js";
import { askToResolve } from "./panels/conflict-dialog.js";
import { mountEditor } from "./panels/editor.js";
import { mountExpenses } from "./panels/expenses.js";
import { mountNotifications } from "./panels/notifications.js";
import { mountProjectPage } from "./panels/project-page.js";
import { mountPresence } from "./panels/presence.js";
import { mountProjects } from "./panels/projects.js";
import { mountSentNotifications } from "./panels/sent-notifications.js";
import { mountStock } from "./panels/stock.js";
import { mountPushToggle, unsubscribePush } from "./push.js";
import { deviceId, logIn, logOut, storedSession, type Session } from "./session.js";
import { showSyncStatus } from "./sync-status.js";

/** Application events that wait in the outbox while offline, like the site report's saves. */
const QUEUED_EVENTS = ["expense:submit"] as const;

/** Codes after which this token will never connect again: back to the login form. */
const SESSION_ENDED = new Set(["AUTH_TOKEN_EXPIRED", "AUTH_INVALID_TOKEN", "AUTH_MISSING_TOKEN", "AUTH_WRONG_ISSUER", "AUTH_WRONG_AUDIENCE"]);

function showLogin(): void {
  byId("login-view").hidden = false;
  const form = byId<HTMLFormElement>("login-form");
  const error = byId("login-error");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    error.textContent = "";
    logIn(String(data.get("email")), String(data.get("password"))).then(
      () => location.reload(),
      (failure: ApiError) => (error.textContent = failure.message),
    );
  });
  void createApi()<DemoLogin[]>("/demo-logins").then(
    (logins) =>
      byId("demo-logins").replaceChildren(
        ...logins.map((login) => {
          const scope = login.projects ? `, ${login.projects.join(", ")} only` : "";
          const button = h("button", { type: "button", class: "ghost", "data-email": login.email }, `${login.name} `, h("span", { class: "role" }, `${login.role}, ${login.company}${scope}`));
          button.addEventListener("click", () => {
            (form.elements.namedItem("email") as HTMLInputElement).value = login.email;
            (form.elements.namedItem("password") as HTMLInputElement).value = login.password;
            form.requestSubmit();
          });
          return h("li", {}, button);
        }),
      ),
    () => byId("demo-logins").closest(".demo-logins")?.remove(),
  );
}

function showDashboard(session: Session): void {
  byId("dashboard-view").hidden = false;
  byId("session").hidden = false;
  document.body.dataset.role = session.user.role;
  byId("company-name").textContent = session.company.name;
  byId("user-name").textContent = `${session.user.name} · ${session.user.title}`;
  byId("user-role").textContent = session.user.role;

  const device = deviceId();
  const companyUser = `${session.user.companyId}:${session.user.id}`;
  const cache = new OfflineCache(companyUser);
  const directory = new Directory(cache);
  const client = connect<ErpCatalog>(location.origin, {
    token: session.token,
    deviceId: device,
    // Per tab, like the device id: each tab is a device with its own inbox cursor.
    dedupStore: localStorageDedupStore(`truss:inbox:${companyUser}:${device}`, 1000, sessionStorage),
    outbox: {
      // Per user, not per tab: what a closed tab queued goes out from the user's next page, with their token.
      store: outboxStore(`erp-outbox:${companyUser}`),
      events: QUEUED_EVENTS,
    },
    // For every save, also those restored from an earlier page, whose own handler did not survive the reload.
    onConflict: (conflict) => askToResolve(conflict, (userId) => directory.nameOf(userId)),
  });
  showSyncStatus(client, byId("connection-status"));
  client.onStatus((next, change) => {
    // The server took this user's access away (removed from the company): it will not let the client back in.
    if (next === "closed" && change.reason && STOPPED_FOR_GOOD.has(change.reason.code)) showRevoked(session, change.reason.message);
  });
  client.onError((error: TrussClientError) => {
    if (SESSION_ENDED.has(error.code)) {
      logOut();
      location.reload();
    } else if (error.code !== "CONNECTION_FAILED" && !STOPPED_FOR_GOOD.has(error.code)) toast(error.message);
  });
  client.onDropped((drop) => showDropped(drop));
  // After a reconnect the client reads what this tab missed; say when that is done.
  let reconnected = false;
  client.onStatus((next, change) => {
    if (next === "connected" && change.previous === "reconnecting") reconnected = true;
  });
  client.onRecovering((recovering) => {
    if (!recovering && reconnected) toast("Caught up after reconnect.");
    if (!recovering) reconnected = false;
  });

  const api = createApi(session.token);
  const context: DashboardContext = { client, api, session, directory, cache };
  // Every panel registers its listeners now, before any await, so none misses the inbox replay.
  const live = [mountProjects(context), mountPresence(context), mountNotifications(context), mountExpenses(context), mountStock(context), mountEditor(context)];
  mountProjectPage(context);
  mountSentNotifications(context);
  mountPushToggle(api, device);
  loadDirectory(context);
  // Set once every panel holds its subscriptions, so a test knows updates will reach this tab.
  void Promise.allSettled(live).then(() => (document.body.dataset.live = "true"));

  byId("logout").addEventListener("click", () => {
    client.close();
    // The cached answers go; writes still waiting stay in the outbox and go out at this user's next login.
    cache.clear();
    // This browser stops getting the user's push notifications before the next person logs in here.
    void unsubscribePush(api).finally(() => {
      logOut();
      location.reload();
    });
  });
}

/** IndexedDB where the browser has it (it may not, e.g. some private modes), else Web Storage. */
function outboxStore(name: string): OutboxStore {
  return typeof indexedDB === "undefined" ? localStorageOutboxStore(name) : indexedDbOutboxStore(name);
}

/** Loads the company directory; offline, names come from the cache, and the list loads again on reconnection. */
function loadDirectory({ client, api, directory }: DashboardContext): void {
  let loaded = false;
  const load = () =>
    directory.load(api).then(
      () => void (loaded = true),
      (error: Error) => {
        if (!isNetworkFailure(error)) toast(`Could not load the company directory: ${error.message}`);
      },
    );
  void load();
  client.onStatus((status) => {
    if (status === "connected" && !loaded) void load();
  });
}

/**
 * Registers the service worker that keeps the page, its stylesheet and its
 * script for reloads without the network (`public/sw.js`). Once it is
 * active, `body[data-offline-ready]` is set.
 */
function registerShellCache(): void {
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker.register("/sw.js").catch((error: Error) => console.warn(`The dashboard will not reload offline: ${error.message}`));
  void navigator.serviceWorker.ready.then(() => (document.body.dataset.offlineReady = "true"));
}

/** Codes with which the server stopped this client for good: the user's access was taken away. */
const STOPPED_FOR_GOOD = new Set(["ACCESS_REVOKED", "FORBIDDEN"]);

/** Replaces the dashboard with the reason this user can no longer use it. */
function showRevoked(session: Session, reason: string): void {
  const banner = byId("access-banner");
  banner.replaceChildren(
    h("strong", {}, "Your access was revoked. "),
    `${reason} `,
    h("span", { class: "muted" }, `Nothing of ${session.company.name} updates here any more.`),
  );
  banner.hidden = false;
  banner.dataset.kind = "revoked";
  byId("dashboard-view").inert = true;
  byId("dashboard-view").classList.add("revoked");
}

/** Says that the server ended a subscription; the panel concerned stops showing what it covered. */
function showDropped(drop: DroppedSubscription): void {
  const what = drop.kind === "topic" ? `updates of ${drop.topic}` : `the ${drop.type} ${drop.id}`;
  toast(`You no longer receive ${what}: ${drop.error.message}`);
}

registerShellCache();
const session = storedSession();
if (session) showDashboard(session);
else showLogin();
