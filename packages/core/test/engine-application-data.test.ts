import fc from "fast-check";
import { afterEach, describe, expect, test } from "vitest";
import { collect, createClient, open, startTestServer, waitFor, type TestServer } from "@truss/test-utils";
import { isTrussError, memoryInboxStore, type InboxStore } from "@truss/core";
import type { InboxMessage } from "@truss/protocol";
import type { Socket as ClientSocket } from "socket.io-client";

/**
 * Data the application hands to `toUser` and `engine.documents.update` is
 * checked as JSON and copied at the call: a value JSON cannot carry is a
 * coded refusal, and what the app does to its object afterwards changes
 * nothing stored or sent.
 */

let server: TestServer;
const sockets: ClientSocket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await server?.close();
});

const alice = { userId: "alice", companyId: "acme", deviceId: "phone" };

async function device(): Promise<{ socket: ClientSocket; received: InboxMessage[] }> {
  const socket = createClient(server.url, alice);
  sockets.push(socket);
  const received = collect<InboxMessage>(socket, "inbox:message");
  await open(socket);
  return { socket, received };
}

describe("toUser", () => {
  test("every value JSON cannot carry rejects INVALID_PAYLOAD naming where it sits, and nothing is stored", async () => {
    server = await startTestServer();
    const cycle: Record<string, unknown> = { a: { b: [] } };
    ((cycle.a as { b: unknown[] }).b).push(cycle);
    const refused: Array<[string, unknown, RegExp]> = [
      ["a function", () => 1, /is a function|holds a function/],
      ["a symbol", Symbol("s"), /holds a symbol/],
      ["a Buffer", Buffer.from("receipt"), /holds binary data/],
      ["a typed array", { scan: new Uint8Array(4) }, /holds binary data at scan/],
      ["a BigInt", { amount: 10n }, /holds a BigInt.* at amount/],
      ["NaN", { ratio: Number.NaN }, /holds NaN at ratio/],
      ["a Map", { byId: new Map([["a", 1]]) }, /holds a Map at byId/],
      ["a nested function", { lines: [{ id: 1 }, { id: 2, total: () => 3 }] }, /holds a function at lines\[1\]\.total/],
      ["a symbol under an odd key", { "line items": [Symbol("x")] }, /holds a symbol at \["line items"\]\[0\]/],
      ["a cycle", cycle, /refers to itself at a\.b\[0\]/],
    ];
    for (const [name, data, message] of refused) {
      const sent = server.engine.toUser("acme", "alice").emit("expense:approved", data as never);
      await expect(sent, name).rejects.toMatchObject({ code: "INVALID_PAYLOAD", message: expect.stringMatching(message) });
    }
    const stored = await server.engine.toUser("acme", "alice").emit("expense:approved", { id: "e-1", at: new Date(0), note: undefined });
    const { received } = await device();
    await waitFor(() => received.length === 1);
    expect(received).toEqual([stored]);
    // What JSON makes of a Date and an undefined field, as the device receives it.
    expect(stored.data).toEqual({ id: "e-1", at: "1970-01-01T00:00:00.000Z" });
  });

  test("data changed right after the call is sent and stored as it was at the call, and the process goes on", async () => {
    // A store that reads the data only after an await, as one that first takes a connection from a pool.
    const inner = memoryInboxStore();
    const pooled: InboxStore = {
      ...inner,
      append: async (...args) => {
        await new Promise((resolve) => setImmediate(resolve));
        return inner.append(...args);
      },
    };
    server = await startTestServer({ inbox: pooled });
    const live = await device();
    const expense: Record<string, unknown> = { id: "e-2", amount: 120 };
    const sent = server.engine.toUser("acme", "alice").emit("expense:approved", expense);
    expense.amount = 999;
    expense.big = 10n;
    expense.self = expense;
    const message = await sent;
    expect(message.data).toEqual({ id: "e-2", amount: 120 });
    await waitFor(() => live.received.length === 1);
    expect(live.received[0]!.data).toEqual({ id: "e-2", amount: 120 });
    live.socket.close();
    const replayed = await device();
    await waitFor(() => replayed.received.length === 1);
    expect(replayed.received[0]).toEqual(message);
  });

  test("fuzzed data with functions, symbols, BigInts, binary, Maps, cycles: a coded refusal or exactly its JSON, stored and replayed", async () => {
    server = await startTestServer();
    type Generated = { value: unknown; bad: boolean };
    const unencodable = fc
      .constantFrom<() => unknown>(
        () => () => 1,
        () => Symbol("s"),
        () => 10n,
        () => Buffer.from("b"),
        () => new Uint8Array(2),
        () => new Float64Array(1),
        () => new ArrayBuffer(2),
        () => new Map([[1, 2]]),
        () => new Set([1]),
        () => Number.NaN,
        () => Number.NEGATIVE_INFINITY,
      )
      .map((make): Generated => ({ value: make(), bad: true }));
    const encodable = fc
      .oneof(fc.string(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null), fc.constant(undefined), fc.date({ noInvalidDate: true }))
      .map((value): Generated => ({ value, bad: false }));
    const key = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom("__proto__", "constructor", "0"));
    const { tree } = fc.letrec<{ tree: Generated }>((tie) => ({
      tree: fc.oneof(
        { depthSize: "small" },
        fc.oneof({ weight: 6, arbitrary: encodable }, { weight: 1, arbitrary: unencodable }),
        fc.array(tie("tree"), { maxLength: 4 }).map((items): Generated => ({ value: items.map((item) => item.value), bad: items.some((item) => item.bad) })),
        fc.array(fc.tuple(key, tie("tree")), { maxLength: 4 }).map((entries): Generated => {
          const fields = new Map(entries);
          const object: Record<string, unknown> = {};
          // Own properties, so "__proto__" and "toJSON" are plain keys, as a parsed payload would have them.
          for (const [name, field] of fields) Object.defineProperty(object, name, { value: field.value, enumerable: true, writable: true, configurable: true });
          return { value: object, bad: [...fields.values()].some((field) => field.bad) };
        }),
      ),
    }));
    const isContainer = (value: unknown): value is Record<string, unknown> | unknown[] =>
      Array.isArray(value) || (typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype);

    const resolved: InboxMessage[] = [];
    await fc.assert(
      fc.asyncProperty(tree, fc.boolean(), async ({ value, bad }, cyclic) => {
        let refusable = bad;
        if (cyclic && isContainer(value)) {
          if (Array.isArray(value)) value.push(value);
          else value.self = value;
          refusable = true;
        }
        const expected = refusable ? undefined : (() => {
          const json = JSON.stringify(value);
          return json === undefined ? undefined : JSON.parse(json);
        })();
        const sent = server.engine.toUser("acme", "alice").emit("fuzz", value as never);
        // The app reuses its object at once: nothing it does now may show.
        if (isContainer(value)) {
          if (Array.isArray(value)) value.push(10n, value);
          else Object.assign(value, { late: 10n, again: value });
        }
        const outcome = await sent.then(
          (message) => ({ message }),
          (error: unknown) => ({ error }),
        );
        if ("error" in outcome) {
          expect(isTrussError(outcome.error), String(outcome.error)).toBe(true);
          expect((outcome.error as { code: string }).code).toBe("INVALID_PAYLOAD");
          expect(refusable).toBe(true);
          return;
        }
        expect(refusable).toBe(false);
        expect(outcome.message.data).toEqual(expected);
        resolved.push(outcome.message);
      }),
      { numRuns: 300 },
    );
    const { received } = await device();
    await waitFor(() => received.length === resolved.length, { message: `${resolved.length} messages replayed` });
    expect(received).toEqual(resolved);
  });
});

describe("engine.documents.update", () => {
  test("changes are copied at the call and a value JSON cannot carry is INVALID_PAYLOAD, nothing stored", async () => {
    server = await startTestServer();
    const changes: Record<string, unknown> = { notes: "poured", crew: ["ann"] };
    const updated = server.engine.documents.update("acme", "site-report", "r1", { baseVersion: 0, changes });
    changes.notes = "changed";
    (changes.crew as unknown[]).push("bob");
    changes.big = 10n;
    changes.self = changes;
    expect(await updated).toMatchObject({ status: "applied", document: { version: 1, data: { notes: "poured", crew: ["ann"] } } });
    expect((await server.engine.documents.get("acme", "site-report", "r1")).data).toEqual({ notes: "poured", crew: ["ann"] });

    for (const bad of [{ total: () => 1 }, { tag: Symbol("t") }, { scan: Buffer.from("x") }]) {
      await expect(server.engine.documents.update("acme", "site-report", "r1", { baseVersion: 1, changes: bad as never })).rejects.toMatchObject({
        code: "INVALID_PAYLOAD",
      });
    }
    expect((await server.engine.documents.get("acme", "site-report", "r1")).version).toBe(1);
  });
});
