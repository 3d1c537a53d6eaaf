import { afterEach, expect, test } from "vitest";
import { collect, connectAs, request, sleep, startTestServer, waitFor, type TestServer } from "@truss/test-utils";
import { memoryDocumentStore } from "@truss/core";
import type { DocumentUpdated } from "@truss/protocol";

let server: TestServer;
afterEach(() => server?.close());

const alice = { userId: "alice", companyId: "acme" };
const bob = { userId: "bob", companyId: "acme" };
const doc = { type: "site-report", id: "r-1" };

async function seed() {
  await server.engine.documents.update("acme", doc.type, doc.id, { baseVersion: 0, changes: { weather: "dry", crew: 4 } });
}

test("a repeated mutation answers with the first commit's version, commits nothing new, and is not announced again by the node that announced it", async () => {
  server = await startTestServer();
  await seed();
  const a = await connectAs(server.url, alice);
  const watcher = await connectAs(server.url, bob);
  const heard = collect<DocumentUpdated>(watcher, "document:updated");
  const update = { ...doc, baseVersion: 1, changes: { crew: 6 }, mutationId: "m-0001" };
  const first = await request(a, "document:update", update);
  expect(first).toMatchObject({ ok: true, status: "applied", document: { version: 2, data: { crew: 6 } } });
  expect(first.duplicate).toBeUndefined();
  // Sent again as a retry after a lost ack would be: same base, same id.
  const again = await request(a, "document:update", update);
  expect(again).toMatchObject({ ok: true, status: "applied", duplicate: true, document: { version: 2, data: { crew: 6 } } });
  // Even based on the version it made itself.
  const rebased = await request(a, "document:update", { ...update, baseVersion: 2 });
  expect(rebased).toMatchObject({ duplicate: true, document: { version: 2 } });
  const history = await server.engine.documents.history("acme", doc.type, doc.id);
  expect(history.map((version) => version.version)).toEqual([2, 1]);
  // This node announced the commit; its repeats here are not announced again.
  await waitFor(() => heard.length === 1);
  await sleep(50);
  expect(heard).toEqual([{ ...doc, version: 2, data: { weather: "dry", crew: 6 }, updatedBy: "alice", changedFields: ["crew"] }]);
  expect(await server.engine.metrics()).toMatch(/truss_document_mutations_total\{outcome="duplicate"\} 2/);
  expect(await server.engine.metrics()).toMatch(/truss_document_mutations_total\{outcome="committed"\} 1/);
  a.close();
  watcher.close();
});

test("a repeat that would now conflict is still recognised as committed", async () => {
  server = await startTestServer();
  await seed();
  const a = await connectAs(server.url, alice);
  const b = await connectAs(server.url, bob);
  const update = { ...doc, baseVersion: 1, changes: { weather: "rain" }, mutationId: "m-rain" };
  expect(await request(a, "document:update", update)).toMatchObject({ status: "applied", document: { version: 2 } });
  // Someone else changes the same field afterwards: a fresh write of Alice's change on base 1 would conflict.
  expect(await request(b, "document:update", { ...doc, baseVersion: 2, changes: { weather: "snow" } })).toMatchObject({ status: "applied" });
  const again = await request(a, "document:update", update);
  expect(again).toMatchObject({ status: "applied", duplicate: true, document: { version: 2, data: { weather: "rain" } } });
  expect((await server.engine.documents.get("acme", doc.type, doc.id)).data.weather).toBe("snow");
  a.close();
  b.close();
});

test("a repeat of a version since superseded is answered with it but not announced again", async () => {
  server = await startTestServer();
  await seed();
  const a = await connectAs(server.url, alice);
  const b = await connectAs(server.url, bob);
  const watcher = await connectAs(server.url, { userId: "carol", companyId: "acme" });
  const heard = collect<DocumentUpdated>(watcher, "document:updated");
  const update = { ...doc, baseVersion: 1, changes: { crew: 6 }, mutationId: "m-crew" };
  expect(await request(a, "document:update", update)).toMatchObject({ document: { version: 2 } });
  expect(await request(b, "document:update", { ...doc, baseVersion: 2, changes: { weather: "wet" } })).toMatchObject({ document: { version: 3 } });
  expect(await request(a, "document:update", update)).toMatchObject({ duplicate: true, document: { version: 2, data: { crew: 6, weather: "dry" } } });
  await waitFor(() => heard.length === 2);
  await sleep(50);
  expect(heard.map((announced) => announced.version)).toEqual([2, 3]);
  for (const socket of [a, b, watcher]) socket.close();
});

