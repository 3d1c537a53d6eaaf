import assert from "node:assert/strict";
import type { DocumentKey, DocumentStore } from "@truss/core";
import type { DocumentData, DocumentVersion } from "@truss/protocol";
import { commitVersions, committed, dataOf, type DocumentCases, freshKey } from "./documents-fixtures.js";

/**
 * Versions of this many bytes are far larger than any version's metadata, so
 * the byte-cap cases hold for a store that counts a little more than the data.
 */
const VERSION_BYTES = 1000;

/** Cases for the version history: order, limit, and the `maxHistory` and `maxHistoryBytes` trims. */
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

  cases.withInstance(
    "history keeps at most maxHistoryBytes of versions, dropping the oldest first",
    async (store) => {
      const key = freshKey();
      await commitSized(store, key, [VERSION_BYTES, VERSION_BYTES, VERSION_BYTES, VERSION_BYTES, VERSION_BYTES]);
      assert.deepEqual(revisionsOf(await store.history(key, 10)), [5, 4, 3]);
      assert.equal(await store.getVersion(key, 2), null);
      assert.equal((await store.getVersion(key, 3))?.version, 3);
      await commitSized(store, key, [VERSION_BYTES], 5);
      assert.deepEqual(revisionsOf(await store.history(key, 10)), [6, 5, 4]);
      assert.equal((await store.get(key))?.version, 6);
    },
    { factoryOptions: { maxHistoryBytes: 3.5 * VERSION_BYTES } },
  );

  cases.withInstance(
    "the latest version is kept even when it alone is over maxHistoryBytes",
    async (store) => {
      const key = freshKey();
      await commitSized(store, key, [100, 5 * VERSION_BYTES]);
      assert.deepEqual(revisionsOf(await store.history(key, 10)), [2]);
      assert.equal(await store.getVersion(key, 1), null);
      assert.equal((await store.get(key))?.version, 2);
      assert.equal((await store.getVersion(key, 2))?.version, 2);
      await commitSized(store, key, [100], 2);
      assert.deepEqual(revisionsOf(await store.history(key, 10)), [3]);
    },
    { factoryOptions: { maxHistoryBytes: 3.5 * VERSION_BYTES } },
  );

  cases.withInstance(
    "whichever of maxHistory and maxHistoryBytes is tighter decides",
    async (store) => {
      const key = freshKey();
      await commitSized(store, key, [VERSION_BYTES, VERSION_BYTES, VERSION_BYTES, VERSION_BYTES]);
      assert.deepEqual(revisionsOf(await store.history(key, 10)), [4, 3], "the byte cap keeps two large versions");
      await commitSized(store, key, [100, 100, 100, 100], 4);
      assert.deepEqual(revisionsOf(await store.history(key, 10)), [8, 7, 6], "the count cap keeps three small ones");
    },
    { factoryOptions: { maxHistory: 3, maxHistoryBytes: 2.5 * VERSION_BYTES } },
  );

  cases.withInstance(
    "versions are measured in UTF-8 bytes, not characters",
    async (store) => {
      const key = freshKey();
      // 750 characters of two bytes each: 1,500 bytes, so two fit under the cap and three do not.
      const wide = (revision: number) => ({ revision, padding: "é".repeat(750) });
      for (let revision = 1; revision <= 3; revision += 1) {
        committed(await store.compareAndSet(key, revision - 1, wide(revision), "user-1"));
      }
      assert.deepEqual(revisionsOf(await store.history(key, 10)), [3, 2]);
    },
    { factoryOptions: { maxHistoryBytes: 3.5 * VERSION_BYTES } },
  );
}

/**
 * Commits one version for each size, after version `after`: data `{ revision,
 * padding }` whose JSON is exactly that many bytes (ASCII, so bytes are characters).
 */
async function commitSized(
  store: DocumentStore,
  key: DocumentKey,
  sizes: readonly number[],
  after = 0,
): Promise<void> {
  for (const [index, bytes] of sizes.entries()) {
    const revision = after + index + 1;
    const overhead = JSON.stringify({ revision, padding: "" }).length;
    const data: DocumentData = { revision, padding: "x".repeat(bytes - overhead) };
    committed(await store.compareAndSet(key, revision - 1, data, "user-1"));
  }
}

function revisionsOf(versions: readonly DocumentVersion[]): unknown[] {
  return versions.map((version) => version.data.revision);
}
