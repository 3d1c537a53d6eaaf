import { scopedPresenceStoreSuite } from "@truss/conformance";
import { memoryScopedPresenceStore, scopeKey, scopeOfKey } from "@truss/core";
import { expect, test } from "vitest";

scopedPresenceStoreSuite(test, () => memoryScopedPresenceStore(), { prefix: "memoryScopedPresenceStore" });

const shared = memoryScopedPresenceStore();
scopedPresenceStoreSuite(test, () => shared, { prefix: "memoryScopedPresenceStore, shared", sharedBackend: true });

test("scope keys round-trip, and no two scopes share one", () => {
  const scopes = [{ topic: "project:p-17" }, { type: "site-report", id: "r-1" }, { type: "site", id: "report:r-1" }, { type: "site:report", id: "r-1" }, { type: "", id: "" }];
  const keys = scopes.map(scopeKey);
  expect(new Set(keys).size).toBe(scopes.length);
  for (const [index, key] of keys.entries()) expect(scopeOfKey(key)).toEqual(scopes[index]);
  expect(scopeOfKey("x:1")).toBeNull();
  expect(scopeOfKey("d:9:ab:c")).toBeNull();
});
