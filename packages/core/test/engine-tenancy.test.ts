import { afterEach, expect, test } from "vitest";
import { collect, connectAs, createClient, open, request, sleep, startTestServer, waitFor, type TestServer } from "@truss/test-utils";

let server: TestServer;
afterEach(() => server?.close());

const acmeAlice = { userId: "alice", companyId: "acme" };
const acmeBob = { userId: "bob", companyId: "acme" };
const globexEve = { userId: "eve", companyId: "globex" };

test("a client of company A never receives company B's broadcasts, documents, presence or inbox", async () => {
  server = await startTestServer();
  const eve = await connectAs(server.url, globexEve);
  // Eve follows her company's presence, so acme's arrivals would reach her if presence leaked.
  expect(await request(eve, "presence:list", { follow: true })).toMatchObject({ ok: true });
  const eveSaw: string[] = [];
  eve.onAny((event) => eveSaw.push(event));
  const alice = await connectAs(server.url, acmeAlice);
  const aliceProjects = collect(alice, "project:updated");

  server.engine.toCompany("acme").emit("project:updated", { id: "p1", name: "Tower B" });
  await server.engine.toUser("acme", "alice").emit("expense:approved", { id: "e1" });
  const bob = await connectAs(server.url, acmeBob);
  const created = await request(bob, "document:update", { type: "project", id: "p1", baseVersion: 0, changes: { name: "Tower B" } });
  expect(created.ok).toBe(true);

  await waitFor(() => aliceProjects.length === 1, { message: "acme broadcast" });
  await sleep(100);
  expect(eveSaw).toEqual([]);

  // Crafted ids: eve names acme's document and acme's user; she gets nothing of theirs.
  const foreignDoc = await request(eve, "document:get", { type: "project", id: "p1" });
  expect(foreignDoc).toEqual({ ok: false, error: { code: "NOT_FOUND", message: expect.any(String) } });
  const foreignHistory = await request(eve, "document:history", { type: "project", id: "p1" });
  expect(foreignHistory.ok).toBe(false);
  const overwrite = await request(eve, "document:update", { type: "project", id: "p1", baseVersion: 1, changes: { name: "pwned" } });
  expect(overwrite.error.code).toBe("NOT_FOUND");
  expect((await server.engine.documents.get("acme", "project", "p1")).data).toEqual({ name: "Tower B" });

  const evePresence = await request(eve, "presence:list", {});
  expect(evePresence.users.map((u: { userId: string }) => u.userId)).toEqual(["eve"]);

  // Room names are never taken from the client.
  const join = await request(eve, "join", { room: "company:acme" });
  expect(join.error.code).toBe("UNKNOWN_EVENT");
  server.engine.toCompany("acme").emit("project:updated", { id: "p2" });
  await waitFor(() => aliceProjects.length === 2);
  await sleep(50);
  expect(eveSaw).toEqual([]);
  for (const socket of [eve, alice, bob]) socket.close();
});

test("a device id that claims another user's device gets only its own user's inbox", async () => {
  server = await startTestServer();
  await server.engine.toUser("acme", "alice").emit("expense:approved", { id: "secret" });
  const eve = createClient(server.url, globexEve, { deviceId: "alice-phone" });
  const inbox = collect(eve, "inbox:message");
  await open(eve);
  await sleep(150);
  expect(inbox).toEqual([]);
  eve.close();
});
