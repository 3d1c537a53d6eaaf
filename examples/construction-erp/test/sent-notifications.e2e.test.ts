import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { buildDashboard } from "../scripts/build.mjs";
import { PUBLIC_DIR } from "../src/paths.js";
import { ARTIFACTS, eventually, launchChromium, runBrowserTests, warnIfNoChromium } from "./browser.js";
import { call, login, startErp, type RunningErp } from "./helpers.js";

warnIfNoChromium("sent-notifications.e2e.test.ts");

/** The dashboard's "Sent while away" list in Chromium: a manager sees the e-mail sent to a colleague who missed a message. */
describe.runIf(runBrowserTests)("the dashboard lists what was e-mailed or pushed, in Chromium", () => {
  let erp: RunningErp;
  let browser: Browser;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    browser = await launchChromium();
    const bundleDir = await buildDashboard({ outdir: join(ARTIFACTS, "sent-notifications-bundle") });
    erp = await startErp({ assets: { publicDir: PUBLIC_DIR, bundleDir }, undelivered: { afterMs: 300, pollIntervalMs: 50 } });
  });
  afterAll(async () => {
    await browser?.close();
    await erp?.close();
  });

  test("Alice rejects Chloe's expense while Chloe is away: her dashboard says it was e-mailed to Chloe Park", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on("pageerror", (error) => pageErrors.push(error.message));
    await page.goto(erp.url);
    await page.locator('#demo-logins button[data-email="alice@northwind.test"]').click();
    await page.locator('body[data-live="true"]').waitFor({ state: "attached" });
    await page.locator("#sent-notifications li.empty").waitFor();

    const alice = await login(erp.url, "alice@northwind.test");
    expect((await call(erp.url, alice.token, "POST", "/api/expenses/e-drone/reject", { reason: "Duplicate" })).status).toBe(200);
    const sent = page.locator('#sent-notifications li[data-channel="email"]');
    await eventually(() => sent.allInnerTexts(), 10_000).toEqual([expect.stringMatching(/^e-mailed to Chloe Park, \d\d:\d\d:\d\d: Expense rejected$/)]);
    // Chromium has PushManager, so the page offers push for this browser.
    await page.locator("#push-toggle").waitFor({ state: "visible" });
    expect(pageErrors).toEqual([]);
    await context.close();
  });
});
