import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startTcpProxy, type TcpProxy } from "@truss/test-utils";
import type { Browser, BrowserContext, Locator, Page } from "playwright-core";
import { build, preview, type PreviewServer } from "vite";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { eventually, launchChromium, runBrowserTests, warnIfNoChromium } from "../../construction-erp/test/browser.js";
import { startErp, type RunningErp } from "../../construction-erp/test/helpers.js";

warnIfNoChromium("site-app.e2e.test.ts");

const APP_ROOT = fileURLToPath(new URL("..", import.meta.url));
const PACKAGES = fileURLToPath(new URL("../../../packages/", import.meta.url));
const COMPANY = "northwind";
// The first site report Ben may see, as the ERP lists them (by id), is the one the app opens.
const REPORT = { type: "site-report", id: "harbor-daily" };
/** The longest any single step may take; going back online includes the client's reconnection. */
const STEP_TIMEOUT_MS = 15_000;

/**
 * The site app on a phone-sized Chromium, built with Vite and served by
 * Vite's preview server, which proxies the API and the socket to the
 * construction ERP through a TCP proxy: "offline" is then real for the
 * socket too (Playwright's `setOffline` leaves an open WebSocket alone).
 */
describe.runIf(runBrowserTests)("the site app on a phone, in Chromium", () => {
  let erp: RunningErp;
  let proxy: TcpProxy;
  let server: PreviewServer;
  let outDir: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    erp = await startErp();
    proxy = await startTcpProxy((erp.app.server.address() as AddressInfo).port);
    outDir = await mkdtemp(join(tmpdir(), "site-app-"));
    const target = { "/api": { target: proxy.url }, "/socket.io": { target: proxy.url, ws: true } };
    // The workspace's packages from their sources, so the test needs no package build.
    const alias = Object.fromEntries(["client", "protocol", "react"].map((name) => [`@truss/${name}`, join(PACKAGES, name, "src/index.ts")]));
    // A production build, as a phone gets it (vitest's NODE_ENV=test would make Vite build React's development copy, without the service worker).
    const testEnv = process.env.NODE_ENV;
    process.env.NODE_ENV = "production";
    try {
      await build({ root: APP_ROOT, logLevel: "warn", resolve: { alias }, build: { outDir, emptyOutDir: true } });
    } finally {
      process.env.NODE_ENV = testEnv;
    }
    server = await preview({ root: APP_ROOT, logLevel: "warn", build: { outDir }, preview: { host: "127.0.0.1", port: 0, strictPort: false, proxy: target } });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
    page = await context.newPage();
    page.on("pageerror", (error) => pageErrors.push(error.message));
  });

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await server?.close();
    await proxy?.close();
    await erp?.close();
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  const sync = (): Locator => page.locator("#sync");
  const field = (name: string): Locator => page.locator(`#report textarea[name="${name}"]`);
  const until = <T>(read: () => T | Promise<T>) => eventually(read, STEP_TIMEOUT_MS);
  const history = () => erp.realtime.documents.history(COMPANY, REPORT.type, REPORT.id, 100);

  test("Ben logs in on his phone and sees today's report live", async () => {
    await page.goto(server.resolvedUrls!.local[0]!);
    await page.locator('button[data-email="ben@northwind.test"]').click();
    await page.locator('#sync[data-sync="in-sync"]').waitFor();
    await page.locator(`#report[data-status="ready"]`).waitFor();
    const [current] = await history();
    await until(() => field("weather").inputValue()).toBe(current!.data.weather);

    // Someone in the office edits the notes: the phone shows the new version without a reload.
    await erp.realtime.documents.update(COMPANY, REPORT.type, REPORT.id, { baseVersion: current!.version, changes: { notes: "Crane inspection moved to 15:00." } });
    await until(() => field("notes").inputValue()).toBe("Crane inspection moved to 15:00.");
    await page.locator(`#report[data-version="${current!.version + 1}"]`).waitFor();
    // The app's files are cached for the next time there is no signal.
    await page.locator('body[data-offline-ready="true"]').waitFor({ state: "attached" });
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
  });

  test("an edit saved offline survives a reload and commits once when the phone is back online", async () => {
    const weather = "Hail at 11:00, pour stopped";
    const before = await history();

    await context.setOffline(true);
    proxy.hold();
    proxy.cut();
    await page.locator('#sync[data-sync="offline"]').waitFor();
    await field("weather").fill(weather);
    await page.locator('#report button[type="submit"]').click();
    await until(() => sync().innerText()).toBe("offline · 1 change waiting");

    await page.locator('#report textarea[name="weather"].waiting').waitFor();

    // Without signal the page comes from the service worker, the report from the phone's last copy, the waiting edit from the outbox in IndexedDB.
    await page.reload();
    await until(() => sync().innerText()).toBe("offline · 1 change waiting");
    await page.locator(`#report[data-source="cache"][data-version="${before[0]!.version}"]`).waitFor();
    await until(() => field("weather").inputValue()).toBe(weather);
    await until(() => field("notes").inputValue()).toBe(before[0]!.data.notes);
    await page.locator('#report textarea[name="weather"].waiting').waitFor();
    expect((await history())[0]!.version).toBe(before[0]!.version);

    proxy.release();
    await context.setOffline(false);
    await until(() => sync().innerText()).toBe("in sync");
    await until(() => field("weather").inputValue()).toBe(weather);
    await page.locator('#report[data-source="live"] textarea[name="weather"]:not(.waiting)').waitFor();

    const added = (await history()).filter((version) => version.version > before[0]!.version);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({ updatedBy: "u-ben", data: { ...before[0]!.data, weather } });
    await page.screenshot({ path: join(APP_ROOT, "test-results", "site-app.png"), fullPage: true });
    expect(pageErrors).toEqual([]);
  }, 60_000);
});