/** The memory store, whose next compare-and-set commits and then fails, as when a connection drops after the database acted. */
function losingNextAnswer() {
  const store = memoryDocumentStore();
  let lose = false;
  const losing: typeof store = Object.assign(Object.create(store) as typeof store, {
    async compareAndSet(...args: Parameters<typeof store.compareAndSet>) {
      const result = await store.compareAndSet(...args);
      if (!lose) return result;
      lose = false;
      throw new Error("connection reset after the commit");
    },
  });
  return { store: losing, loseNextAnswer: () => void (lose = true) };
}

const resenders: Array<[string, (update: { baseVersion: number; changes: Record<string, unknown>; mutationId: string }) => Promise<unknown>]> = [
  ["the writer's socket (as @truss/client's outbox resends)", async (update) => request(await connectAs(server.url, alice), "document:update", { ...doc, ...update })],
  [
    "a route calling engine.documents.update with a mutationId",
    (update) =>
      server.engine.documents.update("acme", doc.type, doc.id, update, "alice").then(
        (result) => ({ ok: true, ...result }),
        (error: { code?: string }) => ({ ok: false, error: { code: error.code } }),
      ),
  ],
];

test.each(resenders)("a commit whose store call failed after the store acted reaches the watchers when it is resent: %s", async (_name, send) => {
  const { store, loseNextAnswer } = losingNextAnswer();
  server = await startTestServer({ documents: store });
  await seed();
  const watcher = await connectAs(server.url, bob);
  const heard = collect<DocumentUpdated>(watcher, "document:updated");
  const update = { baseVersion: 1, changes: { crew: 7 }, mutationId: "m-lost" };
  loseNextAnswer();
  expect(await send(update)).toMatchObject({ ok: false, error: { code: "STORE_UNAVAILABLE" } });
  // Committed, and nobody told.
  expect((await server.engine.documents.get("acme", doc.type, doc.id)).version).toBe(2);
  await sleep(100);
  expect(heard).toEqual([]);
  // Resent: the answer is the commit that landed, and the watchers hear of it.
  expect(await send(update)).toMatchObject({ ok: true, duplicate: true, document: { version: 2, data: { crew: 7 } } });
  await waitFor(() => heard.length === 1);
  expect(heard[0]).toEqual({ ...doc, version: 2, data: { weather: "dry", crew: 7 }, updatedBy: "alice", changedFields: ["crew"] });
  expect((await server.engine.documents.history("acme", doc.type, doc.id)).map((version) => version.version)).toEqual([2, 1]);
  watcher.close();
});

test("the same mutation sent by two sockets at once commits once", async () => {
  server = await startTestServer();
  await seed();
  const tabs = await Promise.all(Array.from({ length: 8 }, (_, index) => connectAs(server.url, alice, { deviceId: `tab-${index}` })));
  const update = { ...doc, baseVersion: 1, changes: { crew: 9 }, mutationId: "m-shared" };
  const results = await Promise.all(tabs.map((tab) => request(tab, "document:update", update)));
  expect(results.every((result) => result.ok && result.document.version === 2)).toBe(true);
  expect(results.filter((result) => result.duplicate)).toHaveLength(7);
  expect((await server.engine.documents.get("acme", doc.type, doc.id)).version).toBe(2);
  for (const tab of tabs) tab.close();
});

test("mutation ids are per user: another user's same id is a new write", async () => {
  server = await startTestServer();
  await seed();
  const a = await connectAs(server.url, alice);
  const b = await connectAs(server.url, bob);
  await request(a, "document:update", { ...doc, baseVersion: 1, changes: { crew: 5 }, mutationId: "same" });
  const other = await request(b, "document:update", { ...doc, baseVersion: 2, changes: { crew: 7 }, mutationId: "same" });
  expect(other).toMatchObject({ status: "applied", document: { version: 3 } });
  expect(other.duplicate).toBeUndefined();
  a.close();
  b.close();
});

test("a mutation older than the window is refused MUTATION_EXPIRED, not applied again", async () => {
  server = await startTestServer({ documents: memoryDocumentStore({ mutationTtlMs: 60_000 }) });
  await seed();
  const a = await connectAs(server.url, alice);
  const stale = await request(a, "document:update", { ...doc, baseVersion: 1, changes: { crew: 2 }, mutationId: "m-old", mutationAgeMs: 120_000 });
  expect(stale).toMatchObject({ ok: false, error: { code: "MUTATION_EXPIRED" } });
  expect((await server.engine.documents.get("acme", doc.type, doc.id)).version).toBe(1);
  // A recent one goes through, and its repeat is recognised even when it arrives later with a larger age.
  const fresh = await request(a, "document:update", { ...doc, baseVersion: 1, changes: { crew: 3 }, mutationId: "m-new", mutationAgeMs: 5_000 });
  expect(fresh).toMatchObject({ status: "applied", document: { version: 2 } });
  expect(await request(a, "document:update", { ...doc, baseVersion: 1, changes: { crew: 3 }, mutationId: "m-new", mutationAgeMs: 30_000 })).toMatchObject({
    duplicate: true,
    document: { version: 2 },
  });
  expect(await server.engine.metrics()).toMatch(/truss_document_mutations_total\{outcome="expired"\} 1/);
  a.close();
});

