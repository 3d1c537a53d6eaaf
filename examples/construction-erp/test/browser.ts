/**
 * What the browser tests share: finding Debian's Chromium, launching it, and
 * where screenshots go.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { expect } from "vitest";
import { EXAMPLE_ROOT } from "../src/paths.js";

/** Debian's package, then other usual places; `CHROMIUM_PATH` wins. */
const CANDIDATES = [process.env.CHROMIUM_PATH, "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome", "/usr/bin/google-chrome-stable"];

/** The Chromium to drive, if this machine has one. */
export const executablePath = CANDIDATES.find((path): path is string => Boolean(path && existsSync(path)));

/** Whether the browser tests run: with a Chromium, or with `CI` set (where a missing one fails instead). */
export const runBrowserTests = executablePath !== undefined || Boolean(process.env.CI);

/** Where screenshots and the test bundles go. */
export const ARTIFACTS = join(EXAMPLE_ROOT, "test-results");

/** Says loudly that a browser test file did not run, unless `CI` is set (then it fails in `launchChromium`). */
export function warnIfNoChromium(file: string): void {
  if (executablePath !== undefined || process.env.CI) return;
  console.warn(
    "\n" +
      `!!! ${file} did NOT run: no Chromium found (looked for CHROMIUM_PATH and /usr/bin/chromium).\n` +
      "!!! Install it (apt-get install chromium) to run the browser test. With CI set, a missing Chromium fails instead.\n",
  );
}

/** Launches headless Chromium, and makes sure the artifacts folder exists. */
export async function launchChromium(): Promise<Browser> {
  if (!executablePath) throw new Error("CI is set but no Chromium was found; install the chromium package or set CHROMIUM_PATH.");
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath,
    args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/**
 * Reads `read` again until the assertion chained on it holds, failing with
 * the last value once `timeout` ms have passed. A page renders a moment after
 * the event a test waited for, so a browser test waits for the state it
 * asserts rather than reading it once: `await eventually(() => status.innerText(), 15_000).toBe("in sync")`.
 */
export function eventually<T>(read: () => T | Promise<T>, timeout: number): ReturnType<typeof expect.poll<T>> {
  return expect.poll(read, { timeout });
}
