import { expect, test } from "vitest";
import { removeOldest } from "../src/kernel/bounded-logs.js";

test("removeOldest takes the first items off the log and returns them, oldest first", () => {
  const log = [1, 2, 3, 4, 5];
  expect(removeOldest(log, 1)).toEqual([1]);
  expect(log).toEqual([2, 3, 4, 5]);
  expect(removeOldest(log, 3)).toEqual([2, 3, 4]);
  expect(log).toEqual([5]);
  expect(removeOldest(log, 0)).toEqual([]);
  expect(log).toEqual([5]);
});

test("removeOldest takes no more than the log holds", () => {
  expect(removeOldest([], 1)).toEqual([]);
  const log = ["a", "b"];
  expect(removeOldest(log, 5)).toEqual(["a", "b"]);
  expect(log).toEqual([]);
});
