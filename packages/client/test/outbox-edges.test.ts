/**
 * The outbox at its edges: writes too large for the server's buffer, a
 * queued event whose handler hangs, stores that are slow, absent or hand
 * back garbage, and a client closed while a write is being kept.
 */
import { afterEach, expect, test } from "vitest";
import { sleep, waitFor } from "@truss/test-utils";
import { localStorageOutboxStore, memoryOutboxStore, type OutboxStore, type PendingWrite, type TrussClientError } from "@truss/client";
import { alice, closeAll, openClient, startServer, waitForStatus } from "./helpers.js";

afterEach(closeAll);

const REPORT = { type: "site-report", id: "r-7" };

/** A store that keeps writes in memory, taking `delays()` ms over each put (the next delay each time). */
function slowStore(delays: () => number): OutboxStore & { kept: Map<string, PendingWrite> } {
  const kept = new Map<string, PendingWrite>();
  return {
    kept,
    load: () => [...kept.values()],
    put: async (write) => {
      await sleep(delays());
      kept.set(write.mutationId, structuredClone(write));
    },
    delete: (mutationId) => void kept.delete(mutationId),
  };
}

test("a write too large for the server's buffer is refused PAYLOAD_TOO_LARGE at once, nothing queued and no reconnection; the next write commits", async () => {
  const server = await startServer();
  server.engine.handle("photo:attach", () => ({ ok: true }));
  const client = openClient(server.url, alice, { outbox: { events: ["photo:attach"] } });
  await waitForStatus(client, "connected");
  const statuses: string[] = [];
  client.onStatus((status) => void statuses.push(status));
  const photo = "x".repeat(2 * 1024 * 1024);
  await expect(client.documents.update(REPORT.type, REPORT.id, { photo }, { baseVersion: 0 })).rejects.toMatchObject({ code: "PAYLOAD_TOO_LARGE" });
  await expect(client.emit("photo:attach", { photo })).rejects.toMatchObject({ code: "PAYLOAD_TOO_LARGE", message: expect.stringContaining("outbox.maxWriteBytes") });
  expect(client.outbox.size).toBe(0);
  await expect(client.documents.update(REPORT.type, REPORT.id, { crew: 4 }, { baseVersion: 0 })).resolves.toMatchObject({ status: "applied" });
  await sleep(100);
  expect(statuses).toEqual([]);
  expect(client.status).toBe("connected");
});

test("a write an earlier page kept that is too large is settled PAYLOAD_TOO_LARGE instead of sent, and the writes behind it are sent", async () => {
  const server = await startServer();
  const store = memoryOutboxStore();
  const big: PendingWrite = { kind: "document", mutationId: "a".repeat(32), seq: 1, createdAt: Date.now(), type: REPORT.type, id: REPORT.id, baseVersion: 0, changes: { photo: "x".repeat(1_100_000) } };
  const small: PendingWrite = { kind: "document", mutationId: "b".repeat(32), seq: 2, createdAt: Date.now(), type: REPORT.type, id: REPORT.id, baseVersion: 0, changes: { crew: 4 } };
  await store.put(big);
  await store.put(small);
  const client = openClient(server.url, alice, { outbox: { store } });
  const settled: Array<[string, string | undefined]> = [];
  client.outbox.onSettled(({ write, error }) => void settled.push([write.mutationId, error?.code]));
  await waitFor(() => settled.length === 2, { message: "both writes settled" });
  expect(settled).toEqual([
    ["a".repeat(32), "PAYLOAD_TOO_LARGE"],
    ["b".repeat(32), undefined],
  ]);
  expect((await server.engine.documents.get("acme", REPORT.type, REPORT.id)).data).toEqual({ crew: 4 });
});

test("a queued event whose handler hangs is answered HANDLER_ERROR by the server before the outbox sends it again: run once, given up, the next write goes", async () => {
  // The server bounds the handler (300 ms); the client's ackTimeoutMs is shorter than that, its eventAckTimeoutMs is not.
  const server = await startServer({ limits: { handlerTimeoutMs: 300 } });
  let runs = 0;
  server.engine.handle("expense:submit", () => {
    runs++;
    return new Promise(() => {});
  });
  server.engine.handle("expense:note", () => ({ noted: true }));
  const client = openClient(server.url, alice, { ackTimeoutMs: 100, outbox: { events: ["expense:submit", "expense:note"], eventAckTimeoutMs: 2_000 } });
  await waitForStatus(client, "connected");
  const submitting = client.emit("expense:submit", { amount: 120 });
  const noting = client.emit("expense:note", { text: "fuel" });
  await expect(submitting).rejects.toMatchObject({ code: "HANDLER_ERROR" });
  await expect(noting).resolves.toEqual({ noted: true });
  expect(runs).toBe(1);
});

