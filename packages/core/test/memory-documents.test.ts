import { memoryDocumentStore } from "@truss/core";
import { afterEach, describe, expect, test, vi } from "vitest";

const key = { companyId: "acme", type: "project", id: "riverside" };

describe("memoryDocumentStore", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  test("schedules no timers, so it never keeps the process alive", async () => {
    vi.useFakeTimers();
    const store = memoryDocumentStore();
    await store.compareAndSet(key, 0, { name: "Riverside" }, "ann");
    await store.history(key, 10);
    expect(vi.getTimerCount()).toBe(0);
  });

  test("updatedAt comes from the store's clock", async () => {
    const store = memoryDocumentStore({ now: () => 1234 });
    const result = await store.compareAndSet(key, 0, {}, "ann");
    expect(result.ok && result.document.updatedAt).toBe(1234);
  });

  test("data that cannot be stored rejects and writes nothing", async () => {
    const store = memoryDocumentStore();
    await expect(store.compareAndSet(key, 0, { callback: () => 1 }, "ann")).rejects.toThrow();
    expect(await store.get(key)).toBeNull();
  });

  test("a history that could not hold the latest version is refused", () => {
    expect(() => memoryDocumentStore({ maxHistory: 0 })).toThrow(RangeError);
    expect(() => memoryDocumentStore({ maxHistory: 1.5 })).toThrow(RangeError);
  });

  test("with maxHistory 1 only the latest version is kept", async () => {
    const store = memoryDocumentStore({ maxHistory: 1 });
    await store.compareAndSet(key, 0, { revision: 1 }, null);
    await store.compareAndSet(key, 1, { revision: 2 }, null);
    expect((await store.history(key, 10)).map((version) => version.version)).toEqual([2]);
    expect(await store.getVersion(key, 1)).toBeNull();
    expect((await store.get(key))?.data).toEqual({ revision: 2 });
  });
});
