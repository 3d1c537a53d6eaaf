import { randomUUID } from "node:crypto";

/**
 * A fresh id for one test, so suites can share a backend (one Redis, many
 * tests, many runs) without ever reading each other's data.
 */
export function uniqueId(label: string): string {
  return `${label}-${randomUUID()}`;
}

/** Waits in real time: TTL tests must pass against stores whose clock the suite cannot fake. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A timestamp a store assigned is within a minute of this process's clock:
 * loose enough for a store that reads its server's clock, tight enough to catch
 * seconds instead of milliseconds, or a zero.
 */
export function isPlausibleTimestamp(ms: number): boolean {
  return Number.isFinite(ms) && Math.abs(ms - Date.now()) < 60_000;
}
