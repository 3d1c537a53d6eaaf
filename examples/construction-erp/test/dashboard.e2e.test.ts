import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { buildDashboard } from "../scripts/build.mjs";
import { PUBLIC_DIR } from "../src/paths.js";
import { ARTIFACTS, eventually, launchChromium, runBrowserTests, warnIfNoChromium } from "./browser.js";
import { startErp, type RunningErp } from "./helpers.js";

warnIfNoChromium("dashboard.e2e.test.ts");

/** The longest any single step may take. */
const STEP_TIMEOUT_MS = 8000;

/**
 * The live dashboard in a real browser: two colleagues at Northwind in two
 * browser contexts, a subcontractor who must see only his project, and a
 * Globex user who must see none of it.
 */
describe.runIf(runBrowserTests)("the live dashboard in Chromium", () => {
  let erp: RunningErp;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const pageErrors: string[] = [];
  /** Every WebSocket frame each page received, to prove what never arrived. */
  const framesOf = new Map<Page, string[]>();
  let alice: Page;
  let ben: Page;
  let chloe: Page;
  let gus: Page;

  beforeAll(async () => {
    browser = await launchChromium();
    const bundleDir = await buildDashboard({ outdir: join(ARTIFACTS, "dashboard-bundle") });
    erp = await startErp({ assets: { publicDir: PUBLIC_DIR, bundleDir } });
    [alice, ben, gus] = await Promise.all([
      logIn("alice@northwind.test", "riverside-daily"),
      logIn("ben@northwind.test", "riverside-daily"),
      logIn("gus@globex.test"),
    ]);
  });

  afterAll(async () => {
    await Promise.allSettled(contexts.map((context) => context.close()));
    await browser?.close();
    await erp?.close();
  });

  /**
   * A fresh browser context (its own storage, so its own session and device)
   * logged in through the login page, once every panel holds its topics and
   * the site report (`report`, or the first) is open and watched.
   */
  async function logIn(email: string, report?: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1440, height: 1020 } });
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
    contexts.push(context);
    const page = await context.newPage();
    page.on("pageerror", (error) => pageErrors.push(`${email}: ${error.message}`));
    const frames: string[] = [];
    framesOf.set(page, frames);
    page.on("websocket", (socket) => socket.on("framereceived", (frame) => frames.push(String(frame.payload))));
    await page.goto(erp.url);
    await page.locator(`#demo-logins button[data-email="${email}"]`).click();
    await page.locator('#connection-status[data-status="connected"]').waitFor();
    await page.locator('body[data-live="true"]').waitFor({ state: "attached" });
    await page.locator('#editor[data-ready="true"]').waitFor({ state: "attached" });
    await page.locator("#projects tr").first().waitFor();
    if (report) await openReport(page, report);
    return page;
  }

  async function openReport(page: Page, report: string): Promise<void> {
    await page.locator("#report-picker").selectOption(report);
    await page.locator(`#editor[data-document-id="${report}"][data-ready="true"]`).waitFor({ state: "attached" });
  }

  const presenceIds = (page: Page) => page.locator("#presence li[data-user-id]").evaluateAll((items) => items.map((item) => item.getAttribute("data-user-id")));
  /** Waits for what `read` returns to pass the assertion chained on it (a page renders a moment after the event awaited). */
  const until = <T>(read: () => T | Promise<T>) => eventually(read, STEP_TIMEOUT_MS);
  const screenshot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

  test("two colleagues see each other online; the other company sees only its own people", async () => {
    await alice.locator('#presence li[data-user-id="u-ben"]').waitFor();
    await ben.locator('#presence li[data-user-id="u-alice"]').waitFor();
    await until(() => presenceIds(alice)).toEqual(["u-alice", "u-ben"]);
    await until(() => alice.locator('#presence li[data-user-id="u-ben"]').innerText()).toMatch(/Ben Okafor[\s\S]*1 device: chrome-\w+ since/);
    await until(() => presenceIds(gus)).toEqual(["u-gus"]);
  });

  test("Alice approves Ben's expense and Ben gets the notification; the budget moves for both", async () => {
    await alice.locator('#expenses li[data-expense-id="e-pump"] button.approve').click();
    const notification = ben.locator("#notifications li", { hasText: "Expense approved" });
    await notification.waitFor();
    await until(() => notification.innerText()).toContain("Alice Moreno approved \"Concrete pump rental (2 days)\" ($1,850).");
    await ben.locator('#expenses li[data-expense-id="e-pump"][data-status="approved"]').waitFor();
    for (const page of [alice, ben]) {
      await page.locator('#projects tr[data-project-id="p-riverside"] .spend', { hasText: "$1,831,850 of $4,200,000" }).waitFor();
    }
  });

  test("a rejection sent while Chloe was offline is waiting for her when she logs in", async () => {
    await alice.locator('#expenses li[data-expense-id="e-drone"] button.reject').click();
    await alice.locator('#expenses li[data-expense-id="e-drone"][data-status="rejected"]').waitFor();
    chloe = await logIn("chloe@northwind.test");
    const waiting = chloe.locator("#notifications li.offline", { hasText: "Expense rejected" });
    await waiting.waitFor();
    await until(() => waiting.innerText()).toContain("Survey drone batteries");
    await alice.locator('#presence li[data-user-id="u-chloe"]').waitFor();
  });

  test("stock taken below the reorder level raises a reorder alert on a colleague's screen", async () => {
    // Rebar: 14 t, reorder level 10.
    const takeFive = ben.locator('#stock tr[data-item-id="s-rebar"] button[aria-label="Take 5 Rebar 12 mm"]');
    await takeFive.click();
    await alice.locator('#stock tr.low[data-item-id="s-rebar"] .qty', { hasText: "9 t" }).waitFor();
    await alice.locator('#reorders li[data-item-id="s-rebar"]', { hasText: "order 11 t" }).waitFor();
  });

  /** Who a page shows in `list` (`#report-viewers`, `#project-viewers`), each as `userId:field`, `-` for none. */
  const viewers = (page: Page, list: string) =>
    page.locator(`${list} li[data-user-id]`).evaluateAll((items) => items.map((item) => `${item.getAttribute("data-user-id")}:${item.getAttribute("data-field") || "-"}`));

  test("two colleagues in one report see each other, and which field each is editing; leaving the report clears it", async () => {
    await until(() => viewers(alice, "#report-viewers")).toEqual(["u-ben:-"]);
    await until(() => viewers(ben, "#report-viewers")).toEqual(["u-alice:-"]);
    await ben.locator('#editor input[name="weather"]').focus();
    await alice.locator('#report-viewers li[data-user-id="u-ben"][data-field="weather"]', { hasText: "Ben Okafor · editing weather" }).waitFor();
    await alice.locator('#editor label[data-edited-by="Ben Okafor editing"] input[name="weather"]').waitFor();
    await screenshot(alice, "dashboard-presence");
    await ben.locator('#editor input[name="weather"]').blur();
    await until(() => viewers(alice, "#report-viewers")).toEqual(["u-ben:-"]);
    await until(() => alice.locator("#editor label[data-edited-by]").count()).toBe(0);

    await openReport(ben, "harbor-daily");
    await until(() => viewers(alice, "#report-viewers")).toEqual([]);
    await until(() => alice.locator("#report-viewers").innerText()).toBe("Nobody else has this open.");
    await openReport(ben, "riverside-daily");
    await until(() => viewers(alice, "#report-viewers")).toEqual(["u-ben:-"]);
  });

  test("a project's page shows who else is viewing it", async () => {
    for (const page of [alice, ben]) {
      await page.locator('#projects tr[data-project-id="p-harbor"] a.project-link').click();
      await page.locator('#project-page[data-project-id="p-harbor"][data-ready="true"]').waitFor();
    }
    await until(() => viewers(alice, "#project-viewers")).toEqual(["u-ben:-"]);
    await until(() => viewers(ben, "#project-viewers")).toEqual(["u-alice:-"]);
    await until(() => alice.locator("#project-page-title").innerText()).toBe("Harbor Bridge Retrofit");
    await screenshot(alice, "dashboard-project-page");
  });

  test("both edit the same field; Ben is shown the conflict and merges it", async () => {
    const mine = "Crane inspection at 14:00. Ben: crane operator confirmed.";
    const theirs = "Crane inspection moved to 15:00 (Alice).";
    // Ben starts typing first, then Alice saves the same field.
    await ben.locator('#editor textarea[name="notes"]').fill(mine);
    await alice.locator('#report-viewers li[data-user-id="u-ben"][data-field="notes"]', { hasText: "Ben Okafor · editing notes" }).waitFor();
    await alice.locator('#editor textarea[name="notes"]').fill(theirs);
    await ben.locator('#report-viewers li[data-user-id="u-alice"][data-field="notes"]', { hasText: "Alice Moreno · editing notes" }).waitFor();
    await alice.locator('#editor button[type="submit"]').click();
    await alice.locator("#document-version", { hasText: "v2 · saved by Alice Moreno" }).waitFor();
    await ben.locator("#editor-notice", { hasText: "Alice Moreno saved version 2 while you were editing" }).waitFor();
    // Ben's unsaved text is still his.
    await until(() => ben.locator('#editor textarea[name="notes"]').inputValue()).toBe(mine);

    await ben.locator('#editor button[type="submit"]').click();
    const dialog = ben.locator("#conflict-dialog[open]");
    await dialog.waitFor();
    const field = dialog.locator('.conflict-field[data-field="notes"]');
    await until(() => field.locator(".theirs").innerText()).toContain(theirs);
    await until(() => field.locator(".mine").innerText()).toContain(mine);
    await screenshot(ben, "dashboard-conflict");

    await dialog.locator('button[data-choice="merge"]').click();
    const merged = "Crane inspection moved to 15:00; crane operator confirmed.";
    await dialog.locator('textarea[name="notes"]').fill(merged);
    await dialog.locator('button[data-choice="save-merge"]').click();
    await ben.locator("#editor-notice", { hasText: "Saved your merge." }).waitFor();
    await ben.locator("#document-version", { hasText: "v3 · saved by Ben Okafor" }).waitFor();
    // Alice had no unsaved edits, so her form follows live.
    await until(() => alice.locator('#editor textarea[name="notes"]').inputValue()).toBe(merged);
    await alice.locator("#document-version", { hasText: "v3 · saved by Ben Okafor" }).waitFor();
    await screenshot(alice, "dashboard");
  });

  test("Sam, a subcontractor, sees only Riverside Tower and none of Harbor Bridge's updates while Alice changes both", async () => {
    const sam = await logIn("sam@northwind.test");
    await until(() => sam.locator("#user-role").innerText()).toMatch(/subcontractor/i);
    await until(() => sam.locator("#projects tr").evaluateAll((rows) => rows.map((row) => row.getAttribute("data-project-id")))).toEqual(["p-riverside"]);
    await until(() => sam.locator('#projects tr[data-project-id="p-riverside"] input').count()).toBe(0);
    await until(() => sam.locator("#report-picker option").evaluateAll((options) => options.map((option) => (option as HTMLOptionElement).value))).toEqual(["riverside-daily"]);
    // The card shows until the page knows the role: wait for it to be hidden.
    await until(() => sam.locator("#stock-card").isHidden()).toBe(true);
    // His own project's report shows who else has it open: Ben is in it.
    await sam.locator('#report-viewers li[data-user-id="u-ben"]').waitFor();

    // Harbor first, in the order a leak would have to arrive before Riverside's change.
    const setBudget = async (projectId: string, budget: number) => {
      const row = alice.locator(`#projects tr[data-project-id="${projectId}"]`);
      await row.locator('input[name="budget"]').fill(String(budget));
      await row.locator('button[type="submit"]').click();
    };
    await setBudget("p-harbor", 3_100_000);
    await alice.locator('#projects tr[data-project-id="p-harbor"] .spend', { hasText: "of $3,100,000" }).waitFor();
    await openReport(alice, "harbor-daily");
    await alice.locator('#editor textarea[name="notes"]').fill("Lane closure extended to Monday.");
    await alice.locator('#editor button[type="submit"]').click();
    await alice.locator("#document-version", { hasText: "v2 · saved by Alice Moreno" }).waitFor();
    await openReport(alice, "riverside-daily");
    await setBudget("p-riverside", 4_300_000);

    await sam.locator('#projects tr[data-project-id="p-riverside"] .spend', { hasText: "of $4,300,000" }).waitFor();
    await ben.locator('#projects tr[data-project-id="p-harbor"] .spend', { hasText: "of $3,100,000" }).waitFor();
    const received = framesOf.get(sam)!.join("\n");
    expect(received).toContain("4300000");
    expect(received).not.toMatch(/p-harbor|harbor-daily|Harbor|3100000/);
    expect(await sam.locator('#projects tr[data-project-id="p-harbor"]').count()).toBe(0);
    await screenshot(sam, "dashboard-subcontractor");

    // Harbor Bridge's page by its address: refused, so no page and nobody on it, while Alice and Ben are viewing it.
    await sam.evaluate(() => void (location.hash = "#project=p-harbor"));
    await sam.locator(".toast", { hasText: "Could not open project p-harbor" }).waitFor();
    await until(() => sam.locator("#project-page").isHidden()).toBe(true);
    expect(await sam.locator("#project-viewers li[data-user-id]").count()).toBe(0);
    expect(framesOf.get(sam)!.filter((frame) => frame.includes("presence:changes") && /harbor/i.test(frame))).toEqual([]);
    await until(() => viewers(alice, "#project-viewers")).toEqual(["u-ben:-"]);
  });

  test("the Globex user saw none of it", async () => {
    expect(await presenceIds(gus)).toEqual(["u-gus"]);
    expect(await gus.locator("#notifications li").allInnerTexts()).toEqual(["Nothing yet."]);
    expect(await gus.locator("#projects tr").evaluateAll((rows) => rows.map((row) => row.getAttribute("data-project-id")).sort())).toEqual(["p-annex", "p-hangar"]);
    expect(await gus.locator("#expenses li[data-expense-id]").evaluateAll((items) => items.map((item) => item.getAttribute("data-expense-id")))).toEqual(["e-rebar"]);
    expect(await gus.locator("#reorders li").allInnerTexts()).toEqual(["No alerts."]);
    expect(await gus.locator("#report-viewers li[data-user-id]").count()).toBe(0);
    expect(await gus.locator('#editor textarea[name="notes"]').inputValue()).toBe("Waiting for the steel delivery window.");
    expect(await gus.locator("#document-version").textContent()).toMatch(/^v1 · saved by the server/);
    await screenshot(gus, "dashboard-globex");
    expect(pageErrors).toEqual([]);
  });

  test("Alice removes Chloe from the company: Chloe's dashboard says her access was revoked", async () => {
    const remove = alice.locator('#presence li[data-user-id="u-chloe"] button[data-remove="u-chloe"]');
    await remove.click();
    await until(() => remove.innerText()).toBe("Remove Chloe Park?");
    await remove.click();
    await alice.locator(".toast", { hasText: "Removed Chloe Park; 1 device disconnected." }).waitFor();

    const banner = chloe.locator('#access-banner[data-kind="revoked"]');
    await banner.waitFor();
    await until(() => banner.innerText()).toContain("Your access was revoked. Alice Moreno removed you from Northwind Construction.");
    await chloe.locator('#connection-status[data-status="closed"]').waitFor();
    await until(() => presenceIds(alice)).not.toContain("u-chloe");
    await screenshot(chloe, "dashboard-revoked");
    expect(pageErrors).toEqual([]);
  });
});
