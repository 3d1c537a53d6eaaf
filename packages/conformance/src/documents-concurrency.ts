import assert from "node:assert/strict";
import type { CompareAndSetResult, DocumentStore } from "@truss/core";
import { type DocumentCases, freshKey } from "./documents-fixtures.js";

const CONTENDERS = 50;
const ROUNDS = 20;
const WRITERS_PER_ROUND = 5;

/**
 * Cases for compare-and-set under contention: of writers that expect the same
 * version, exactly one commits. With a shared backend the writers are spread
 * over two handles, as they would be over two engine nodes.
 */
export function registerDocumentConcurrencyCases(cases: DocumentCases, sharedBackend: boolean): void {
  const register = (name: string, body: (handles: DocumentStore[]) => Promise<void>) => {
    if (sharedBackend) cases.withTwoHandles(`${name} (across two nodes)`, (nodeA, nodeB) => body([nodeA, nodeB]));
    else cases.withInstance(name, (store) => body([store]));
  };

  register(`of ${CONTENDERS} concurrent writers on the same version exactly one wins`, async (handles) => {
    const key = freshKey();
    const race = (expectedVersion: number) =>
      Promise.all(
        Array.from({ length: CONTENDERS }, (_, writer) =>
          handles[writer % handles.length]!.compareAndSet(key, expectedVersion, { writer }, `user-${writer}`),
        ),
      );

    for (const expectedVersion of [0, 1]) {
      const results = await race(expectedVersion);
      const winner = soleWinner(results);
      assert.equal(winner.version, expectedVersion + 1);
      for (const result of results) {
        // Every loser was checked after the winner committed, or it would have won.
        if (!result.ok) assert.deepEqual(result.current, winner);
      }
      assert.deepEqual(await handles[0]!.get(key), winner);
    }
    assert.equal((await handles[0]!.history(key, 100)).length, 2);
  });

  register(`${ROUNDS} rounds of racing writers commit versions 1 to ${ROUNDS} with no gaps`, async (handles) => {
    const key = freshKey();
    const winners: number[] = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      const expectedVersion = (await handles[round % handles.length]!.get(key))?.version ?? 0;
      const results = await Promise.all(
        Array.from({ length: WRITERS_PER_ROUND }, (_, writer) =>
          handles[writer % handles.length]!.compareAndSet(key, expectedVersion, { round, writer }, null),
        ),
      );
      const winner = soleWinner(results);
      assert.equal(winner.version, round + 1);
      winners.push((winner.data as { writer: number }).writer);
    }
    const history = await handles[0]!.history(key, 100);
    assert.deepEqual(
      history.map((version) => version.version),
      Array.from({ length: ROUNDS }, (_, index) => ROUNDS - index),
    );
    assert.deepEqual(
      history.map((version) => version.data),
      winners.map((writer, round) => ({ round, writer })).reverse(),
    );
  });
}

function soleWinner(results: readonly CompareAndSetResult[]) {
  const winners = results.flatMap((result) => (result.ok ? [result.document] : []));
  assert.equal(winners.length, 1, `exactly one writer commits, not ${winners.length}`);
  return winners[0]!;
}
