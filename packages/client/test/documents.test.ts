import { afterEach, expect, test, vi } from "vitest";
import type { DocumentUpdated } from "@truss/protocol";
import { collect, connectAs, request, sleep, waitFor, type TestServer } from "@truss/test-utils";
import type { ConflictHandler, ConflictResolution, TrussClient } from "@truss/client";
import { alice, bob, closeAll, openClient, startServer, waitForStatus } from "./helpers.js";

let server: TestServer | undefined;
afterEach(closeAll);

const TYPE = "project";
const ID = "tower-b";

/** Tower B at version 1, written server-side (a REST import). */
async function seeded(): Promise<TestServer> {
  server = await startServer();
  const result = await server.engine.documents.update("acme", TYPE, ID, { baseVersion: 0, changes: { name: "Tower B", budget: 1_000_000, status: "planning" } });
  expect(result.status).toBe("applied");
  return server;
}

async function connected(...clients: TrussClient[]): Promise<void> {
  await Promise.all(clients.map((client) => waitForStatus(client, "connected")));
}

test("update bases each change on the last version the client saw", async () => {
  const { url } = await seeded();
  const client = openClient(url, alice);
  await connected(client);
  expect(await client.documents.get(TYPE, ID)).toMatchObject({ version: 1, data: { budget: 1_000_000 } });

  const first = await client.documents.update(TYPE, ID, { budget: 1_200_000 });
  const second = await client.documents.update(TYPE, ID, { status: "active" });
  expect([first.status, second.status]).toEqual(["applied", "applied"]);
  expect(second.document).toMatchObject({ version: 3, data: { name: "Tower B", budget: 1_200_000, status: "active" }, updatedBy: "alice" });
  expect(client.documents.knownVersion(TYPE, ID)).toBe(3);
});

test("concurrent edits: different fields are merged, the same field is a conflict naming all three values", async () => {
  const { url } = await seeded();
  const [a, b] = [openClient(url, alice), openClient(url, bob)];
  await connected(a, b);
  await Promise.all([a.documents.get(TYPE, ID), b.documents.get(TYPE, ID)]);

  const merged = await Promise.all([a.documents.update(TYPE, ID, { budget: 1_100_000 }), b.documents.update(TYPE, ID, { status: "active" })]);
  expect(merged.map((result) => result.status).sort()).toEqual(["applied", "merged"]);
  expect((await a.documents.get(TYPE, ID)).data).toEqual({ name: "Tower B", budget: 1_100_000, status: "active" });
  await b.documents.get(TYPE, ID);

  const raced = await Promise.all([a.documents.update(TYPE, ID, { budget: 1_200_000 }), b.documents.update(TYPE, ID, { budget: 900_000 })]);
  expect(raced.map((result) => result.status).sort()).toEqual(["applied", "conflict"]);
  const winner = raced.find((result) => result.status === "applied")!.document!.data.budget;
  const loser = raced.find((result) => result.status === "conflict")!;
  expect(loser.conflicts).toEqual([{ field: "budget", base: 1_100_000, current: winner, incoming: winner === 900_000 ? 1_200_000 : 900_000 }]);
  expect(loser.current).toMatchObject({ version: 4 });
});

test("document:updated from others moves the tracked version and reaches onUpdated", async () => {
  const { url } = await seeded();
  const [a, b] = [openClient(url, alice), openClient(url, bob)];
  const heard: DocumentUpdated[] = [];
  a.documents.onUpdated((update) => void heard.push(update));
  await connected(a, b);
  await a.documents.get(TYPE, ID);

  await b.documents.update(TYPE, ID, { status: "active" }, { baseVersion: 1 });
  await waitFor(() => heard.length === 1);
  expect(heard[0]).toMatchObject({ type: TYPE, id: ID, version: 2, updatedBy: "bob", changedFields: ["status"] });
  expect(a.documents.knownVersion(TYPE, ID)).toBe(2);
  expect(await a.documents.update(TYPE, ID, { budget: 1_050_000 })).toMatchObject({ status: "applied", document: { version: 3 } });
});

