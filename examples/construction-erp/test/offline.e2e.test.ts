import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { startTcpProxy, type TcpProxy } from "@truss/test-utils";
import type { Browser, BrowserContext, Locator, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { buildDashboard } from "../scripts/build.mjs";
import { PUBLIC_DIR } from "../src/paths.js";
import { ARTIFACTS, eventually, launchChromium, runBrowserTests, warnIfNoChromium } from "./browser.js";
import { startErp, type RunningErp } from "./helpers.js";

warnIfNoChromium("offline.e2e.test.ts");

const COMPANY = "northwind";
const REPORT = { type: "site-report", id: "riverside-daily" };
/** The longest any single step may take; going back online includes the client's reconnection. */
const STEP_TIMEOUT_MS = 15_000;

/** A user's browser: its own context (storage, service worker), one page. */
interface Browsing {
  context: BrowserContext;
  page: Page;
}

/**
 * The dashboard without the network, in Chromium. Alice's browser reaches
 * the ERP through a TCP proxy, so "offline" is real for every kind of
 * traffic: Playwright's `context.setOffline(true)` fails the page's HTTP
 * requests and fires the browser's `offline` event, but does not close an
 * open WebSocket nor stop a new one (microsoft/playwright#4910), so the
 * proxy also drops Alice's open connections and holds new ones unanswered
 * until she is back. Ben's browser talks to the ERP directly the whole time.
 */
describe.runIf(runBrowserTests)("the dashboard offline, in Chromium", () => {
  let erp: RunningErp;
  let proxy: TcpProxy;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const pageErrors: string[] = [];
  let alice: Browsing;
  let ben: Browsing;

  beforeAll(async () => {
    browser = await launchChromium();
    // Its own bundle folder: vitest runs the two browser test files in parallel.
    const bundleDir = await buildDashboard({ outdir: join(ARTIFACTS, "offline-bundle") });
    erp = await startErp({ assets: { publicDir: PUBLIC_DIR, bundleDir } });
    proxy = await startTcpProxy((erp.app.server.address() as AddressInfo).port);
    [alice, ben] = await Promise.all([logIn(proxy.url, "alice@northwind.test"), logIn(erp.url, "ben@northwind.test")]);
    // The service worker keeps the page's files once it is active: only then can Alice reload offline.
    await alice.page.locator('body[data-offline-ready="true"]').waitFor({ state: "attached" });
    await controlledByServiceWorker(alice.page);
  });

  // Each test starts with Alice online and caught up, whatever the one before it left behind.
  beforeEach(async () => {
    await alice.page.locator('#connection-status[data-sync="in-sync"]').waitFor();
  });

  afterEach(async () => {
    await aliceOnline();
  });

  afterAll(async () => {
    await Promise.allSettled(contexts.map((context) => context.close()));
    await browser?.close();
    await proxy?.close();
    await erp?.close();
  });

  /** A fresh browser context on `origin`, logged in through the login page, with the site report open and watched. */
  async function logIn(origin: string, email: string): Promise<Browsing> {
    const context = await browser.newContext({ viewport: { width: 1440, height: 1020 } });
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
    contexts.push(context);
    const page = await context.newPage();
    page.on("pageerror", (error) => pageErrors.push(`${email}: ${error.message}`));
    await page.goto(origin);
    await page.locator(`#demo-logins button[data-email="${email}"]`).click();
    await page.locator('#connection-status[data-status="connected"]').waitFor();
    await page.locator('body[data-live="true"]').waitFor({ state: "attached" });
    await page.locator("#report-picker").selectOption(REPORT.id);
    await page.locator(`#editor[data-document-id="${REPORT.id}"][data-ready="true"]`).waitFor({ state: "attached" });
    return { context, page };
  }

  /**
   * Waits until the service worker controls `page`. Its `clients.claim()`
   * normally takes the page that registered it at once; where Chromium has
   * not handed the page over within a few seconds (seen once on a loaded CI
   * machine, 15 s without a controller), a reload does, as for any page
   * loaded once the worker is active. The reload keeps the login and the
   * open report.
   */
  async function controlledByServiceWorker(page: Page): Promise<void> {
    const controlled = (timeout: number) => page.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, { timeout });
    if (await controlled(5000).then(() => true, () => false)) return;
    await page.reload();
    await page.locator('#connection-status[data-status="connected"]').waitFor();
    await page.locator(`#editor[data-document-id="${REPORT.id}"][data-ready="true"]`).waitFor({ state: "attached" });
    await controlled(STEP_TIMEOUT_MS);
  }

  /** Takes Alice's network away: the browser says offline, open connections drop, new ones hang. */
  async function aliceOffline(): Promise<void> {
    await alice.context.setOffline(true);
    proxy.hold();
    proxy.cut();
    await alice.page.locator('#connection-status[data-sync="offline"]').waitFor();
  }

  /** Gives it back. */
  async function aliceOnline(): Promise<void> {
    proxy.release();
    await alice.context.setOffline(false);
  }

  const status = ({ page }: Browsing): Locator => page.locator("#connection-status");
  /** Waits until Alice's status pill reads `text`. */
  const aliceStatusReads = (text: string) => eventually(() => status(alice).innerText(), STEP_TIMEOUT_MS).toBe(text);
  /** Waits for what `read` returns to pass the assertion chained on it (a page renders a moment after the event awaited). */
  const until = <T>(read: () => T | Promise<T>) => eventually(read, STEP_TIMEOUT_MS);
  const field = ({ page }: Browsing, name: string): Locator => page.locator(`#editor [name="${name}"]`);
  const history = () => erp.realtime.documents.history(COMPANY, REPORT.type, REPORT.id, 100);
  const expensesNamed = (description: string) =>
    erp.db!.prepare("SELECT id, submitted_by AS submittedBy, amount, mutation_id AS mutationId FROM expenses WHERE description = ?").all(description) as Array<{
      id: string;
      submittedBy: string;
      amount: number;
      mutationId: string | null;
    }>;
  const screenshot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

  test("Alice edits the report and submits an expense offline, reloads, comes back: each is committed once, and Ben sees the edit", async () => {
    const weather = "Heavy rain from 11:00; slab pour moved to tomorrow.";
    const description = "Tarpaulins for the slab (bought offline)";
    const before = await history();
    await aliceStatusReads("in sync");

    await aliceOffline();
    await field(alice, "weather").fill(weather);
    await alice.page.locator('#editor button[type="submit"]').click();
    await aliceStatusReads("offline · 1 change waiting");
    await until(() => field(alice, "weather").getAttribute("class")).toContain("waiting");

    const expenseForm = alice.page.locator("#expense-form");
    await expenseForm.locator('select[name="projectId"]').selectOption("p-riverside");
    await expenseForm.locator('input[name="description"]').fill(description);
    await expenseForm.locator('input[name="amount"]').fill("240");
    await expenseForm.locator('button[type="submit"]').click();
    await alice.page.locator('#expenses li[data-status="queued"]', { hasText: description }).waitFor();
    await aliceStatusReads("offline · 2 changes waiting");

    // Still offline: the page comes from the service worker, the report from this browser's cache, the waiting changes from the outbox.
    await alice.page.reload();
    await alice.page.locator(`#editor[data-document-id="${REPORT.id}"][data-source="cache"]`).waitFor({ state: "attached" });
    await aliceStatusReads("offline · 2 changes waiting");
    await alice.page.locator('#editor [name="weather"].waiting').waitFor();
    await until(() => field(alice, "weather").inputValue()).toBe(weather);
    await until(() => field(alice, "notes").inputValue()).toBe(before[0]!.data.notes);
    await alice.page.locator('#expenses li[data-status="queued"]', { hasText: description }).waitFor();
    await until(() => alice.page.locator("#projects tr[data-project-id]").count()).toBe(3);
    await screenshot(alice.page, "dashboard-offline");
    // Nothing has reached the server.
    expect((await history())[0]!.version).toBe(before[0]!.version);
    expect(expensesNamed(description)).toEqual([]);

    await aliceOnline();
    await aliceStatusReads("in sync");

    const after = await history();
    const added = after.filter((version) => version.version > before[0]!.version);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({ updatedBy: "u-alice", data: { ...before[0]!.data, weather } });
    const expenses = expensesNamed(description);
    expect(expenses).toHaveLength(1);
    expect(expenses[0]).toMatchObject({ submittedBy: "u-alice", amount: 240 });
    expect(expenses[0]!.mutationId).toMatch(/^[0-9a-f]{32}$/);

    // Ben was connected the whole time; the commit reaches his open report.
    await until(() => field(ben, "weather").inputValue()).toBe(weather);
    await ben.page.locator("#editor-notice", { hasText: `Updated to version ${added[0]!.version} by Alice Moreno.` }).waitFor();
    // Alice's page shows the committed state: nothing waiting, the report live, the expense created.
    await alice.page.locator(`#editor[data-source="live"][data-waiting="0"]`).waitFor({ state: "attached" });
    await until(() => field(alice, "weather").getAttribute("class")).not.toContain("waiting");
    await alice.page.locator(`#expenses li[data-expense-id="${expenses[0]!.id}"]`, { hasText: description }).waitFor();
    await until(() => alice.page.locator('#expenses li[data-status="queued"]').count()).toBe(0);
    expect(pageErrors).toEqual([]);
  });

  test("without a reload: a save made offline is sent on reconnection, and a discarded one never is", async () => {
    const progress = "Level 12 slab poured on the east side.";
    const discarded = "Typo, do not send.";
    const before = (await history())[0]!;
    await aliceOffline();
    await field(alice, "title").fill(discarded);
    await alice.page.locator('#editor button[type="submit"]').click();
    await alice.page.locator('#connection-status[data-pending="1"]').waitFor();
    await alice.page.locator("#discard").click();
    await alice.page.locator('#connection-status[data-pending="0"]').waitFor();
    await alice.page.locator("#editor-notice", { hasText: "Discarded your unsent changes." }).waitFor();
    await until(() => field(alice, "title").inputValue()).toBe(before.data.title);

    await field(alice, "progress").fill(progress);
    await alice.page.locator('#editor button[type="submit"]').click();
    await alice.page.locator("#editor-notice", { hasText: "Saved on this device" }).waitFor();
    await aliceStatusReads("offline · 1 change waiting");
    await aliceOnline();
    await alice.page.locator("#editor-notice", { hasText: /^Saved\.$/ }).waitFor();
    await alice.page.locator('#connection-status[data-sync="in-sync"]').waitFor();
    const added = (await history()).filter((version) => version.version > before.version);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({ updatedBy: "u-alice", data: { ...before.data, progress } });
    await until(() => field(ben, "progress").inputValue()).toBe(progress);
    expect(pageErrors).toEqual([]);
  });

  test("Ben changes the same field while Alice is offline: after her reload and reconnection the dialog asks her, she keeps hers, committed once", async () => {
    const mine = "Crane inspection moved to 16:00 (Alice, from the site).";
    const theirs = "Crane inspection cancelled: inspector ill (Ben).";
    await aliceOffline();
    await field(alice, "notes").fill(mine);
    await alice.page.locator('#editor button[type="submit"]').click();
    await alice.page.locator('#connection-status[data-pending="1"]').waitFor();

    await field(ben, "notes").fill(theirs);
    await ben.page.locator('#editor button[type="submit"]').click();
    await ben.page.locator("#editor-notice", { hasText: "Saved." }).waitFor();
    const bens = (await history())[0]!;
    expect(bens).toMatchObject({ updatedBy: "u-ben", data: { notes: theirs } });

    // The write survives the reload; the dialog that settles it is the connection's onConflict, not the old page's.
    await alice.page.reload();
    await alice.page.locator('#editor [name="notes"].waiting').waitFor();
    await until(() => field(alice, "notes").inputValue()).toBe(mine);
    await aliceOnline();

    const dialog = alice.page.locator("#conflict-dialog[open]");
    await dialog.waitFor();
    await until(() => alice.page.locator("#conflict-summary").innerText()).toContain(`Ben Okafor saved version ${bens.version}`);
    const notes = dialog.locator('.conflict-field[data-field="notes"]');
    await until(() => notes.locator(".theirs").innerText()).toContain(theirs);
    await until(() => notes.locator(".mine").innerText()).toContain(mine);
    await screenshot(alice.page, "dashboard-offline-conflict");
    await dialog.locator('button[data-choice="mine"]').click();

    await alice.page.locator("#editor-notice", { hasText: "Saved; your version of the conflicting fields won." }).waitFor();
    await alice.page.locator('#connection-status[data-sync="in-sync"]').waitFor();
    const added = (await history()).filter((version) => version.version > bens.version);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({ updatedBy: "u-alice", data: { ...bens.data, notes: mine } });
    await until(() => field(ben, "notes").inputValue()).toBe(mine);
    expect(pageErrors).toEqual([]);
  });
});
