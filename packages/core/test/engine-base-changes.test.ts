import { afterEach, expect, test } from "vitest";
import { connectAs, request, startTestServer, type TestServer } from "@truss/test-utils";

let server: TestServer;
afterEach(() => server?.close());

const alice = { userId: "alice", companyId: "acme" };
const bob = { userId: "bob", companyId: "acme" };
const doc = { type: "site-report", id: "r-7" };

async function seed() {
  await server.engine.documents.update("acme", doc.type, doc.id, { baseVersion: 0, changes: { notes: "dry", crew: 4 } });
}

test("baseChanges claiming another user's edit as one's own is a conflict, and the edit is kept", async () => {
  server = await startTestServer();
  await seed();
  const a = await connectAs(server.url, alice);
  const b = await connectAs(server.url, bob);
  expect(await request(b, "document:update", { ...doc, baseVersion: 1, changes: { notes: "B: rain from noon" } })).toMatchObject({ status: "applied" });
  const forged = await request(a, "document:update", {
    ...doc,
    baseVersion: 1,
    baseChanges: { notes: "B: rain from noon" },
    changes: { notes: "A" },
    mutationId: "m-forged",
  });
  expect(forged).toMatchObject({
    ok: true,
    status: "conflict",
    conflicts: [{ field: "notes", base: "dry", current: "B: rain from noon", incoming: "A" }],
  });
  expect((await server.engine.documents.get("acme", doc.type, doc.id)).data.notes).toBe("B: rain from noon");
  a.close();
  b.close();
});

test("the server API checks the claim against the principal it is given", async () => {
  server = await startTestServer();
  await seed();
  await server.engine.documents.update("acme", doc.type, doc.id, { baseVersion: 1, changes: { notes: "B" } }, "bob");
  const forged = await server.engine.documents.update("acme", doc.type, doc.id, { baseVersion: 1, baseChanges: { notes: "B" }, changes: { notes: "A" } }, "alice");
  expect(forged).toMatchObject({ status: "conflict", conflicts: [{ field: "notes", current: "B", incoming: "A" }] });
  // Bob's own claim is his: the same update from him merges.
  const own = await server.engine.documents.update("acme", doc.type, doc.id, { baseVersion: 1, baseChanges: { notes: "B" }, changes: { notes: "B, later" } }, "bob");
  expect(own).toMatchObject({ status: "merged", document: { version: 3, data: { notes: "B, later" } } });
});

test("a writer's own queued edits still count as its own after others committed in between", async () => {
  server = await startTestServer();
  await seed();
  const a = await connectAs(server.url, alice);
  const b = await connectAs(server.url, bob);
  // Alice's outbox holds two edits of notes, both on version 1; Bob commits crew first.
  expect(await request(b, "document:update", { ...doc, baseVersion: 1, changes: { crew: 6 } })).toMatchObject({ status: "applied" });
  expect(await request(a, "document:update", { ...doc, baseVersion: 1, changes: { notes: "A1" }, mutationId: "m-1" })).toMatchObject({
    status: "merged",
    document: { version: 3 },
  });
  // Bob commits again after her first edit, another field and then a deletion she never touched.
  expect(await request(b, "document:update", { ...doc, baseVersion: 3, changes: { crew: 7 } })).toMatchObject({ status: "applied" });
  const second = await request(a, "document:update", { ...doc, baseVersion: 1, baseChanges: { notes: "A1" }, changes: { notes: "A2" }, mutationId: "m-2" });
  expect(second).toMatchObject({ status: "merged", document: { version: 5, data: { notes: "A2", crew: 7 } } });
  // A claim of a field deleted by the writer herself counts too.
  expect(await request(a, "document:update", { ...doc, baseVersion: 5, changes: { notes: null }, mutationId: "m-3" })).toMatchObject({ status: "applied" });
  expect(await request(b, "document:update", { ...doc, baseVersion: 6, changes: { crew: 8 } })).toMatchObject({ status: "applied" });
  const third = await request(a, "document:update", { ...doc, baseVersion: 5, baseChanges: { notes: null }, changes: { notes: "A4" }, mutationId: "m-4" });
  expect(third).toMatchObject({ status: "merged", document: { data: { notes: "A4", crew: 8 } } });
  a.close();
  b.close();
});

test("a claim is not trusted once someone else changed the field after the writer", async () => {
  server = await startTestServer();
  await seed();
  const a = await connectAs(server.url, alice);
  const b = await connectAs(server.url, bob);
  expect(await request(a, "document:update", { ...doc, baseVersion: 1, changes: { notes: "A1" } })).toMatchObject({ status: "applied" });
  // Bob sets it to something else, then back to Alice's value: the last change is his.
  expect(await request(b, "document:update", { ...doc, baseVersion: 2, changes: { notes: "B" } })).toMatchObject({ status: "applied" });
  expect(await request(b, "document:update", { ...doc, baseVersion: 3, changes: { notes: "A1" } })).toMatchObject({ status: "applied" });
  const claimed = await request(a, "document:update", { ...doc, baseVersion: 1, baseChanges: { notes: "A1" }, changes: { notes: "A2" } });
  expect(claimed).toMatchObject({ status: "conflict", conflicts: [{ field: "notes", base: "dry", current: "A1", incoming: "A2" }] });
  a.close();
  b.close();
});