test("a version announced again (by another node, for a resent write) reaches onUpdated once, watched or not", async () => {
  const { url, engine } = await seeded();
  const [a, watching] = [openClient(url, alice), openClient(url, { userId: "carol", companyId: "acme" })];
  const heard: DocumentUpdated[] = [];
  const heardWatching: DocumentUpdated[] = [];
  a.documents.onUpdated((update) => void heard.push(update));
  watching.documents.onUpdated((update) => void heardWatching.push(update));
  await connected(a, watching);
  await a.documents.get(TYPE, ID);
  await watching.documents.watch(TYPE, ID);
  let snapshots = 0;
  watching.documents.onSnapshot(({ id }) => void (id === ID && (snapshots += 1)));
  const raw = collect<DocumentUpdated>(await connectAs(url, { userId: "dan", companyId: "acme" }), "document:updated");

  const bob = await connectAs(url, { userId: "bob", companyId: "acme" });
  expect(await request(bob, "document:update", { type: TYPE, id: ID, baseVersion: 1, changes: { status: "active" }, mutationId: "bob-status" })).toMatchObject({ ok: true });
  await waitFor(() => raw.length === 1);
  // What a second node sends when Bob's resend reaches it: the same version, whole.
  engine.io!.of("/").emit("document:updated", raw[0]);
  await waitFor(() => raw.length === 2);
  await sleep(50);
  for (const updates of [heard, heardWatching]) expect(updates.map(({ version, changedFields }) => ({ version, changedFields }))).toEqual([{ version: 2, changedFields: ["status"] }]);
  expect(snapshots).toBe(1);
  expect(watching.documents.snapshot(TYPE, ID)).toMatchObject({ version: 2, data: { status: "active" } });
  bob.close();
});

/** Bob commits a new budget; alice then sends hers based on version 1, which is stale. */
async function staleBudgetEdit(onConflict: ConflictHandler) {
  const { url } = await seeded();
  const [a, b] = [openClient(url, alice, { onConflict }), openClient(url, bob)];
  await connected(a, b);
  await b.documents.update(TYPE, ID, { budget: 1_300_000 }, { baseVersion: 1 });
  return a.documents.update(TYPE, ID, { budget: 1_150_000 }, { baseVersion: 1 });
}

test('onConflict "mine" resends the changes on the current version', async () => {
  const onConflict = vi.fn<ConflictHandler>(() => "mine");
  const outcome = await staleBudgetEdit(onConflict);
  expect(onConflict).toHaveBeenCalledTimes(1);
  expect(onConflict.mock.calls[0]![0]).toMatchObject({
    type: TYPE,
    id: ID,
    current: { version: 2, data: { budget: 1_300_000 } },
    conflicts: [{ field: "budget", base: 1_000_000, current: 1_300_000, incoming: 1_150_000 }],
    changes: { budget: 1_150_000 },
  });
  expect(outcome).toMatchObject({ status: "applied", resolution: "mine", document: { version: 3, data: { budget: 1_150_000 } } });
  expect((await server!.engine.documents.get("acme", TYPE, ID)).data.budget).toBe(1_150_000);
});

test('onConflict "theirs" keeps the current version and adopts it as the base', async () => {
  // Annotated: TypeScript widens a literal returned from an async arrow when the expected type is `T | Promise<T>`.
  const outcome = await staleBudgetEdit(async (): Promise<ConflictResolution> => "theirs");
  expect(outcome).toMatchObject({ status: "conflict", resolution: "theirs", current: { version: 2, data: { budget: 1_300_000 } } });
  expect((await server!.engine.documents.get("acme", TYPE, ID)).version).toBe(2);
});

test("onConflict may return merged changes, which are sent on the current version", async () => {
  const outcome = await staleBudgetEdit(({ conflicts }) => {
    const [budget] = conflicts;
    return { budget: ((budget!.current as number) + (budget!.incoming as number)) / 2 };
  });
  expect(outcome).toMatchObject({ status: "applied", resolution: "custom", document: { version: 3, data: { budget: 1_225_000 } } });
});

test("history lists versions newest first; rollback commits an old version as a new one", async () => {
  const { url } = await seeded();
  const [a, b] = [openClient(url, alice), openClient(url, bob)];
  const heard: DocumentUpdated[] = [];
  b.documents.onUpdated((update) => void heard.push(update));
  await connected(a, b);
  await a.documents.get(TYPE, ID);
  await a.documents.update(TYPE, ID, { budget: 2_000_000 });
  await a.documents.update(TYPE, ID, { status: "cancelled" });

  expect((await a.documents.history(TYPE, ID)).map((version) => version.version)).toEqual([3, 2, 1]);
  expect((await a.documents.history(TYPE, ID, 1)).map((version) => version.version)).toEqual([3]);
  const restored = await a.documents.rollback(TYPE, ID, 1);
  expect(restored).toMatchObject({ version: 4, data: { name: "Tower B", budget: 1_000_000, status: "planning" } });
  expect(a.documents.knownVersion(TYPE, ID)).toBe(4);
  await waitFor(() => heard.length === 3);
  expect(heard[2]).toMatchObject({ version: 4, changedFields: ["budget", "status"] });
});

test("refusals carry the server's code", async () => {
  const { url } = await seeded();
  const client = openClient(url, alice);
  await connected(client);
  await expect(client.documents.get(TYPE, "no-such-project")).rejects.toMatchObject({ name: "TrussClientError", code: "NOT_FOUND" });
  await expect(client.documents.rollback(TYPE, ID, 9)).rejects.toMatchObject({ code: "VERSION_NOT_FOUND" });
});
