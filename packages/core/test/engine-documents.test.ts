import { afterEach, expect, test } from "vitest";
import { collect, connectAs, request, sleep, startTestServer, waitFor, type TestServer } from "@truss/test-utils";
import type { DocumentUpdated } from "@truss/protocol";

let server: TestServer;
afterEach(() => server?.close());

const alice = { userId: "alice", companyId: "acme" };
const bob = { userId: "bob", companyId: "acme" };
const doc = { type: "project", id: "tower-b" };

async function seed() {
  const result = await server.engine.documents.update("acme", "project", "tower-b", { baseVersion: 0, changes: { name: "Tower B", budget: 1_000_000, status: "planning" } });
  expect(result.status).toBe("applied");
}

test("two concurrent updates of one field: one applied, the other a conflict naming base, current and incoming", async () => {
  server = await startTestServer();
  await seed();
  const [a, b] = [await connectAs(server.url, alice), await connectAs(server.url, bob)];
  const [ra, rb] = await Promise.all([
    request(a, "document:update", { ...doc, baseVersion: 1, changes: { budget: 1_200_000 } }),
    request(b, "document:update", { ...doc, baseVersion: 1, changes: { budget: 900_000 } }),
  ]);
  const results = [ra, rb];
  expect(results.every((r) => r.ok)).toBe(true);
  const applied = results.filter((r) => r.status === "applied");
  const conflicts = results.filter((r) => r.status === "conflict");
  expect(applied).toHaveLength(1);
  expect(conflicts).toHaveLength(1);
  const winner = applied[0].document.data.budget;
  const loser = winner === 1_200_000 ? 900_000 : 1_200_000;
  expect(conflicts[0].conflicts).toEqual([{ field: "budget", base: 1_000_000, current: winner, incoming: loser }]);
  expect(conflicts[0].current.version).toBe(2);
  expect((await server.engine.documents.get("acme", "project", "tower-b")).version).toBe(2);
  a.close();
  b.close();
});

test("concurrent updates of different fields are merged and the company hears each commit", async () => {
  server = await startTestServer();
  await seed();
  const [a, b] = [await connectAs(server.url, alice), await connectAs(server.url, bob)];
  const watcher = await connectAs(server.url, { userId: "carol", companyId: "acme" });
  const heard = collect<DocumentUpdated>(watcher, "document:updated");
  const aHeard = collect<DocumentUpdated>(a, "document:updated");
  const [ra, rb] = await Promise.all([
    request(a, "document:update", { ...doc, baseVersion: 1, changes: { budget: 1_100_000 } }),
    request(b, "document:update", { ...doc, baseVersion: 1, changes: { status: "active" } }),
  ]);
  expect([ra.status, rb.status].sort()).toEqual(["applied", "merged"]);
  const latest = await server.engine.documents.get("acme", "project", "tower-b");
  expect(latest).toMatchObject({ version: 3, data: { name: "Tower B", budget: 1_100_000, status: "active" } });
  await waitFor(() => heard.length === 2);
  expect(heard.map((h) => h.version)).toEqual([2, 3]);
  // The writer learns from its ack, not from a broadcast of its own write.
  await waitFor(() => aHeard.length === 1);
  await sleep(50);
  expect(aHeard).toHaveLength(1);
  expect(aHeard[0]!.updatedBy).toBe("bob");
  for (const s of [a, b, watcher]) s.close();
});

test("history lists every version newest first and rollback commits a new version", async () => {
  server = await startTestServer();
  await seed();
  const a = await connectAs(server.url, alice);
  await request(a, "document:update", { ...doc, baseVersion: 1, changes: { budget: 2_000_000 } });
  await request(a, "document:update", { ...doc, baseVersion: 2, changes: { status: null } });
  const history = await request(a, "document:history", { ...doc, limit: 10 });
  expect(history.versions.map((v: { version: number }) => v.version)).toEqual([3, 2, 1]);
  expect(history.versions[0].data).toEqual({ name: "Tower B", budget: 2_000_000 });

  const rolled = await request(a, "document:rollback", { ...doc, toVersion: 1 });
  expect(rolled.ok).toBe(true);
  expect(rolled.document).toMatchObject({ version: 4, data: { name: "Tower B", budget: 1_000_000, status: "planning" } });
  const after = await request(a, "document:history", { ...doc, limit: 10 });
  expect(after.versions.map((v: { version: number }) => v.version)).toEqual([4, 3, 2, 1]);

  expect((await request(a, "document:rollback", { ...doc, toVersion: 99 })).error.code).toBe("VERSION_NOT_FOUND");
  a.close();
});

test("bad document requests get coded errors", async () => {
  server = await startTestServer();
  await seed();
  const a = await connectAs(server.url, alice);
  expect((await request(a, "document:get", { type: "project", id: "nope" })).error.code).toBe("NOT_FOUND");
  expect((await request(a, "document:update", { ...doc, baseVersion: -1, changes: {} })).error.code).toBe("INVALID_PAYLOAD");
  expect((await request(a, "document:update", { ...doc, baseVersion: 1, changes: [1, 2] })).error.code).toBe("INVALID_PAYLOAD");
  expect((await request(a, "document:update", { ...doc, baseVersion: 7, changes: { a: 1 } })).error.code).toBe("VERSION_NOT_FOUND");
  expect((await request(a, "document:update", { type: "project", id: "new", baseVersion: 3, changes: { a: 1 } })).error.code).toBe("NOT_FOUND");
  expect((await request(a, "document:get", null)).error.code).toBe("INVALID_PAYLOAD");
  a.close();
});

test("fifty concurrent writers on one version: exactly one wins, the rest see a conflict", async () => {
  server = await startTestServer();
  await seed();
  const writers = await Promise.all(Array.from({ length: 10 }, (_, i) => connectAs(server.url, { userId: `w${i}`, companyId: "acme" })));
  const results = await Promise.all(
    Array.from({ length: 50 }, (_, i) => request(writers[i % 10]!, "document:update", { ...doc, baseVersion: 1, changes: { budget: i } })),
  );
  expect(results.filter((r) => r.status === "applied")).toHaveLength(1);
  expect(results.filter((r) => r.status === "conflict")).toHaveLength(49);
  expect((await server.engine.documents.get("acme", "project", "tower-b")).version).toBe(2);
  for (const w of writers) w.close();
});
