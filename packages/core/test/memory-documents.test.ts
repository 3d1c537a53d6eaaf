import { isTrussError, memoryDocumentStore, type DocumentKey, type MutationRef, type MutationState } from "@truss/core";
import { afterEach, describe, expect, test, vi } from "vitest";
import { MUTATION_HORIZON_OVERHEAD_BYTES, MUTATION_RECORD_OVERHEAD_BYTES, MUTATION_WRITER_OVERHEAD_BYTES } from "../src/documents/mutation-window.js";

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

  describe("mutation records past maxBytesPerCompany", () => {
    const perRecord = (id: string) => MUTATION_RECORD_OVERHEAD_BYTES + id.length;
    const writerEntry = (writer: string) => MUTATION_WRITER_OVERHEAD_BYTES + writer.length;
    const horizon = (writer: string) => MUTATION_HORIZON_OVERHEAD_BYTES + writer.length;
    const committed = (state: MutationState) => state.state === "committed";

    test("the oldest are forgotten instead of the write refused: the rest stay within the quota, and a forgotten one is expired, never committed again", async () => {
      let clock = 1_700_000_000_000;
      const store = memoryDocumentStore({ maxHistory: 1, maxBytesPerCompany: 10_000, now: () => clock });
      const note = { companyId: "acme", type: "note", id: "a" };
      const data = { n: 1 };
      const mutations: MutationRef[] = [];
      // 200 small updates whose records would hold about 100 KB, ten times the quota; each made as it is committed.
      for (let version = 0; version < 200; version++) {
        clock += 10;
        mutations.push({ id: `${version}-`.padEnd(128, "m"), writer: "mallory", madeAt: clock });
        expect((await store.compareAndSet(note, version, data, "mallory", mutations[version])).ok).toBe(true);
      }
      const states = await Promise.all(mutations.map((mutation) => store.mutation(note, mutation)));
      const held = states.filter(committed).length;
      // The newest are on record, as many as fit beside the data, the writer's entry and its horizon, and no fewer.
      expect(states.slice(-held).every(committed)).toBe(true);
      const fixed = Buffer.byteLength(JSON.stringify(data)) + writerEntry("mallory") + horizon("mallory");
      expect(fixed + held * perRecord(mutations[0]!.id)).toBeLessThanOrEqual(10_000);
      expect(fixed + (held + 1) * perRecord(mutations[0]!.id)).toBeGreaterThan(10_000);
      // Every older one is expired: sent again, it commits nothing.
      expect(states.slice(0, -held)).toEqual(Array(200 - held).fill({ state: "expired" }));
      expect(await store.compareAndSet(note, 200, data, "mallory", mutations[0])).toMatchObject({ ok: false, mutation: { state: "expired" } });
      expect(await store.compareAndSet(note, 199, data, "mallory", mutations[199])).toMatchObject({ ok: false, mutation: { state: "committed", version: 200 } });
      expect((await store.get(note))?.version).toBe(200);
    });

    test("go oldest first across the company's documents, and expire only their own writer's older mutations", async () => {
      let clock = 1_700_000_000_000;
      const store = memoryDocumentStore({ maxHistory: 1, maxBytesPerCompany: 6_000, now: () => clock });
      const a = { companyId: "acme", type: "note", id: "a" };
      const b = { ...a, id: "b" };
      const commit = async (key: DocumentKey, writer: string, id: string) => {
        const mutation = { id, writer, madeAt: ++clock };
        const version = (await store.get(key))?.version ?? 0;
        expect((await store.compareAndSet(key, version, {}, writer, mutation)).ok).toBe(true);
        return mutation;
      };
      // Bob edits a offline; meanwhile Ann commits to a, then again and again to b.
      const offline = { id: "bob-offline", writer: "bob", madeAt: ++clock };
      const onA = [await commit(a, "ann", "a-1"), await commit(a, "ann", "a-2")];
      const onB: MutationRef[] = [];
      for (let index = 0; index < 20; index++) onB.push(await commit(b, "ann", `b-${index}`));
      // Ann's records on a were the company's oldest: they went first, while b keeps its newest.
      expect(await Promise.all(onA.map((mutation) => store.mutation(a, mutation)))).toEqual([{ state: "expired" }, { state: "expired" }]);
      expect(await store.mutation(b, onB.at(-1)!)).toMatchObject({ state: "committed" });
      // Bob's edit, made before them, is still new: forgetting Ann's records says nothing of his.
      expect(await store.mutation(a, offline)).toEqual({ state: "new" });
      expect((await store.compareAndSet(a, 2, { fog: true }, "bob", offline)).ok).toBe(true);
    });

    test("give their bytes back when maxMutations pushes them out, so those never push out the ones held", async () => {
      let clock = 1_700_000_000_000;
      const id = (version: number) => `${version}`.padEnd(100, "m");
      const fixed = writerEntry("ann") + horizon("ann") + 2;
      const store = memoryDocumentStore({ maxHistory: 1, maxMutations: 3, maxBytesPerCompany: fixed + 4 * perRecord(id(0)), now: () => clock });
      const a = { companyId: "acme", type: "note", id: "a" };
      const mutations: MutationRef[] = [];
      for (let version = 0; version < 200; version++) {
        mutations.push({ id: id(version), writer: "ann", madeAt: ++clock });
        expect((await store.compareAndSet(a, version, {}, "ann", mutations[version])).ok).toBe(true);
      }
      const states = await Promise.all(mutations.slice(-4).map((mutation) => store.mutation(a, mutation)));
      expect(states.map((state) => state.state)).toEqual(["expired", "committed", "committed", "committed"]);
    });

    test("when even the horizons they leave do not fit, each document's horizons are forgotten into its own: writes still go on", async () => {
      let clock = 1_700_000_000_000;
      // Writers with long ids, one document each: every record forgotten early leaves a horizon of about 260 bytes.
      const writer = (index: number) => `w-${index}-`.padEnd(200, "w");
      const store = memoryDocumentStore({ maxHistory: 1, maxBytesPerCompany: 5_000, now: () => clock });
      const note = (index: number) => ({ companyId: "acme", type: "note", id: `n-${index}` });
      const mutations: MutationRef[] = [];
      for (let index = 0; index < 60; index++) {
        mutations.push({ id: `m-${index}`, writer: writer(index), madeAt: ++clock });
        expect((await store.compareAndSet(note(index), 0, {}, writer(index), mutations[index])).ok).toBe(true);
      }
      expect(await store.mutation(note(59), mutations[59]!)).toMatchObject({ state: "committed" });
      expect(await store.mutation(note(0), mutations[0]!)).toEqual({ state: "expired" });
      expect(await store.compareAndSet(note(0), 1, {}, writer(0), mutations[0])).toMatchObject({ ok: false, mutation: { state: "expired" } });
      // The first document's horizon is its writer's no longer: a mutation made before it is expired whoever sends it.
      expect(await store.mutation(note(0), { id: "late", writer: "someone", madeAt: mutations[0]!.madeAt })).toEqual({ state: "expired" });
    });
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
