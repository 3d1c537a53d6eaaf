import { afterEach, expect, test } from "vitest";
import { connectAs, request, startTestServer, type TestServer } from "@truss/test-utils";
import { memoryDocumentStore } from "@truss/core";

let server: TestServer;
afterEach(() => server?.close());

const mallory = { userId: "mallory", companyId: "acme" };
const ann = { userId: "ann", companyId: "globex" };

test("a document:update past the company's document quota is answered QUOTA_EXCEEDED and stores nothing", async () => {
  server = await startTestServer({ documents: memoryDocumentStore({ maxDocumentsPerCompany: 3 }) });
  const socket = await connectAs(server.url, mallory);
  for (const id of ["n-1", "n-2", "n-3"]) {
    expect(await request(socket, "document:update", { type: "note", id, baseVersion: 0, changes: { text: id } })).toMatchObject({ ok: true, status: "applied" });
  }
  const refused = await request(socket, "document:update", { type: "note", id: "n-4", baseVersion: 0, changes: { text: "n-4" }, mutationId: "m-4" });
  expect(refused).toMatchObject({ ok: false, error: { code: "QUOTA_EXCEEDED" } });
  expect(refused.error.message).toMatch(/3 documents/);
  await expect(server.engine.documents.get("acme", "note", "n-4")).rejects.toMatchObject({ code: "NOT_FOUND" });
  // The same connection keeps working on what the company has, and other companies are not affected.
  expect(await request(socket, "document:update", { type: "note", id: "n-1", baseVersion: 1, changes: { text: "edited" } })).toMatchObject({ ok: true });
  const other = await connectAs(server.url, ann);
  expect(await request(other, "document:update", { type: "note", id: "n-4", baseVersion: 0, changes: { text: "ann" } })).toMatchObject({ ok: true });
  socket.close();
  other.close();
});

test("engine.documents.update rejects with the TrussError when the company's bytes are used up", async () => {
  server = await startTestServer({ documents: memoryDocumentStore({ maxBytesPerCompany: 10_000 }) });
  const text = "x".repeat(6_000);
  await server.engine.documents.update("acme", "note", "big-1", { baseVersion: 0, changes: { text } });
  await expect(server.engine.documents.update("acme", "note", "big-2", { baseVersion: 0, changes: { text } })).rejects.toMatchObject({
    name: "TrussError",
    code: "QUOTA_EXCEEDED",
  });
  // Editing what is there still works, however often: its history makes room.
  for (let version = 1; version <= 5; version++) {
    await server.engine.documents.update("acme", "note", "big-1", { baseVersion: version, changes: { text: `${text}${version}` } });
  }
  expect((await server.engine.documents.get("acme", "note", "big-1")).version).toBe(6);
});

test("small document:updates with long mutation ids are answered QUOTA_EXCEEDED once their records fill the company's bytes", async () => {
  server = await startTestServer({ documents: memoryDocumentStore({ maxBytesPerCompany: 8_000, maxHistory: 1 }), limits: { eventsPerSecond: 1_000, userEventsPerSecond: 1_000 } });
  const socket = await connectAs(server.url, mallory);
  let version = 0;
  let refused: { ok: boolean; error?: { code: string } } | undefined;
  while (!refused && version < 200) {
    const answer = await request(socket, "document:update", { type: "note", id: "n", baseVersion: version, changes: { v: version }, mutationId: `${version}-`.padEnd(128, "m") });
    if (answer.ok) version = answer.document.version;
    else refused = answer;
  }
  expect(refused).toMatchObject({ ok: false, error: { code: "QUOTA_EXCEEDED" } });
  expect(version).toBeLessThan(30);
  expect((await server.engine.documents.get("acme", "note", "n")).version).toBe(version);
  socket.close();
});
