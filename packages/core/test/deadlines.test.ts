import { describe, expect, test, vi } from "vitest";
import {
  jwtAuth,
  memoryDocumentStore,
  memoryInboxStore,
  memoryPresenceStore,
  memoryRevocationStore,
  memoryScopedPresenceStore,
  memoryStreamStore,
} from "../src/index.js";
import { recordUnhandled, sleep } from "@truss/test-utils";
import { StoreCallOrder, storeDeadlines } from "../src/kernel/deadlines.js";
import { DeadlineExceeded, withinDeadline } from "@truss/protocol";
import { answersInProcess } from "../src/kernel/in-process.js";

const builtIns = () =>
  [
    ["presence", memoryPresenceStore()],
    ["presence", memoryScopedPresenceStore()],
    ["inbox", memoryInboxStore()],
    ["documents", memoryDocumentStore()],
    ["streams", memoryStreamStore()],
    ["revocations", memoryRevocationStore()],
  ] as const;

describe("which stores are timed", () => {
  test("none of the built-in in-memory stores: they answer in process", () => {
    expect(storeDeadlines(5000, builtIns())).toEqual({});
  });

  test("a store that wraps a built-in one is timed, and one timed store of a name times the name", () => {
    const stores = builtIns().map(([name, store]) => [name, name === "inbox" ? { ...store } : store] as const);
    expect(storeDeadlines(5000, stores)).toEqual({ inbox: 5000 });
    // Presence and scoped presence share the name: a contributed scoped-presence store times presence's calls too.
    expect(storeDeadlines(250, [["presence", memoryPresenceStore()], ["presence", { ...memoryScopedPresenceStore() }]])).toEqual({ presence: 250 });
  });
});

describe("which authenticators are timed", () => {
  test("jwtAuth reading claims by name answers in process; with a claims function, which may wait on a database, it is timed", () => {
    const options = { secret: "s".repeat(32), algorithms: ["HS256"] as const };
    expect(answersInProcess(jwtAuth(options))).toBe(true);
    expect(answersInProcess(jwtAuth({ ...options, claims: { userId: "uid" } }))).toBe(true);
    expect(answersInProcess(jwtAuth({ ...options, claims: async () => ({ userId: "u", companyId: "c", roles: [] }) }))).toBe(false);
    expect(answersInProcess({ authenticate: async () => ({}) })).toBe(false);
  });
});

describe("withinDeadline", () => {
  test("passes an answer in time through, and its failure as it is", async () => {
    await expect(withinDeadline(Promise.resolve(7), 50)).resolves.toBe(7);
    const failure = new Error("connection reset");
    await expect(withinDeadline(Promise.reject(failure), 50)).rejects.toBe(failure);
  });

  test("takes what a misbehaving store answers without throwing where it is called", async () => {
    await expect(withinDeadline(null, 50)).resolves.toBeNull();
    const thenable = Object.defineProperty({}, "then", {
      get() {
        throw new TypeError("a throwing then");
      },
    });
    await expect(withinDeadline(thenable, 50)).rejects.toThrow("a throwing then");
  });

  test("rejects once the deadline passes, and drops the late answer and the late failure without an unhandled rejection", async () => {
    const unhandled = recordUnhandled();
    try {
      let late!: { resolve: (value: number) => void; reject: (error: unknown) => void };
      const slow = new Promise<number>((resolve, reject) => (late = { resolve, reject }));
      const startedAt = performance.now();
      await expect(withinDeadline(slow, 40)).rejects.toThrow(DeadlineExceeded);
      expect(performance.now() - startedAt).toBeGreaterThanOrEqual(35);
      late.resolve(1);

      const failing = new Promise<number>((_, reject) => setTimeout(reject, 60, new Error("late failure")));
      await expect(withinDeadline(failing, 20)).rejects.toThrow("no answer within 20 ms");
      await sleep(80);
      expect(unhandled.take()).toEqual([]);
    } finally {
      unhandled.stop();
    }
  });

  test("hands a value that comes after the deadline to `late`, and drops what `late` throws", async () => {
    const unhandled = recordUnhandled();
    try {
      let land!: (value: string) => void;
      const slow = new Promise<string>((resolve) => (land = resolve));
      const landed: string[] = [];
      await expect(withinDeadline(slow, 20, (value) => landed.push(value))).rejects.toThrow(DeadlineExceeded);
      land("committed");
      await sleep(10);
      expect(landed).toEqual(["committed"]);

      // In time, `late` is not called; a `late` that throws is never an unhandled rejection.
      const inTime: string[] = [];
      await expect(withinDeadline(Promise.resolve("now"), 50, (value) => inTime.push(value))).resolves.toBe("now");
      expect(inTime).toEqual([]);
      let landAgain!: (value: string) => void;
      const again = new Promise<string>((resolve) => (landAgain = resolve));
      await expect(
        withinDeadline(again, 20, () => {
          throw new Error("late handler failed");
        }),
      ).rejects.toThrow(DeadlineExceeded);
      landAgain("x");
      await sleep(10);
      expect(unhandled.take()).toEqual([]);
    } finally {
      unhandled.stop();
    }
  });
});

