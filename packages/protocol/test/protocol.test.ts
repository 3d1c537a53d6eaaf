import { expect, test } from "vitest";
import { compareInboxIds, ERROR_CODES, isInboxId, PROTOCOL_EVENTS, RESERVED_EVENTS } from "@truss/protocol";

test("inbox ids are <ms>-<seq> with at most 16 digits each, and order by time, then sequence", () => {
  expect(["1700000000000-0", "0-0", "1234567890123456-1234567890123456"].every(isInboxId)).toBe(true);
  expect(["", "1-", "-1", "1-1-1", "a-1", "12345678901234567-0", " 1-1", 17, null].some(isInboxId)).toBe(false);
  const ids = ["1700000000001-0", "1700000000000-10", "1700000000000-9", "1700000000000-0"];
  expect([...ids].sort(compareInboxIds)).toEqual(["1700000000000-0", "1700000000000-9", "1700000000000-10", "1700000000001-0"]);
  expect(compareInboxIds("5-5", "5-5")).toBe(0);
});

test("error codes are unique and every protocol event name is reserved", () => {
  expect(new Set(ERROR_CODES).size).toBe(ERROR_CODES.length);
  for (const name of Object.values(PROTOCOL_EVENTS)) expect(RESERVED_EVENTS.has(name)).toBe(true);
});
