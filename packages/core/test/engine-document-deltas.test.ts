import { afterEach, expect, test } from "vitest";
import { collect, connectAs, request, sleep, startTestServer, waitFor, type TestServer } from "@truss/test-utils";
import { DOCUMENT_DELTA_MIN_SAVING_BYTES, type DocumentUpdatedPayload } from "@truss/protocol";

let server: TestServer;
afterEach(() => server?.close());

const alice = { userId: "alice", companyId: "acme" };
const carol = { userId: "carol", companyId: "acme" };
const doc = { type: "site-report", id: "riverside-0612" };
/** Notes long enough that resending them costs far more than a delta. */
const notes = "Pour of level 3 slab postponed; crane inspection due. ".repeat(200);

async function seed(data: Record<string, unknown> = { title: "Riverside, 12 June", weather: "rain", crew: 12, notes }) {
  const result = await server.engine.documents.update("acme", doc.type, doc.id, { baseVersion: 0, changes: data });
  expect(result.status).toBe("applied");
}

test("a watcher gets what changed with both versions; a company socket that does not watch gets the whole document", async () => {
  server = await startTestServer();
  await seed();
  const [writer, watcher, bystander] = [await connectAs(server.url, alice), await connectAs(server.url, carol), await connectAs(server.url, carol)];
  expect(await request(watcher, "document:watch", doc)).toMatchObject({ ok: true, document: { version: 1 } });
  const watched = collect<DocumentUpdatedPayload>(watcher, "document:updated");
  const whole = collect<DocumentUpdatedPayload>(bystander, "document:updated");
  const own = collect<DocumentUpdatedPayload>(writer, "document:updated");

  expect(await request(writer, "document:update", { ...doc, baseVersion: 1, changes: { weather: "sun", crew: null } })).toMatchObject({ ok: true, status: "applied" });
  await waitFor(() => watched.length === 1 && whole.length === 1);
  expect(watched[0]).toEqual({
    ...doc,
    version: 2,
    baseVersion: 1,
    delta: { set: { weather: "sun" }, unset: ["crew"] },
    updatedBy: "alice",
    changedFields: ["weather", "crew"],
  });
  expect(whole[0]).toEqual({ ...doc, version: 2, data: { title: "Riverside, 12 June", weather: "sun", notes }, updatedBy: "alice", changedFields: ["weather", "crew"] });
  await sleep(50);
  expect(own).toHaveLength(0);
  for (const socket of [writer, watcher, bystander]) socket.close();
});

test("with a policy only watchers hear, and a merged write's delta is taken against the version it was merged into", async () => {
  server = await startTestServer({ authorize: () => true });
  await seed();
  const [writer, watcher] = [await connectAs(server.url, alice), await connectAs(server.url, carol)];
  await request(watcher, "document:watch", doc);
  const watched = collect<DocumentUpdatedPayload>(watcher, "document:updated");
  await server.engine.documents.update("acme", doc.type, doc.id, { baseVersion: 1, changes: { crew: 14 } }, "bob");
  // Based on version 1, merged into version 2 by the default fieldMerge(): the delta goes from 2 to 3.
  expect(await request(writer, "document:update", { ...doc, baseVersion: 1, changes: { weather: "wind" } })).toMatchObject({ status: "merged" });
  await waitFor(() => watched.length === 2);
  expect(watched.map(({ version, ...update }) => ({ version, baseVersion: "baseVersion" in update ? update.baseVersion : null, delta: "delta" in update ? update.delta : null }))).toEqual([
    { version: 2, baseVersion: 1, delta: { set: { crew: 14 } } },
    { version: 3, baseVersion: 2, delta: { set: { weather: "wind" } } },
  ]);
  watcher.close();
  writer.close();
});

