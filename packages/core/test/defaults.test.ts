import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import {
  DEFAULTS,
  type AuthExpiryOptions,
  type DocumentStoreOptions,
  type InboxOptions,
  type LimitOptions,
  type MemoryRevocationStoreOptions,
  type PresenceTimingOptions,
  type RecoveryOptions,
  type RevocationTimingOptions,
} from "@truss/core";

describe("DEFAULTS", () => {
  test("is frozen all the way down, so no caller changes a default for everyone", () => {
    expect(Object.isFrozen(DEFAULTS)).toBe(true);
    for (const group of Object.values(DEFAULTS)) expect(Object.isFrozen(group)).toBe(true);
    expect(Object.isFrozen(DEFAULTS.metrics.companyLabel)).toBe(true);
    expect(() => {
      (DEFAULTS.limits as { maxDepth: number }).maxDepth = 1;
    }).toThrow(TypeError);
    expect(DEFAULTS.limits.maxDepth).toBe(64);
  });

  test("has a default for every option of each group it covers, and nothing else", () => {
    const groups: {
      limits: Required<Omit<LimitOptions, "allowedOrigins">>;
      recovery: Required<RecoveryOptions>;
      presenceTiming: Required<PresenceTimingOptions>;
      revocationTiming: Required<RevocationTimingOptions>;
      authExpiry: Required<AuthExpiryOptions>;
      inbox: Required<InboxOptions>;
      documents: Required<DocumentStoreOptions>;
      revocations: Required<Omit<MemoryRevocationStoreOptions, "now">>;
    } = DEFAULTS;
    const exact = <T>(defaults: T, keys: Record<keyof T, true>) => expect(Object.keys(defaults as object).sort()).toEqual(Object.keys(keys).sort());
    exact(groups.limits, {
      maxPayloadBytes: true,
      eventsPerSecond: true,
      userEventsPerSecond: true,
      userBytesPerSecond: true,
      maxDepth: true,
      maxDocumentBytes: true,
      maxMessageBytes: true,
      maxBufferedBytes: true,
      maxDevicesPerUser: true,
      maxSocketsPerDevice: true,
      maxSubscriptionsPerConnection: true,
      authorizeTimeoutMs: true,
      storeTimeoutMs: true,
      authenticateTimeoutMs: true,
      handlerTimeoutMs: true,
    });
    exact(groups.recovery, { maxReplay: true, size: true, ttlMs: true, idleMs: true });
    exact(groups.presenceTiming, { ttlMs: true, heartbeatIntervalMs: true, sweepIntervalMs: true });
    exact(groups.revocationTiming, { ttlMs: true, pollIntervalMs: true });
    exact(groups.authExpiry, { warnBeforeMs: true, requireExpiry: true });
    exact(groups.inbox, { ttlMs: true, maxLength: true, maxCursorsPerUser: true });
    exact(groups.documents, { maxHistory: true, maxHistoryBytes: true, maxMutations: true, maxMutationWriters: true, mutationTtlMs: true });
    exact(groups.revocations, { maxRecords: true });
  });

  test("derived defaults are the documented multiples of the defaults they follow", () => {
    expect(DEFAULTS.limits.userEventsPerSecond).toBe(3 * DEFAULTS.limits.eventsPerSecond);
    expect(DEFAULTS.limits.userBytesPerSecond).toBe(16 * DEFAULTS.limits.maxPayloadBytes);
    expect(DEFAULTS.presenceTiming.heartbeatIntervalMs).toBe(DEFAULTS.presenceTiming.ttlMs / 3);
    expect(DEFAULTS.presenceTiming.sweepIntervalMs).toBe(DEFAULTS.presenceTiming.ttlMs / 2);
  });
});

describe("docs/operations.md's table of timeouts", () => {
  test("names every limits.*TimeoutMs with its default", () => {
    const page = readFileSync(new URL("../../../docs/operations.md", import.meta.url), "utf8");
    const named = new Map([...page.matchAll(/`limits\.(\w+TimeoutMs)` \((\d+) s\)/g)].map(([, option, seconds]) => [option!, Number(seconds) * 1000]));
    const timeouts = Object.entries(DEFAULTS.limits).filter(([option]) => option.endsWith("TimeoutMs"));
    expect(timeouts.length).toBeGreaterThanOrEqual(4);
    expect(Object.fromEntries(named)).toEqual(Object.fromEntries(timeouts));
  });
});
