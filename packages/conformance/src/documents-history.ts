import assert from "node:assert/strict";
import { commitVersions, committed, dataOf, type DocumentCases, freshKey } from "./documents-fixtures.js";

/** Cases for the version history: order, limit, and the `maxHistory` trim. */
export function registerDocumentHistoryCases(cases: DocumentCases): void {
  cases.withInstance("history lists committed versions newest first, up to limit", async (store) => {
    const key = freshKey();
    const versions = await commitVersions(store, key, 5);
    const newestFirst = [...versions].reverse();
    assert.deepEqual(await store.history(key, 3), newestFirst.slice(0, 3));
    assert.deepEqual(await store.history(key, 10), newestFirst);
  });

  cases.withInstance("getVersion returns any committed version and null past the latest", async (store) => {
    const key = freshKey();
    const versions = await commitVersions(store, key, 3);
    for (const version of versions) assert.deepEqual(await store.getVersion(key, version.version), version);
    assert.equal(await store.getVersion(key, 4), null);
  });

  cases.withInstance(
    "history keeps only maxHistory versions and forgets the trimmed ones",
    async (store) => {
      const key = freshKey();
      await commitVersions(store, key, 5);
      assert.deepEqual(dataOf(await store.history(key, 10)), [{ revision: 5 }, { revision: 4 }, { revision: 3 }]);
      assert.equal(await store.getVersion(key, 1), null);
      assert.equal(await store.getVersion(key, 2), null);
      assert.deepEqual((await store.getVersion(key, 3))?.data, { revision: 3 });
      // Trimming history never loses the version count.
      const sixth = committed(await store.compareAndSet(key, 5, { revision: 6 }, "user-1"));
      assert.equal(sixth.version, 6);
      assert.deepEqual(dataOf(await store.history(key, 10)), [{ revision: 6 }, { revision: 5 }, { revision: 4 }]);
    },
    { factoryOptions: { maxHistory: 3 } },
  );
}
