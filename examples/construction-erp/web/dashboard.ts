/**
 * The live dashboard: logs in over REST, then opens one Truss connection
 * for the tab and hands it to each panel.
 */
import { connect, localStorageDedupStore, type TrussClientError } from "@truss/client";
import type { ErpCatalog } from "../src/catalog.js";
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
  void createApi()<Array<{ email: string; password: string; name: string; role: string; company: string }>>("/demo-logins").then(
    (logins) =>
      byId("demo-logins").replaceChildren(
        ...logins.map((login) => {
          const button = h("button", { type: "button", class: "ghost", "data-email": login.email }, `${login.name} `, h("span", { class: "role" }, `${login.role}, ${login.company}`));
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
  byId("company-name").textContent = session.company.name;
  byId("user-name").textContent = `${session.user.name} · ${session.user.title}`;

  const device = deviceId();
  const client = connect<ErpCatalog>(location.origin, {
    token: session.token,
    deviceId: device,
    // Per tab, like the device id: each tab is a device with its own inbox cursor.
    dedupStore: localStorageDedupStore(`truss:inbox:${session.user.companyId}:${session.user.id}:${device}`, 1000, sessionStorage),
  });
  const status = byId("connection-status");
  client.onStatus((next) => {
    status.dataset.status = next;
    status.textContent = next;
  });
  client.onError((error: TrussClientError) => {
    if (SESSION_ENDED.has(error.code)) {
      logOut();
      location.reload();
    } else if (error.code !== "CONNECTION_FAILED") toast(error.message);
  });

  const api = createApi(session.token);
  const context: DashboardContext = { client, api, session, directory: new Directory() };
  // Every panel registers its listeners now, before any await, so none misses the inbox replay.
  mountProjects(context);
  mountPresence(context);
  mountNotifications(context);
  mountExpenses(context);
  mountStock(context);
  mountEditor(context);
  void context.directory.load(api);

  byId("logout").addEventListener("click", () => {
    client.close();
    logOut();
    location.reload();
  });
}

const session = storedSession();
if (session) showDashboard(session);
else showLogin();
