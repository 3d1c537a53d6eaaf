/**
 * The live dashboard: logs in over REST, then opens one Truss connection
 * for the tab and hands it to each panel. Each panel subscribes to the
 * topics and watches the documents it shows; the server's policy decides
 * which ones this user may have.
 */
import { connect, localStorageDedupStore, type DroppedSubscription, type TrussClientError } from "@truss/client";
import type { ErpCatalog } from "../src/catalog.js";
import type { DemoLogin } from "../src/seed.js";
import { createApi, type ApiError } from "./api.js";
import { Directory, type DashboardContext } from "./context.js";
import { byId, h, toast } from "./dom.js";
import { mountEditor } from "./panels/editor.js";
import { mountExpenses } from "./panels/expenses.js";
import { mountNotifications } from "./panels/notifications.js";
import { mountPresence } from "./panels/presence.js";
import { mountProjects } from "./panels/projects.js";
import { mountStock } from "./panels/stock.js";
import { deviceId, logIn, logOut, storedSession, type Session } from "./session.js";

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
  const client = connect<ErpCatalog>(location.origin, {
    token: session.token,
    deviceId: device,
    // Per tab, like the device id: each tab is a device with its own inbox cursor.
    dedupStore: localStorageDedupStore(`truss:inbox:${session.user.companyId}:${session.user.id}:${device}`, 1000, sessionStorage),
  });
  const status = byId("connection-status");
  client.onStatus((next, change) => {
    status.dataset.status = next;
    status.textContent = next;
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
    status.textContent = recovering ? "catching up…" : client.status;
    if (!recovering && reconnected) toast("Caught up after reconnect.");
    if (!recovering) reconnected = false;
  });

  const api = createApi(session.token);
  const context: DashboardContext = { client, api, session, directory: new Directory() };
  // Every panel registers its listeners now, before any await, so none misses the inbox replay.
  const live = [mountProjects(context), mountPresence(context), mountNotifications(context), mountExpenses(context), mountStock(context), mountEditor(context)];
  void context.directory.load(api);
  // Set once every panel holds its subscriptions, so a test knows updates will reach this tab.
  void Promise.allSettled(live).then(() => (document.body.dataset.live = "true"));

  byId("logout").addEventListener("click", () => {
    client.close();
    logOut();
    location.reload();
  });
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

const session = storedSession();
if (session) showDashboard(session);
else showLogin();
