import { DEFAULTS, outboxEntry, outboxStream, type OutboxTarget } from "@truss/core";
import { describe, expect, test } from "vitest";

const limits = { maxDepth: DEFAULTS.limits.maxDepth, maxMessageBytes: DEFAULTS.limits.maxMessageBytes };

describe("outboxStream", () => {
  test("no company id, user id or topic makes two streams one", () => {
    const targets: OutboxTarget[] = [
      { kind: "company", companyId: "a" },
      { kind: "company", companyId: "a:b" },
      { kind: "user", companyId: "a:b", userId: "c" },
      { kind: "user", companyId: "a", userId: "b:c" },
      { kind: "user", companyId: 'a","b', userId: "c" },
      { kind: "user", companyId: "a", userId: 'b","c' },
      { kind: "topic", companyId: "a", topic: "b:c" },
      { kind: "topic", companyId: "a:b", topic: "c" },
      { kind: "topic", companyId: "a", topic: "b" },
    ];
    expect(new Set(targets.map(outboxStream)).size).toBe(targets.length);
  });
});

describe("outboxEntry", () => {
  test("keeps the JSON of the data as it is at the call, and the application's key", () => {
    const data = { expenseId: "e-1", at: new Date("2026-01-02T00:00:00Z"), gone: undefined };
    const entry = outboxEntry({ kind: "user", companyId: "acme", userId: "alice" }, "expense:approved", data, { idempotencyKey: "k-1" }, limits);
    data.expenseId = "changed";
    expect(entry).toEqual({
      target: { kind: "user", companyId: "acme", userId: "alice" },
      stream: 'user:"acme":"alice"',
      event: "expense:approved",
      json: '{"expenseId":"e-1","at":"2026-01-02T00:00:00.000Z"}',
      idempotencyKey: "k-1",
    });
    expect(outboxEntry({ kind: "company", companyId: "acme" }, "ping", undefined, undefined, limits).json).toBeNull();
  });

  test("refuses what the engine would refuse, with the engine's errors", () => {
    const user = { kind: "user", companyId: "acme", userId: "alice" } as const;
    expect(() => outboxEntry(user, "x", { deep: [[[[]]]] }, undefined, { maxDepth: 3, maxMessageBytes: 1000 })).toThrow(expect.objectContaining({ code: "INVALID_PAYLOAD" }));
    expect(() => outboxEntry(user, "x", "y".repeat(100), undefined, { maxDepth: 3, maxMessageBytes: 50 })).toThrow(expect.objectContaining({ code: "PAYLOAD_TOO_LARGE" }));
    expect(() => outboxEntry(user, "x", () => 1, undefined, limits)).toThrow(expect.objectContaining({ code: "INVALID_PAYLOAD" }));
    expect(() => outboxEntry(user, "", {}, undefined, limits)).toThrow(TypeError);
    expect(() => outboxEntry(user, "document:updated", {}, undefined, limits)).toThrow(TypeError);
    expect(() => outboxEntry(user, "x", {}, { idempotencyKey: "k".repeat(201) }, limits)).toThrow(TypeError);
    expect(() => outboxEntry(user, "x", {}, "key" as never, limits)).toThrow(TypeError);
    expect(() => outboxEntry({ kind: "user", companyId: "acme", userId: 7 as never }, "x", {}, undefined, limits)).toThrow(TypeError);
    expect(() => outboxEntry({ kind: "topic", companyId: "acme", topic: "a b" }, "x", {}, undefined, limits)).toThrow(TypeError);
  });
});
