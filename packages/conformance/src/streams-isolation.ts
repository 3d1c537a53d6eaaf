import assert from "node:assert/strict";
import type { StreamKey } from "@truss/core";
import { uniqueId } from "./fixtures.js";
import { appendSequence, freshStream, type StreamCases } from "./streams-fixtures.js";

/** Characters a store might join or escape ids with; none may let two streams collide. */
const AWKWARD = [":", "{", "}", "%", "/", "|", ".", "#", " ", "é", "🏗"];

/**
 * Cases for what must never leak between streams: one company's entries or
 * offsets into another's, even for the same stream name, one stream's into
 * another of the same company, and any through how the store builds its keys.
 */
export function registerStreamIsolationCases(cases: StreamCases): void {
  cases.withInstance("the same stream name in two companies is two streams", async (store) => {
    const inAcme = freshStream({ stream: "company" });
    const inBuildCo = freshStream({ stream: "company" });
    const forAcme = await appendSequence(store, inAcme, 3);
    const empty = await store.read(inBuildCo, 0, 10);
    assert.deepEqual({ top: empty.top, entries: empty.entries }, { top: 0, entries: [] });
    const forBuildCo = await store.append(inBuildCo, "crew:changed", { crew: "north" });
    assert.equal(forBuildCo.entry.offset, 1, "each company's stream counts its own offsets");
    assert.deepEqual((await store.read(inAcme, 0, 10)).entries, forAcme.entries);
    assert.deepEqual((await store.read(inBuildCo, 0, 10)).entries, [forBuildCo.entry]);
  });

  cases.withInstance("a company's streams are apart from each other", async (store) => {
    const company = freshStream({ stream: "company" });
    const keys: StreamKey[] = [company, { ...company, stream: "topic:project-1" }, { ...company, stream: "topic:project-2" }];
    for (const [index, key] of keys.entries()) await appendSequence(store, key, index + 1);
    for (const [index, key] of keys.entries()) {
      const read = await store.read(key, 0, 10);
      assert.equal(read.top, index + 1, `${key.stream} holds its own entries`);
      assert.equal(read.entries.length, index + 1);
    }
  });

  cases.withInstance("no character in company ids or stream names makes two streams collide", async (store) => {
    for (const [first, second] of confusableStreams()) {
      const forFirst = await store.append(first, "project:updated", { to: first });
      const forSecond = await store.append(second, "project:updated", { to: second });
      const apart = `${JSON.stringify(first)} and ${JSON.stringify(second)} are apart`;
      assert.deepEqual([forFirst.entry.offset, forSecond.entry.offset], [1, 1], apart);
      assert.deepEqual((await store.read(first, 0, 10)).entries, [forFirst.entry], apart);
      assert.deepEqual((await store.read(second, 0, 10)).entries, [forSecond.entry], apart);
    }
  });
}

/**
 * Pairs of streams that a store building keys by joining ids, escaping them
 * halfway or keeping them in plain objects would confuse. Each pair has fresh
 * ids of its own, so runs sharing a backend never meet.
 */
function confusableStreams(): [StreamKey, StreamKey][] {
  const pairs: [StreamKey, StreamKey][] = [];
  for (const character of AWKWARD) {
    const tenant = uniqueId("tenant");
    pairs.push([
      { companyId: `${tenant}${character}topic`, stream: "x" },
      { companyId: tenant, stream: `topic${character}x` },
    ]);
    const edge = uniqueId("tenant");
    pairs.push([
      { companyId: `${edge}${character}`, stream: "company" },
      { companyId: edge, stream: `${character}company` },
    ]);
  }
  const escaped = uniqueId("tenant");
  const composed = uniqueId("tenant");
  const prototypes = uniqueId("company");
  const stream = `topic:${uniqueId("project")}`;
  pairs.push(
    // A store that escapes ":" as "%3A" but leaves "%" alone.
    [
      { companyId: `${escaped}%3Ab`, stream: "company" },
      { companyId: `${escaped}:b`, stream: "company" },
    ],
    [
      { companyId: prototypes, stream: "topic:a%3Ab" },
      { companyId: prototypes, stream: "topic:a:b" },
    ],
    // The same text, precomposed and decomposed: distinct ids, however a database collates them.
    [
      { companyId: `${composed}\u00e9`, stream: "company" },
      { companyId: `${composed}e\u0301`, stream: "company" },
    ],
    [
      { companyId: prototypes, stream: "__proto__" },
      { companyId: prototypes, stream: "constructor" },
    ],
    [
      { companyId: "__proto__", stream },
      { companyId: "constructor", stream },
    ],
  );
  return pairs;
}
