import assert from "node:assert/strict";
import type { DocumentStore, DocumentStoreOptions } from "@truss/core";
import { registerDocumentConcurrencyCases } from "./documents-concurrency.js";
import { committed, type DocumentCases, freshKey } from "./documents-fixtures.js";
import { registerDocumentHistoryCases } from "./documents-history.js";
import { registerDocumentIsolationCases } from "./documents-isolation.js";
import { registerDocumentMutationCases } from "./documents-mutations.js";
import { isPlausibleTimestamp } from "./fixtures.js";
import { caseRegistrar } from "./registrar.js";
import type { Factory, SuiteOptions, TestFunction } from "./runner.js";

/** Capabilities of the document store under test, and the suite's hooks. */
export interface DocumentSuiteOptions extends SuiteOptions<DocumentStore> {
  /**
   * Calling the factory twice gives two handles on the same data, as two
   * engine nodes sharing one Redis would hold. The racing-writer cases then
   * spread their writers over both handles, as do the cases where two nodes
   * receive the same mutation at once.
   */
  sharedBackend?: boolean;
  /**
   * The store hands out and keeps its own copies, so mutating data passed to
   * or returned from it never changes what is stored. Default `true`: a
   * networked store copies by serialising. Set `false` only for an in-process
   * store that documents sharing references; the copy cases are then left out.
   */
  copiesData?: boolean;
}

/**
 * Registers the {@link DocumentStore} conformance cases with `test`. The
 * factory is called once per case with the options that case needs (a small
 * `maxHistory`, `maxHistoryBytes` or `maxMutations`, or a `mutationTtlMs` of
 * 150 ms that the case waits out in real time; `{}` otherwise), and every case
 * uses a fresh random company.
 *
 * @example
 * documentStoreSuite(test, (options) => redisDocumentStore({ redis, ...options }), { sharedBackend: true });
 */
export function documentStoreSuite(
  test: TestFunction,
  factory: Factory<DocumentStore, DocumentStoreOptions>,
  options: DocumentSuiteOptions = {},
): void {
  const cases = caseRegistrar(test, factory, options, { prefix: "DocumentStore", factoryOptions: {} });
  registerDocumentCompareAndSetCases(cases);
  registerDocumentHistoryCases(cases);
  registerDocumentConcurrencyCases(cases, options.sharedBackend ?? false);
  registerDocumentIsolationCases(cases, options.copiesData ?? true);
  registerDocumentMutationCases(cases, options.sharedBackend ?? false);
}

function registerDocumentCompareAndSetCases(cases: DocumentCases): void {
  cases.withInstance("compareAndSet with expectedVersion 0 creates version 1", async (store) => {
    const key = freshKey();
    const data = { name: "Riverside tower", budget: 1_250_000, phases: [{ name: "foundation" }] };
    const created = committed(await store.compareAndSet(key, 0, data, "user-ann"));
    assert.deepEqual(
      { ...created, updatedAt: 0 },
      { type: key.type, id: key.id, version: 1, data, updatedAt: 0, updatedBy: "user-ann" },
    );
    assert.ok(isPlausibleTimestamp(created.updatedAt), `updatedAt ${created.updatedAt} is epoch ms`);
    assert.deepEqual(await store.get(key), created);
    assert.deepEqual(await store.getVersion(key, 1), created);
  });

  cases.withInstance("a document that was never written is absent", async (store) => {
    const key = freshKey();
    assert.equal(await store.get(key), null);
    assert.equal(await store.getVersion(key, 1), null);
    assert.deepEqual(await store.history(key, 10), []);
  });

  cases.withInstance("compareAndSet on the latest version commits the next one", async (store) => {
    const key = freshKey();
    const first = committed(await store.compareAndSet(key, 0, { status: "planned" }, "user-ann"));
    const second = committed(await store.compareAndSet(key, 1, { status: "active" }, "user-bob"));
    assert.equal(second.version, 2);
    assert.deepEqual(second.data, { status: "active" });
    assert.equal(second.updatedBy, "user-bob");
    assert.deepEqual(await store.get(key), second);
    assert.deepEqual(await store.getVersion(key, 1), first);
  });

  cases.withInstance("a stale compareAndSet changes nothing and returns the current version", async (store) => {
    const key = freshKey();
    await store.compareAndSet(key, 0, { status: "planned" }, "user-ann");
    const latest = committed(await store.compareAndSet(key, 1, { status: "active" }, "user-ann"));
    assert.deepEqual(await store.compareAndSet(key, 1, { status: "cancelled" }, "user-bob"), {
      ok: false,
      current: latest,
    });
    assert.deepEqual(await store.get(key), latest);
    assert.equal((await store.history(key, 10)).length, 2);
  });

  cases.withInstance("creating a document that exists fails with the current version", async (store) => {
    const key = freshKey();
    const created = committed(await store.compareAndSet(key, 0, { name: "first" }, "user-ann"));
    assert.deepEqual(await store.compareAndSet(key, 0, { name: "second" }, "user-bob"), {
      ok: false,
      current: created,
    });
    assert.deepEqual(await store.get(key), created);
  });

  cases.withInstance("updating a document that does not exist fails with no current version", async (store) => {
    const key = freshKey();
    assert.deepEqual(await store.compareAndSet(key, 1, { name: "ghost" }, "user-ann"), { ok: false, current: null });
    assert.equal(await store.get(key), null);
  });

  cases.withInstance("a server-side write is committed with updatedBy null", async (store) => {
    const key = freshKey();
    const created = committed(await store.compareAndSet(key, 0, { imported: true }, null));
    assert.equal(created.updatedBy, null);
    assert.equal((await store.get(key))?.updatedBy, null);
  });

  cases.withInstance("ping resolves when the store has one", async (store) => {
    assert.ok(store.ping === undefined || typeof store.ping === "function", "ping is optional but must be a method");
    await store.ping?.();
  });
}
