import assert from "node:assert/strict";
import type { StreamStore } from "@truss/core";
import { freshStream, offsetRange, offsetsOf, type StreamCases } from "./streams-fixtures.js";

const APPENDS_PER_NODE = 500;

/**
 * Cases for appends that race: offsets stay contiguous and unique and no
 * append is lost. With a shared backend the appends are spread over two
 * handles, as they would be over two engine nodes.
 */
export function registerStreamConcurrencyCases(cases: StreamCases, sharedBackend: boolean): void {
  const total = 2 * APPENDS_PER_NODE;
  const concurrentAppends = async (handles: StreamStore[]) => {
    const key = freshStream();
    const appended = await Promise.all(
      Array.from({ length: total }, (_, index) =>
        handles[index % handles.length]!.append(key, "project:updated", { index }),
      ),
    );
    assert.equal(new Set(appended.map(({ epoch }) => epoch)).size, 1, "every append got the same epoch");
    const offsets = appended.map(({ entry }) => entry.offset);
    assert.deepEqual([...offsets].sort((a, b) => a - b), offsetRange(1, total), "offsets 1 to the total, each once");

    const read = await handles[handles.length - 1]!.read(key, 0, total);
    assert.equal(read.top, total);
    assert.equal(read.gap, null);
    assert.deepEqual(offsetsOf(read.entries), offsetRange(1, total));
    const byOffset = new Map(appended.map(({ entry }) => [entry.offset, entry]));
    assert.deepEqual(read.entries, read.entries.map((entry) => byOffset.get(entry.offset)), "each entry reads back under the offset its append got");
  };

  const name = `${total} concurrent appends${sharedBackend ? " through two nodes" : ""} get offsets 1 to ${total}, none lost`;
  const settings = { factoryOptions: { size: total }, timeoutMs: 30_000 };
  if (sharedBackend) cases.withTwoHandles(name, (nodeA, nodeB) => concurrentAppends([nodeA, nodeB]), settings);
  else cases.withInstance(name, (store) => concurrentAppends([store]), settings);

  cases.withInstance("concurrent appends to different streams each count from 1", async (store) => {
    const keys = Array.from({ length: 5 }, () => freshStream());
    const appended = await Promise.all(
      Array.from({ length: 50 }, (_, index) => store.append(keys[index % keys.length]!, "project:updated", { index })),
    );
    for (const [position, key] of keys.entries()) {
      const offsets = appended.filter((_, index) => index % keys.length === position).map(({ entry }) => entry.offset);
      assert.deepEqual([...offsets].sort((a, b) => a - b), offsetRange(1, 10));
      assert.equal((await store.read(key, 0, 100)).top, 10);
    }
  });
}