test("writes are sent in the order they were made, however long the store takes over each one's put", async () => {
  const server = await startServer();
  const order: number[] = [];
  server.engine.handle("crew:count", (data) => {
    order.push((data as { n: number }).n);
    return { ok: true };
  });
  const delays = [120, 80, 40, 0];
  const client = openClient(server.url, alice, { outbox: { events: ["crew:count"], store: slowStore(() => delays.shift() ?? 0) } });
  await waitForStatus(client, "connected");
  await Promise.all([1, 2, 3, 4].map((n) => client.emit("crew:count", { n })));
  expect(order).toEqual([1, 2, 3, 4]);
});

test("a write being kept when the client closes rejects CLIENT_CLOSED, and stays in the store for the next page", async () => {
  const server = await startServer();
  const store = slowStore(() => 100);
  const client = openClient(server.url, alice, { outbox: { store } });
  await waitForStatus(client, "connected");
  const updating = client.documents.update(REPORT.type, REPORT.id, { crew: 4 }, { baseVersion: 0 });
  await sleep(20);
  client.close();
  await expect(updating).rejects.toMatchObject({ code: "CLIENT_CLOSED" });
  expect(store.kept.size).toBe(1);
});

test("a put that answers after callbackTimeoutMs is refused STORAGE_FAILED, and taken out of the store when it lands, so no later page sends it", async () => {
  const server = await startServer();
  const store = slowStore(() => 300);
  const client = openClient(server.url, alice, { callbackTimeoutMs: 100, outbox: { store } });
  await waitForStatus(client, "connected");
  await expect(client.documents.update(REPORT.type, REPORT.id, { crew: 4 }, { baseVersion: 0 })).rejects.toMatchObject({ code: "STORAGE_FAILED" });
  await sleep(400);
  expect(store.kept.size).toBe(0);
  const nextPage = openClient(server.url, alice, { outbox: { store } });
  await waitForStatus(nextPage, "connected");
  await sleep(100);
  await expect(server.engine.documents.get("acme", REPORT.type, REPORT.id)).rejects.toMatchObject({ code: "NOT_FOUND" });
});

test("localStorageOutboxStore where there is no storage refuses each write STORAGE_FAILED instead of keeping it in memory only", async () => {
  const server = await startServer();
  const client = openClient(server.url, alice, { outbox: { store: localStorageOutboxStore("truss:outbox", undefined) } });
  await waitForStatus(client, "connected");
  await expect(client.documents.update(REPORT.type, REPORT.id, { crew: 4 }, { baseVersion: 0 })).rejects.toMatchObject({
    code: "STORAGE_FAILED",
    message: expect.stringContaining("localStorage is not available"),
  });
  expect(client.outbox.size).toBe(0);
});

test("what a custom store loads that is not a pending write is reported STORAGE_FAILED and left out; the rest is sent, and nothing rejects unhandled", async () => {
  const server = await startServer();
  const good: PendingWrite = { kind: "document", mutationId: "c".repeat(32), seq: 3, createdAt: Date.now(), type: REPORT.type, id: REPORT.id, baseVersion: 0, changes: { crew: 4 } };
  const garbage = [null, 42, { kind: "weird", mutationId: "d", seq: 1, createdAt: 0 }, { ...good, mutationId: "e".repeat(32), seq: 1e300 }];
  const store: OutboxStore = { load: () => [...garbage, good] as PendingWrite[], put: () => undefined, delete: () => undefined };
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => void unhandled.push(reason);
  process.on("unhandledRejection", onUnhandled);
  try {
    const reported: TrussClientError[] = [];
    const client = openClient(server.url, alice, { outbox: { store } });
    client.onError((error) => void reported.push(error));
    await waitFor(async () => (await server.engine.documents.get("acme", REPORT.type, REPORT.id).catch(() => null))?.version === 1, { message: "the good write committed" });
    expect(reported.map((error) => error.code)).toContain("STORAGE_FAILED");
    expect(reported.find((error) => error.code === "STORAGE_FAILED")?.message).toContain("4 of its 5 records are not pending writes");
    // A later write gets a number after the good one's, not after the garbage's.
    await expect(client.documents.update(REPORT.type, REPORT.id, { crew: 5 }, { baseVersion: 1 })).resolves.toMatchObject({ status: "applied" });
    await sleep(50);
    expect(unhandled).toEqual([]);
  } finally {
    process.off("unhandledRejection", onUnhandled);
  }
});

test("a store whose load fails is reported STORAGE_FAILED, and new writes still go", async () => {
  const server = await startServer();
  const store: OutboxStore = { load: () => Promise.reject(new Error("IndexedDB blocked")), put: () => undefined, delete: () => undefined };
  const reported: TrussClientError[] = [];
  const client = openClient(server.url, alice, { outbox: { store } });
  client.onError((error) => void reported.push(error));
  await expect(client.documents.update(REPORT.type, REPORT.id, { crew: 4 }, { baseVersion: 0 })).resolves.toMatchObject({ status: "applied" });
  expect(reported.map((error) => [error.code, error.message.includes("IndexedDB blocked")])).toContainEqual(["STORAGE_FAILED", true]);
});
