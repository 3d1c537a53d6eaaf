import { afterEach, expect, test } from "vitest";
import { connectAs, request, sleep, startTestServer, type TestServer } from "@truss/test-utils";
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

test("mutation records never lock a company out: past its bytes the oldest are forgotten, and a resend of one is refused MUTATION_EXPIRED, not applied again", async () => {
  server = await startTestServer({ documents: memoryDocumentStore({ maxBytesPerCompany: 8_000, maxHistory: 1 }) });
  const socket = await connectAs(server.url, mallory);
  const mutationId = (index: number) => `${index}-`.padEnd(128, "m");
  const sentAt: number[] = [];
  // 30 small updates, each with a mutation id: their records alone would hold about 16 KB, twice the quota. They are
  // 100 ms apart because the engine takes a mutation to be made up to a second before it arrived: one made within a
  // second after a record forgotten early is taken for a mutation that record may have been, and refused as expired.
  for (let index = 0; index < 30; index++) {
    if (index > 0) await sleep(100);
    sentAt.push(Date.now());
    const answer = await request(socket, "document:update", { type: "note", id: "n", baseVersion: index, changes: { v: index }, mutationId: mutationId(index) });
    expect(answer, `update ${index}`).toMatchObject({ ok: true, status: "applied", document: { version: index + 1 } });
  }
  // The document's own data is a few bytes of the 8,000.
  const note = await server.engine.documents.get("acme", "note", "n");
  expect(Buffer.byteLength(JSON.stringify(note.data))).toBeLessThan(20);
  // Another user of the company writes too, with a mutation id.
  const colleague = await connectAs(server.url, { userId: "carol", companyId: "acme" });
  expect(await request(colleague, "document:update", { type: "note", id: "other", baseVersion: 0, changes: { v: 1 }, mutationId: "c-1" })).toMatchObject({ ok: true });
  const resend = (index: number) =>
    request(socket, "document:update", { type: "note", id: "n", baseVersion: index, changes: { v: index }, mutationId: mutationId(index), mutationAgeMs: Date.now() - sentAt[index]! });
  // The latest mutation is still on record: its resend is a duplicate.
  expect(await resend(29)).toMatchObject({ ok: true, duplicate: true, document: { version: 30 } });
  // The first was forgotten to make room: its resend is refused, never committed a second time.
  expect(await resend(0)).toMatchObject({ ok: false, error: { code: "MUTATION_EXPIRED" } });
  expect((await server.engine.documents.get("acme", "note", "n")).version).toBe(30);
  socket.close();
  colleague.close();
});
