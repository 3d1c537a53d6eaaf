import { describe, expect, test } from "vitest";
import {
  checkPrefix,
  companyPresenceKeys,
  decodeId,
  documentKeys,
  encodeId,
  inboxKeys,
  sweepIndexKeys,
} from "../src/keys.js";

/** What Redis Cluster hashes: the text between the first `{` and the next `}`. */
function hashTag(key: string): string {
  const open = key.indexOf("{");
  const close = key.indexOf("}", open + 1);
  return open >= 0 && close > open + 1 ? key.slice(open + 1, close) : key;
}

const awkward = "a:b{c}d %/|.#\n";

describe("key layout", () => {
  test("ids round-trip through the encoding, which leaves no ':' or braces", () => {
    expect(decodeId(encodeId(awkward))).toBe(awkward);
    expect(encodeId(awkward)).not.toMatch(/[:{}]/);
  });

  test("keys one script touches share one hash tag, whatever the ids contain", () => {
    const presence = companyPresenceKeys("truss", awkward);
    const tags = [presence.expiry, presence.devices, presence.users, `${presence.userBase}${encodeId(awkward)}`].map(hashTag);
    expect(new Set(tags)).toEqual(new Set([`truss:c:${encodeId(awkward)}`]));

    const inbox = inboxKeys("truss", awkward, awkward);
    expect(hashTag(inbox.log)).toBe(hashTag(inbox.cursors));
    expect(hashTag(inbox.log)).toBe(hashTag(inbox.idempotency));
    expect(hashTag(inbox.log)).toBe(hashTag(inbox.idempotencyOrder));
    expect(hashTag(inbox.log)).toBe(`truss:inbox:${encodeId(awkward)}:${encodeId(awkward)}`);

    const document = documentKeys("truss", { companyId: awkward, type: awkward, id: awkward });
    expect(new Set([document.latest, document.history, document.historyBytes].map(hashTag))).toEqual(
      new Set([hashTag(document.latest)]),
    );

    const index = sweepIndexKeys("truss");
    expect(new Set([index.due, index.writes, index.generation].map(hashTag))).toEqual(new Set(["truss:presence"]));
  });

  test("different companies and documents land on different tags", () => {
    expect(hashTag(companyPresenceKeys("truss", "a").expiry)).not.toBe(hashTag(companyPresenceKeys("truss", "b").expiry));
    const first = documentKeys("truss", { companyId: "a:b", type: "c", id: "d" });
    const second = documentKeys("truss", { companyId: "a", type: "b:c", id: "d" });
    expect(first.latest).not.toBe(second.latest);
  });

  test("inboxes are per company and user, and no id can make two users share one", () => {
    const tagOf = (companyId: string, userId: string) => hashTag(inboxKeys("truss", companyId, userId).log);
    expect(tagOf("acme", "u-1")).not.toBe(tagOf("globex", "u-1"));
    const confusable: [string, string][] = [
      ["a:b", "c"],
      ["a", "b:c"],
      ["a%3Ab", "c"],
      ["a{b}", "c"],
      ["a", "{b}c"],
      ["a/b", "c"],
      ["a", "b/c"],
      ["é", "c"],
      ["e\u0301", "c"],
      ["__proto__", "c"],
      ["a", "__proto__"],
    ];
    const tags = confusable.map(([companyId, userId]) => tagOf(companyId, userId));
    expect(new Set(tags).size).toBe(confusable.length);
  });

  test("a prefix that would open or close a hash tag is refused", () => {
    expect(() => checkPrefix("app{1}")).toThrow(TypeError);
    expect(() => checkPrefix("")).toThrow(TypeError);
    expect(checkPrefix("app:1")).toBe("app:1");
  });
});
