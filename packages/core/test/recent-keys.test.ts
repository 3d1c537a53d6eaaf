import { expect, test } from "vitest";
import { RecentKeys } from "../src/kernel/recent-keys.js";

test("remembers the last keys up to its capacity, forgetting the oldest first", () => {
  const recent = new RecentKeys(3);
  expect(["a", "b", "c"].map((key) => recent.addNew(key))).toEqual([true, true, true]);
  expect(recent.addNew("b")).toBe(false);
  // A fourth key pushes out the oldest, "a", which is then new again; "b" and "c" are still known.
  expect(recent.addNew("d")).toBe(true);
  expect(recent.addNew("c")).toBe(false);
  expect(recent.addNew("a")).toBe(true);
  expect(recent.addNew("b")).toBe(true);
});
