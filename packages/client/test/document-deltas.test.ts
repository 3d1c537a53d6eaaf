import { afterEach, expect, test } from "vitest";
import { memoryDocumentStore, type DocumentStore } from "@truss/core";
import type { DocumentUpdated, DocumentUpdatedPayload } from "@truss/protocol";
import { waitFor } from "@truss/test-utils";
import type { TrussClient } from "@truss/client";
import { alice, bob, closeAll, openClient, startProxy, startServer, waitForStatus } from "./helpers.js";

afterEach(closeAll);

const TYPE = "site-report";
const ID = "riverside-0612";
/** About 100 KiB of notes: the site report a phone keeps open all day. */
const notes = "Pour of level 3 slab postponed; crane inspection due at 14:00. ".repeat(1600);

/** What reached the client's socket as `document:updated`, and which `document:get` it sent. */
function wire(client: TrussClient) {
  const seen = { deltas: 0, whole: 0, reads: 0 };
  client.socket.onAny((event: string, update: DocumentUpdatedPayload) => {
    if (event === "document:updated") seen["delta" in update ? "deltas" : "whole"] += 1;
  });
  client.socket.onAnyOutgoing((event: string) => {
    if (event === "document:get") seen.reads += 1;
  });
  return seen;
}

test("a watcher's app gets the whole document for every version while only the changed field crosses the network", async () => {
  const server = await startServer();
  await server.engine.documents.update("acme", TYPE, ID, { baseVersion: 0, changes: { weather: "rain", crew: 12, notes } });
  const proxy = await startProxy(server.port);
  const [watcher, writer] = [openClient(proxy.url, bob), openClient(server.url, alice)];
  const seen = wire(watcher);
  const heard: DocumentUpdated[] = [];
  watcher.documents.onUpdated((update) => void heard.push(update));
  expect(await watcher.documents.watch(TYPE, ID)).toMatchObject({ version: 1 });
  await waitForStatus(writer, "connected");
  await writer.documents.get(TYPE, ID);

  const before = proxy.bytesFromServer;
  await writer.documents.update(TYPE, ID, { weather: "sun" });
  await writer.documents.update(TYPE, ID, { crew: null, inspector: "Dana" });
  await waitFor(() => heard.length === 2);
  const latest = await server.engine.documents.get("acme", TYPE, ID);
  expect(heard.map(({ version, data, changedFields }) => ({ version, data, changedFields }))).toEqual([
    { version: 2, data: { weather: "sun", crew: 12, notes }, changedFields: ["weather"] },
    { version: 3, data: latest.data, changedFields: ["crew", "inspector"] },
  ]);
  expect(seen).toEqual({ deltas: 2, whole: 0, reads: 0 });
  // Two updates of a 100 KiB document in well under 1 KiB.
  expect(proxy.bytesFromServer - before).toBeLessThan(1024);
  expect(watcher.documents.knownVersion(TYPE, ID)).toBe(3);
});

/** A document store whose next read lags one version behind, as a replica might: what a watch then holds is not the version before the next delta. */
function laggingOnce(): { store: DocumentStore; lagNextRead(): void } {
  const store = memoryDocumentStore();
  let lag = false;
  return {
    store: {
      ...store,
      async get(key) {
        const latest = await store.get(key);
        if (!lag || !latest) return latest;
        lag = false;
        return store.getVersion(key, latest.version - 1);
      },
    },
    lagNextRead: () => void (lag = true),
  };
}

test("a delta that does not follow the version held makes the client read the document once, then go on with deltas", async () => {
  const lagging = laggingOnce();
  const server = await startServer({ documents: lagging.store, authorize: () => true });
  await server.engine.documents.update("acme", TYPE, ID, { baseVersion: 0, changes: { weather: "rain", notes } });
  await server.engine.documents.update("acme", TYPE, ID, { baseVersion: 1, changes: { weather: "fog" } });
  const watcher = openClient(server.url, bob);
  const seen = wire(watcher);
  const heard: DocumentUpdated[] = [];
  watcher.documents.onUpdated((update) => void heard.push(update));
  lagging.lagNextRead();
  expect(await watcher.documents.watch(TYPE, ID)).toMatchObject({ version: 1, data: { weather: "rain" } });

  // Based on version 2, which this watcher never held.
  await server.engine.documents.update("acme", TYPE, ID, { baseVersion: 2, changes: { crew: 9 } });
  await waitFor(() => heard.length === 1);
  expect(heard[0]).toMatchObject({ version: 3, data: { weather: "fog", crew: 9, notes } });
  expect(heard[0]!.changedFields.sort()).toEqual(["crew", "weather"]);
  await server.engine.documents.update("acme", TYPE, ID, { baseVersion: 3, changes: { crew: 10 } });
  await waitFor(() => heard.length === 2);
  expect(heard[1]).toMatchObject({ version: 4, data: { weather: "fog", crew: 10, notes }, changedFields: ["crew"] });
  expect(seen).toEqual({ deltas: 2, whole: 0, reads: 1 });
});

test("a client writing to a document it watches goes on from its own commits; others' deltas apply on top", async () => {
  const server = await startServer({ authorize: () => true });
  // Short enough notes for the history to keep every version.
  await server.engine.documents.update("acme", TYPE, ID, { baseVersion: 0, changes: { weather: "rain", notes: notes.slice(0, 4096) } });
  const [a, b] = [openClient(server.url, alice), openClient(server.url, bob)];
  const seen = wire(a);
  const heard: DocumentUpdated[] = [];
  a.documents.onUpdated((update) => void heard.push(update));
  await Promise.all([a.documents.watch(TYPE, ID), b.documents.watch(TYPE, ID)]);
  for (let round = 0; round < 20; round++) {
    await Promise.all([a.documents.update(TYPE, ID, { [`a${round % 3}`]: round }), b.documents.update(TYPE, ID, { [`b${round % 3}`]: round })]);
  }
  // Every version a heard (b's commits, from deltas on top of a's own) is the server's.
  await waitFor(() => heard.some((update) => update.updatedBy === "bob" && update.data.b1 === 19 && update.data.b0 === 18));
  const history = new Map((await server.engine.documents.history("acme", TYPE, ID, 100)).map((version) => [version.version, version.data]));
  expect(heard.length).toBeGreaterThan(5);
  for (const update of heard) expect(update.data, `version ${update.version}`).toEqual(history.get(update.version));
  // A delta based on a's own commit that overtakes its ack waits for the ack instead of causing a read.
  expect(seen).toMatchObject({ whole: 0, reads: 0 });
  expect(seen.deltas).toBeGreaterThan(5);
});
