import { isTrussError, memoryDocumentStore } from "@truss/core";
import { afterEach, describe, expect, test, vi } from "vitest";
import { MUTATION_RECORD_OVERHEAD_BYTES, MUTATION_WRITER_OVERHEAD_BYTES } from "../src/documents/mutation-window.js";

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

  test("quotas must be positive integers", () => {
    expect(() => memoryDocumentStore({ maxDocumentsPerCompany: 0 })).toThrow(RangeError);
    expect(() => memoryDocumentStore({ maxBytesPerCompany: 1.5 })).toThrow(RangeError);
  });

  test("with the defaults, one company filling the store with 60 KB documents is refused QUOTA_EXCEEDED within 64 MiB", async () => {
    const store = memoryDocumentStore();
    const payload = "x".repeat(60 * 1024);
    let created = 0;
    let refusal: unknown;
    while (refusal === undefined && created < 5_000) {
      try {
        await store.compareAndSet({ companyId: "flood", type: "note", id: `n-${created}` }, 0, { payload }, "mallory");
        created += 1;
      } catch (error) {
        refusal = error;
      }
    }
    expect(isTrussError(refusal) && refusal.code).toBe("QUOTA_EXCEEDED");
    expect(created * (payload.length + 14)).toBeLessThanOrEqual(64 * 1024 * 1024);
    expect(await store.get({ companyId: "flood", type: "note", id: `n-${created}` })).toBeNull();
    // Other companies are not held to what this one filled.
    expect((await store.compareAndSet({ companyId: "acme", type: "note", id: "n-0" }, 0, { payload }, "ann")).ok).toBe(true);
  });

  test("a company may hold maxDocumentsPerCompany documents; one more is refused and nothing is stored", async () => {
    const store = memoryDocumentStore({ maxDocumentsPerCompany: 2 });
    const note = (id: string) => ({ companyId: "acme", type: "note", id });
    expect((await store.compareAndSet(note("a"), 0, { n: 1 }, "ann")).ok).toBe(true);
    expect((await store.compareAndSet({ ...note("b"), type: "task" }, 0, { n: 1 }, "ann")).ok).toBe(true);
    await expect(store.compareAndSet(note("c"), 0, { n: 1 }, "ann")).rejects.toMatchObject({ name: "TrussError", code: "QUOTA_EXCEEDED" });
    expect(await store.get(note("c"))).toBeNull();
    expect(await store.history(note("c"), 10)).toEqual([]);
    // Existing documents can still change, and so can other companies' documents.
    expect((await store.compareAndSet(note("a"), 1, { n: 2 }, "ann")).ok).toBe(true);
    expect((await store.compareAndSet({ ...note("c"), companyId: "globex" }, 0, { n: 1 }, "bob")).ok).toBe(true);
  });

  test("past maxBytesPerCompany the company's oldest history goes first, across its documents, and never a latest version", async () => {
    const version = (revision: number) => ({ revision, padding: "x".repeat(980) });
    const size = Buffer.byteLength(JSON.stringify(version(10)));
    const store = memoryDocumentStore({ maxBytesPerCompany: 5 * size });
    const a = { companyId: "acme", type: "note", id: "a" };
    const b = { ...a, id: "b" };
    for (let revision = 10; revision <= 12; revision++) await store.compareAndSet(a, revision - 10, version(revision), "ann");
    for (let revision = 10; revision <= 12; revision++) await store.compareAndSet(b, revision - 10, version(revision), "bob");
    // Six versions of the same size against a quota of five: a's first, the company's oldest, went.
    expect((await store.history(a, 10)).map((kept) => kept.version)).toEqual([3, 2]);
    expect((await store.history(b, 10)).map((kept) => kept.version)).toEqual([3, 2, 1]);
    // In the order versions became history: a's 2, then b's 1.
    await store.compareAndSet(a, 3, version(13), "ann");
    await store.compareAndSet(a, 4, version(14), "ann");
    expect((await store.history(a, 10)).map((kept) => kept.version)).toEqual([5, 4, 3]);
    expect((await store.history(b, 10)).map((kept) => kept.version)).toEqual([3, 2]);
    // New documents push history out too, until only latest versions are left: then one more is refused.
    for (const id of ["c", "d", "e"]) expect((await store.compareAndSet({ ...a, id }, 0, version(10), id)).ok).toBe(true);
    expect((await store.history(a, 10)).map((kept) => kept.version)).toEqual([5]);
    expect((await store.history(b, 10)).map((kept) => kept.version)).toEqual([3]);
    await expect(store.compareAndSet({ ...a, id: "f" }, 0, version(10), "fay")).rejects.toMatchObject({ code: "QUOTA_EXCEEDED" });
    expect(await store.get({ ...a, id: "f" })).toBeNull();
    await expect(store.compareAndSet(a, 5, { ...version(15), more: "x" }, "ann")).rejects.toMatchObject({ code: "QUOTA_EXCEEDED" });
    expect((await store.get(a))?.version).toBe(5);
    // A write that keeps a document's size or makes it smaller is never refused.
    expect((await store.compareAndSet(a, 5, version(15), "ann")).ok).toBe(true);
    expect((await store.compareAndSet(a, 6, { revision: 16 }, "ann")).ok).toBe(true);
    expect((await store.history(a, 10)).map((kept) => kept.version)).toEqual([7]);
  });

  test("mutation records count in the company's bytes: small updates with long mutation ids are refused QUOTA_EXCEEDED past them", async () => {
    const mutationId = (index: number) => `${index}-`.padEnd(128, "m");
    const perRecord = MUTATION_RECORD_OVERHEAD_BYTES + 128;
    const note = { companyId: "acme", type: "note", id: "a" };
    const data = { n: 1 };
    const held = Buffer.byteLength(JSON.stringify(data)) + MUTATION_WRITER_OVERHEAD_BYTES + "mallory".length;
    const store = memoryDocumentStore({ maxHistory: 1, maxBytesPerCompany: held + 10 * perRecord });
    const update = (version: number) => store.compareAndSet(note, version, data, "mallory", { id: mutationId(version), writer: "mallory", madeAt: Date.now() });
    for (let version = 0; version < 10; version++) expect((await update(version)).ok).toBe(true);
    await expect(update(10)).rejects.toMatchObject({ name: "TrussError", code: "QUOTA_EXCEEDED" });
    expect((await store.get(note))?.version).toBe(10);
    expect(await store.mutation(note, { id: mutationId(10), writer: "mallory", madeAt: Date.now() })).toEqual({ state: "new" });
    // Another company is not held to what this one's records fill.
    expect((await store.compareAndSet({ ...note, companyId: "globex" }, 0, data, "ann", { id: mutationId(0), writer: "ann", madeAt: Date.now() })).ok).toBe(true);
  });

  test("mutation records give their bytes back when maxMutations pushes them out or the TTL passes", async () => {
    let clock = 1_700_000_000_000;
    const store = memoryDocumentStore({ maxHistory: 1, maxMutations: 3, mutationTtlMs: 1_000, maxBytesPerCompany: 4_000, now: () => clock });
    const a = { companyId: "acme", type: "note", id: "a" };
    // Each mutation made a millisecond after the last, so none is at or before a horizon the cap raised.
    const commit = (key: typeof a, version: number, writer: string) =>
      store.compareAndSet(key, version, {}, writer, { id: `${version}`.padEnd(100, "m"), writer, madeAt: ++clock });
    // One writer's records are held to 3: 200 commits fit.
    for (let version = 0; version < 200; version++) expect((await commit(a, version, "ann")).ok).toBe(true);
    // Other writers' records fill the company.
    const b = { ...a, id: "b" };
    let writers = 0;
    const fill = async () => {
      for (; writers < 50; writers++) await commit(b, writers, `writer-${writers}`);
    };
    await expect(fill()).rejects.toMatchObject({ code: "QUOTA_EXCEEDED" });
    expect(writers).toBeLessThan(10);
    await expect(commit({ ...a, id: "c" }, 0, "cy")).rejects.toMatchObject({ code: "QUOTA_EXCEEDED" });
    // Past the TTL, a write finding the company full forgets the expired records of every document first.
    clock += 1_001;
    expect((await commit({ ...a, id: "c" }, 0, "cy")).ok).toBe(true);
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