describe("StoreCallOrder", () => {
  /** A call that lands when the test says so, recording when it started and landed. */
  function controlled(name: string, log: string[]): { call: () => Promise<string>; land(): void } {
    let land!: () => void;
    const landed = new Promise<void>((resolve) => (land = resolve));
    return {
      call: async () => {
        log.push(`${name} started`);
        await landed;
        log.push(`${name} landed`);
        return name;
      },
      land: () => land(),
    };
  }

  test("starts a key's call once the one before it settled, however late; other keys do not wait", async () => {
    const order = new StoreCallOrder({ presence: 20 }, "presence", 10_000);
    const log: string[] = [];
    const put = controlled("put", log);
    const putting = order.after("ann", put.call);
    const removing = order.after("ann", async () => void log.push("remove started"));
    await order.after("ben", async () => void log.push("ben's put started"));
    await sleep(50);
    expect(log).toEqual(["put started", "ben's put started"]);
    put.land();
    await Promise.all([putting, removing]);
    expect(log).toEqual(["put started", "ben's put started", "put landed", "remove started"]);
    // A failed call is settled too.
    await order.after("ann", () => Promise.reject(new Error("dropped"))).catch(() => undefined);
    await expect(order.after("ann", async () => "next")).resolves.toBe("next");
  });

  test("waits at most patienceMs for a call the store never answers; without a deadline, calls are not chained", async () => {
    const order = new StoreCallOrder({ presence: 20 }, "presence", 60);
    void order.after("ann", () => new Promise(() => {}));
    const startedAt = performance.now();
    await order.after("ann", async () => undefined);
    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(50);

    const untimed = new StoreCallOrder({}, "presence", 60_000);
    void untimed.after("ann", () => new Promise(() => {}));
    await expect(untimed.after("ann", async () => "at once")).resolves.toBe("at once");
  });

  test("holds a key while its call is on its way, and lets go of a call the store never answers once it is taken as lost", async () => {
    const order = new StoreCallOrder({ presence: 20 }, "presence", 40);
    const log: string[] = [];
    const put = controlled("put", log);
    const putting = order.after("ann", put.call);
    void order.after("ben", () => new Promise(() => {}));
    expect(order.heldKeys).toBe(2);
    put.land();
    await putting;
    await sleep(0);
    // Ann's answered call is let go at once; Ben's, never answered, once it has run twice the patience (swept every 40 ms).
    expect(order.heldKeys).toBe(1);
    await vi.waitFor(() => expect(order.heldKeys).toBe(0), { timeout: 2_000, interval: 10 });
    // A later call for Ben no longer waits for the lost one.
    const startedAt = performance.now();
    await order.after("ben", async () => undefined);
    expect(performance.now() - startedAt).toBeLessThan(30);
    order.stop();
  });
});