test("a rollback sends the fields it restored as a delta from the version it replaced", async () => {
  server = await startTestServer({ authorize: () => true });
  await seed();
  await server.engine.documents.update("acme", doc.type, doc.id, { baseVersion: 1, changes: { weather: "sun", crew: null, inspector: "Dana" } });
  const watcher = await connectAs(server.url, carol);
  await request(watcher, "document:watch", doc);
  const watched = collect<DocumentUpdatedPayload>(watcher, "document:updated");
  await server.engine.documents.rollback("acme", doc.type, doc.id, 1);
  await waitFor(() => watched.length === 1);
  expect(watched[0]).toMatchObject({ version: 3, baseVersion: 2, delta: { set: { weather: "rain", crew: 12 }, unset: ["inspector"] } });
  watcher.close();
});

test("the whole document goes when the delta would not save enough: a small document, a creation, a rewrite of nearly every byte", async () => {
  server = await startTestServer({ authorize: () => true });
  const watcher = await connectAs(server.url, carol);
  await request(watcher, "document:watch", doc);
  const watched = collect<DocumentUpdatedPayload>(watcher, "document:updated");
  await seed({ title: "Riverside, 12 June", notes });
  await server.engine.documents.update("acme", doc.type, doc.id, { baseVersion: 1, changes: { notes: `${notes}Crane passed.` } });
  await server.engine.documents.update("acme", doc.type, doc.id, { baseVersion: 2, changes: { notes: "short" } });
  await server.engine.documents.update("acme", doc.type, doc.id, { baseVersion: 3, changes: { title: "Riverside, 13 June" } });
  await waitFor(() => watched.length === 4);
  // Created (no version before), nearly all of it rewritten, then under DOCUMENT_DELTA_MIN_SAVING_BYTES in all.
  expect(watched.map((update) => ("delta" in update ? "delta" : "whole"))).toEqual(["whole", "whole", "whole", "whole"]);
  expect(watched[3]).toMatchObject({ version: 4, data: { title: "Riverside, 13 June", notes: "short" } });
  expect(DOCUMENT_DELTA_MIN_SAVING_BYTES).toBeGreaterThan(JSON.stringify(watched[3]!).length);
  watcher.close();
});

test("a __proto__ field travels in a delta as data", async () => {
  server = await startTestServer({ authorize: () => true });
  await seed();
  const watcher = await connectAs(server.url, carol);
  await request(watcher, "document:watch", doc);
  const watched = collect<DocumentUpdatedPayload>(watcher, "document:updated");
  await server.engine.documents.update("acme", doc.type, doc.id, { baseVersion: 1, changes: JSON.parse('{"__proto__": {"polluted": true}}') });
  await waitFor(() => watched.length === 1);
  const update = watched[0]!;
  expect("delta" in update && Object.hasOwn(update.delta.set!, "__proto__")).toBe(true);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  watcher.close();
});

test("a rollback that removes or restores a __proto__ field of {} says so: the prototype is never read as the field", async () => {
  server = await startTestServer({ authorize: () => true });
  await seed();
  await server.engine.documents.update("acme", doc.type, doc.id, { baseVersion: 1, changes: JSON.parse('{"__proto__": {}, "crew": 13}') });
  const watcher = await connectAs(server.url, carol);
  await request(watcher, "document:watch", doc);
  const watched = collect<DocumentUpdatedPayload>(watcher, "document:updated");
  // Version 1 has no such field: read through the prototype, `Object.prototype` would equal {} and the field would not count.
  await server.engine.documents.rollback("acme", doc.type, doc.id, 1);
  await server.engine.documents.rollback("acme", doc.type, doc.id, 2);
  await waitFor(() => watched.length === 2);
  expect(watched[0]).toMatchObject({ version: 3, changedFields: expect.arrayContaining(["__proto__", "crew"]), delta: { unset: ["__proto__"] } });
  const restored = watched[1]!;
  expect(restored.changedFields).toEqual(expect.arrayContaining(["__proto__", "crew"]));
  expect("delta" in restored && Object.hasOwn(restored.delta.set!, "__proto__")).toBe(true);
  watcher.close();
});