test("a mutation pushed out of its writer's cap is refused, not reapplied", async () => {
  server = await startTestServer({ documents: memoryDocumentStore({ maxMutations: 2 }) });
  await seed();
  const a = await connectAs(server.url, alice);
  for (const [index, id] of ["m1", "m2", "m3"].entries()) {
    expect(await request(a, "document:update", { ...doc, baseVersion: index + 1, changes: { crew: index }, mutationId: id })).toMatchObject({ status: "applied" });
    // The records are ordered by time; the window's edge is drawn by it.
    await sleep(1100);
  }
  const replay = await request(a, "document:update", { ...doc, baseVersion: 1, changes: { crew: 0 }, mutationId: "m1", mutationAgeMs: 3300 });
  expect(replay).toMatchObject({ ok: false, error: { code: "MUTATION_EXPIRED" } });
  expect(await request(a, "document:update", { ...doc, baseVersion: 2, changes: { crew: 1 }, mutationId: "m2", mutationAgeMs: 2200 })).toMatchObject({ duplicate: true });
  expect((await server.engine.documents.get("acme", doc.type, doc.id)).version).toBe(4);
  a.close();
});

test("another user's commits past the cap never expire a user's offline edit", async () => {
  server = await startTestServer({ documents: memoryDocumentStore({ maxMutations: 3 }) });
  await seed();
  const a = await connectAs(server.url, alice);
  const b = await connectAs(server.url, bob);
  // Alice's edit was made offline a minute ago; Bob commits cap + 1 mutations meanwhile.
  for (let index = 0; index < 4; index++) {
    expect(await request(b, "document:update", { ...doc, baseVersion: index + 1, changes: { crew: index }, mutationId: `b-${index}` })).toMatchObject({ status: "applied" });
  }
  const offline = await request(a, "document:update", { ...doc, baseVersion: 1, changes: { weather: "fog" }, mutationId: "a-offline", mutationAgeMs: 60_000 });
  expect(offline).toMatchObject({ ok: true, status: "merged", document: { version: 6, data: { weather: "fog", crew: 3 } } });
  a.close();
  b.close();
});

test.each([
  ["an empty id", { mutationId: "" }],
  ["a number", { mutationId: 42 }],
  ["an id past 128 characters", { mutationId: "x".repeat(129) }],
  ["a negative age", { mutationId: "ok", mutationAgeMs: -1 }],
  ["an age without an id", { mutationAgeMs: 10 }],
  ["a fractional age", { mutationId: "ok", mutationAgeMs: 1.5 }],
])("a document:update with %s is refused INVALID_PAYLOAD and changes nothing", async (_, fields) => {
  server = await startTestServer();
  await seed();
  const a = await connectAs(server.url, alice);
  const answer = await request(a, "document:update", { ...doc, baseVersion: 1, changes: { crew: 1 }, ...fields });
  expect(answer).toMatchObject({ ok: false, error: { code: "INVALID_PAYLOAD" } });
  expect((await server.engine.documents.get("acme", doc.type, doc.id)).version).toBe(1);
  a.close();
});

test("a resend of a write committed before its writer lost write access is answered as the commit it was; a new write is refused", async () => {
  let mayWrite = true;
  server = await startTestServer({ authorize: (_principal, request) => request.action !== "document:write" || mayWrite });
  await server.engine.documents.update("acme", doc.type, doc.id, { baseVersion: 0, changes: { crew: 5 } });
  const a = await connectAs(server.url, alice);
  const update = { ...doc, baseVersion: 1, changes: { crew: 6 }, mutationId: "m-before-revoke" };
  expect(await request(a, "document:update", update)).toMatchObject({ ok: true, status: "applied", document: { version: 2 } });
  // The answer was lost; meanwhile the user's write access went.
  mayWrite = false;
  expect(await request(a, "document:update", update)).toMatchObject({ ok: true, status: "applied", duplicate: true, document: { version: 2, data: { crew: 6 } } });
  expect(await request(a, "document:update", { ...update, mutationId: "m-after-revoke", changes: { crew: 7 } })).toMatchObject({ ok: false, error: { code: "FORBIDDEN" } });
  expect(await request(a, "document:update", { ...update, mutationId: undefined, changes: { crew: 8 } })).toMatchObject({ ok: false, error: { code: "FORBIDDEN" } });
  expect((await server.engine.documents.get("acme", doc.type, doc.id)).version).toBe(2);
});
