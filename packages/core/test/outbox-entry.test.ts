import { createRealtimeEngine, DEFAULTS, outboxEntry, outboxStream, type OutboxTarget } from "@truss/core";
import { testAuth } from "@truss/test-utils";
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

  test("refuses the event names the engine's emit refuses, with its reason: past 200 characters, a lone surrogate", async () => {
    const user = { kind: "user", companyId: "acme", userId: "alice" } as const;
    const engine = createRealtimeEngine({ auth: testAuth(), logger: false });
    for (const event of ["e".repeat(201), "e".repeat(1_000_000), "expense:\ud800"]) {
      const reason = /An event name must be well-formed Unicode of at most 200 characters/;
      await expect(engine.toUser("acme", "alice").emit(event, {})).rejects.toThrow(reason);
      expect(() => outboxEntry(user, event, {}, undefined, limits)).toThrow(reason);
      expect(() => outboxEntry(user, event, {}, undefined, limits)).toThrow(TypeError);
    }
    expect(outboxEntry(user, "e".repeat(200), {}, undefined, limits).event).toHaveLength(200);
    await engine.close();
  });

  test("carries a toUser row's undelivered choice, checked and copied as the engine's toUser checks it", () => {
    const user = { kind: "user", companyId: "acme", userId: "alice" } as const;
    const choice = { afterMs: 300, note: "not stored" } as { afterMs: number };
    expect(outboxEntry(user, "x", {}, { undelivered: choice }, limits).undelivered).toEqual({ afterMs: 300 });
    expect(outboxEntry(user, "x", {}, { undelivered: false }, limits).undelivered).toBe(false);
    expect(outboxEntry(user, "x", {}, { idempotencyKey: "k" }, limits).undelivered).toBeUndefined();
    for (const bad of [{ afterMs: 0 }, { afterMs: 1.5 }, { afterMs: "300" }, {}, true, "soon", null]) {
      expect(() => outboxEntry(user, "x", {}, { undelivered: bad as never }, limits)).toThrow(
        new TypeError(`outbox toUser(...).emit: options.undelivered must be false or { afterMs } with a positive integer of ms; got ${JSON.stringify(bad)}.`),
      );
    }
  });

  test("refuses an undelivered choice on a company or topic row, which no user's inbox keeps", () => {
    for (const target of [{ kind: "company", companyId: "acme" }, { kind: "topic", companyId: "acme", topic: "project:p-1" }] as const) {
      expect(() => outboxEntry(target, "x", {}, { undelivered: false }, limits)).toThrow(/options\.undelivered is for toUser messages only/);
      expect(() => outboxEntry(target, "x", {}, { undelivered: { afterMs: 300 } }, limits)).toThrow(TypeError);
    }
  });
});
