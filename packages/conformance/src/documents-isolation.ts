import assert from "node:assert/strict";
import type { DocumentKey } from "@truss/core";
import { committed, type DocumentCases, freshKey } from "./documents-fixtures.js";
import { uniqueId } from "./fixtures.js";

/** Characters a store might join key parts with; none may let two keys collide. */
const SEPARATORS = [":", "/", "|", ".", "#", "{", "}", " "];

/**
 * Cases for what must never leak between documents: one company's data into
 * another's, one key into another through how the store builds its keys, and
 * a caller's later mutations into stored state.
 */
export function registerDocumentIsolationCases(cases: DocumentCases, copiesData: boolean): void {
  cases.withInstance("the same type and id in two companies are distinct documents", async (store) => {
    const acme = freshKey();
    const buildCo = { ...acme, companyId: uniqueId("company") };
    const acmeProject = committed(await store.compareAndSet(acme, 0, { owner: "acme" }, "user-ann"));
    assert.equal(await store.get(buildCo), null);
    assert.equal(await store.getVersion(buildCo, 1), null);
    assert.deepEqual(await store.history(buildCo, 10), []);
    const buildCoProject = committed(await store.compareAndSet(buildCo, 0, { owner: "buildco" }, "user-bob"));
    assert.equal(buildCoProject.version, 1);
    assert.deepEqual(await store.get(acme), acmeProject);
    assert.deepEqual(await store.get(buildCo), buildCoProject);
  });

  cases.withInstance("no separator in company, type or id makes two keys collide", async (store) => {
    for (const separator of SEPARATORS) {
      const base = uniqueId("tenant");
      const colliding: [DocumentKey, DocumentKey][] = [
        [
          { companyId: `${base}${separator}b`, type: "c", id: "d" },
          { companyId: base, type: `b${separator}c`, id: "d" },
        ],
        [
          { companyId: base, type: `c${separator}d`, id: "e" },
          { companyId: base, type: "c", id: `d${separator}e` },
        ],
      ];
      for (const [first, second] of colliding) {
        committed(await store.compareAndSet(first, 0, { key: first }, null));
        const other = await store.compareAndSet(second, 0, { key: second }, null);
        assert.ok(other.ok, `${JSON.stringify(second)} is not ${JSON.stringify(first)}`);
        assert.deepEqual((await store.get(first))?.data, { key: first });
        assert.deepEqual((await store.get(second))?.data, { key: second });
      }
    }
  });

  if (!copiesData) return;

  cases.withInstance("mutating data after writing it does not change the stored document", async (store) => {
    const key = freshKey();
    const data = { name: "Depot", crew: { lead: "ann", members: ["bob"] } };
    await store.compareAndSet(key, 0, data, "user-ann");
    data.name = "changed";
    data.crew.members.push("mallory");
    assert.deepEqual((await store.get(key))?.data, { name: "Depot", crew: { lead: "ann", members: ["bob"] } });
  });

  cases.withInstance("mutating a returned document, also a refused write's current, does not change the stored one", async (store) => {
    const key = freshKey();
    const original = { name: "Depot", crew: { members: ["bob"] } };
    const refused = async () => {
      const result = await store.compareAndSet(key, 0, { name: "other", crew: { members: [] } }, "user-bob");
      assert.ok(!result.ok, "a write on a stale version is refused");
      return result.current;
    };
    const returned = [
      committed(await store.compareAndSet(key, 0, structuredClone(original), "user-ann")),
      await store.get(key),
      await store.getVersion(key, 1),
      ...(await store.history(key, 1)),
      await refused(),
    ];
    for (const version of returned) {
      assert.ok(version, "every read returns the document");
      const data = version.data as typeof original;
      data.name = "changed";
      data.crew.members.push("mallory");
      version.version = 99;
    }
    const stored = await store.get(key);
    assert.equal(stored?.version, 1);
    assert.deepEqual(stored?.data, original);
    assert.deepEqual((await store.history(key, 10)).map((version) => version.data), [original]);
  });
}
