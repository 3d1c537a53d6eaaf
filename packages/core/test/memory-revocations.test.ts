import { revocationStoreSuite } from "@truss/conformance";
import { memoryRevocationStore, type RevocationRecord } from "@truss/core";
import { describe, expect, test } from "vitest";

// A memory store restarted is a new one, with no records.
revocationStoreSuite(test, () => memoryRevocationStore(), { prefix: "memoryRevocationStore", restartEmpty: () => memoryRevocationStore() });

// One store handed to every caller: the in-process stand-in for two engine nodes on one Redis.
const shared = memoryRevocationStore();
revocationStoreSuite(test, () => shared, { prefix: "memoryRevocationStore, shared", sharedBackend: true });

const revocation = (userId: string, at: number): RevocationRecord => ({
  kind: "disconnect",
  companyId: "acme",
  userId,
  error: { code: "ACCESS_REVOKED", message: "Revoked." },
  at,
  expiresAt: at + 60_000,
});

describe("memoryRevocationStore's bounds", () => {
  test("keeps at most maxRecords, dropping the oldest first, in the log and per user", async () => {
    const store = memoryRevocationStore({ maxRecords: 3 });
    const at = Date.now();
    for (let index = 0; index < 5; index++) await store.add(revocation(`user-${index}`, at + index));
    const { records } = await store.since(null, 100);
    expect(records.map((record) => record.userId)).toEqual(["user-2", "user-3", "user-4"]);
    expect(await store.forUser({ companyId: "acme", userId: "user-0" })).toEqual([]);
    expect(await store.forUser({ companyId: "acme", userId: "user-4" })).toHaveLength(1);
  });

  test("reads back only the records still live on its clock", async () => {
    let now = 1_700_000_000_000;
    const store = memoryRevocationStore({ now: () => now });
    for (let index = 0; index < 1000; index++) {
      await store.add({ ...revocation(`user-${index}`, now), expiresAt: now + 1000 });
      now += 100;
    }
    // The clock is 100 ms past the last add: the last nine are within their second.
    expect((await store.since(null, 10_000)).records.map((record) => record.userId)).toEqual(Array.from({ length: 9 }, (_, index) => `user-${991 + index}`));
    expect(await store.forUser({ companyId: "acme", userId: "user-0" })).toEqual([]);
  });

  test("refuses a maxRecords that is not a positive integer", () => {
    expect(() => memoryRevocationStore({ maxRecords: 0 })).toThrow(RangeError);
    expect(() => memoryRevocationStore({ maxRecords: 1.5 })).toThrow(RangeError);
  });
});
