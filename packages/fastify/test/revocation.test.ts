import type { AuthorizePolicy, ErrorPayload, TopicDropped } from "@truss/core";
import { trussFastify } from "@truss/fastify";
import { collect, connectAs, jsonRequest, request, sleep, testAuth, waitFor } from "@truss/test-utils";
import Fastify, { type FastifyInstance } from "fastify";
import { afterEach, describe, expect, test } from "vitest";

const alicePhone = { userId: "alice", companyId: "acme", deviceId: "phone" };
const aliceTablet = { userId: "alice", companyId: "acme", deviceId: "tablet" };
const acmeBob = { userId: "bob", companyId: "acme" };
const acmeCarol = { userId: "carol", companyId: "acme" };
const globexAlice = { userId: "alice", companyId: "globex" };
const globexEve = { userId: "eve", companyId: "globex" };

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

/**
 * An ERP-like app whose project crews decide who hears a project's topic:
 * the policy reads the crews, and the routes change them and tell the engine.
 */
async function startApp(): Promise<{ app: FastifyInstance; url: string }> {
  const crews = new Map([
    ["acme/p1", new Set(["alice", "bob"])],
    ["globex/p1", new Set(["eve"])],
  ]);
  const authorize: AuthorizePolicy = (principal, request) =>
    request.action !== "topic:subscribe" || crews.get(`${principal.companyId}/${request.params.projectId}`)?.has(principal.userId) === true;

  const instance = Fastify();
  await instance.register(trussFastify, { auth: testAuth(), logger: false, authorize, topics: { patterns: ["project:{projectId}"] } });
  instance.post<{ Params: { companyId: string; userId: string } }>("/companies/:companyId/users/:userId/revoke", (request) =>
    instance.realtime.disconnectUser(request.params.companyId, request.params.userId),
  );
  instance.post<{ Params: { companyId: string; id: string }; Body: { summary: string } }>(
    "/companies/:companyId/projects/:id/site-reports",
    async (request, reply) => {
      const report = { projectId: request.params.id, summary: request.body.summary };
      instance.realtime.toTopic(request.params.companyId, `project:${request.params.id}`).emit("site-report:filed", report);
      return reply.code(201).send(report);
    },
  );
  instance.delete<{ Params: { companyId: string; id: string; userId: string } }>("/companies/:companyId/projects/:id/crew/:userId", (request) => {
    const { companyId, id, userId } = request.params;
    crews.get(`${companyId}/${id}`)?.delete(userId);
    return instance.realtime.unsubscribeUser(companyId, userId, `project:${id}`);
  });
  const url = await instance.listen({ port: 0, host: "127.0.0.1" });
  app = instance;
  return { app: instance, url };
}

describe("revoking from route handlers", () => {
  test("disconnectUser closes every device of the user with ACCESS_REVOKED and answers how many", async () => {
    const { url } = await startApp();
    const phone = await connectAs(url, alicePhone);
    const tablet = await connectAs(url, aliceTablet);
    const bob = await connectAs(url, acmeBob);
    const namesake = await connectAs(url, globexAlice);
    const errors = [phone, tablet, bob, namesake].map((socket) => collect<ErrorPayload>(socket, "error"));
    const reasons = [phone, tablet].map((socket) => collect<string>(socket, "disconnect"));

    const response = await fetch(`${url}/companies/acme/users/alice/revoke`, { method: "POST" });

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ sockets: 2, complete: true });
    await waitFor(() => reasons.every((reason) => reason.length === 1), { message: "both of alice's disconnects" });
    expect(reasons).toEqual([["io server disconnect"], ["io server disconnect"]]);
    expect(errors.slice(0, 2).map((received) => received.map((error) => error.code))).toEqual([["ACCESS_REVOKED"], ["ACCESS_REVOKED"]]);
    await sleep(100);
    // Another user of the company and the same user id in another company stay.
    expect([bob.connected, namesake.connected]).toEqual([true, true]);
    expect(errors.slice(2)).toEqual([[], []]);
    bob.close();
    namesake.close();
  });

  test("toTopic reaches the topic's subscribers in that company, not the same topic in another company", async () => {
    const { url } = await startApp();
    const alice = await connectAs(url, alicePhone);
    const carol = await connectAs(url, acmeCarol);
    const eve = await connectAs(url, globexEve);
    expect(await request(alice, "topic:subscribe", { topic: "project:p1" })).toEqual({ ok: true, topic: "project:p1" });
    expect(await request(eve, "topic:subscribe", { topic: "project:p1" })).toEqual({ ok: true, topic: "project:p1" });
    // Carol is not on the crew: the policy refuses her.
    expect(await request(carol, "topic:subscribe", { topic: "project:p1" })).toMatchObject({ ok: false, error: { code: "FORBIDDEN" } });
    const aliceSaw = collect(alice, "site-report:filed");
    const othersSaw: string[] = [];
    for (const socket of [carol, eve]) socket.onAny((event: string) => othersSaw.push(event));

    const response = await fetch(`${url}/companies/acme/projects/p1/site-reports`, jsonRequest("POST", { summary: "Level 3 slab poured" }));

    expect(response.status).toBe(201);
    await waitFor(() => aliceSaw.length === 1, { message: "the topic's event" });
    expect(aliceSaw).toEqual([{ projectId: "p1", summary: "Level 3 slab poured" }]);
    await sleep(100);
    expect(othersSaw).toEqual([]);
    for (const socket of [alice, carol, eve]) socket.close();
  });

  test("unsubscribeUser ends the user's subscription on every device, and the policy keeps it ended", async () => {
    const { url } = await startApp();
    const phone = await connectAs(url, alicePhone);
    const tablet = await connectAs(url, aliceTablet);
    const bob = await connectAs(url, acmeBob);
    for (const socket of [phone, tablet, bob]) expect(await request(socket, "topic:subscribe", { topic: "project:p1" })).toMatchObject({ ok: true });
    const dropped = [phone, tablet].map((socket) => collect<TopicDropped>(socket, "topic:dropped"));
    const aliceSaw = [phone, tablet].map((socket) => collect(socket, "site-report:filed"));
    const bobSaw = collect(bob, "site-report:filed");

    const response = await fetch(`${url}/companies/acme/projects/p1/crew/alice`, { method: "DELETE" });

    expect(await response.json()).toEqual({ sockets: 2, complete: true });
    await waitFor(() => dropped.every((notices) => notices.length === 1), { message: "both topic:dropped notices" });
    for (const notices of dropped) expect(notices).toEqual([{ topic: "project:p1", error: { code: "ACCESS_REVOKED", message: expect.any(String) } }]);
    await fetch(`${url}/companies/acme/projects/p1/site-reports`, jsonRequest("POST", { summary: "Crane inspected" }));
    await waitFor(() => bobSaw.length === 1, { message: "bob's copy" });
    await sleep(100);
    expect(aliceSaw).toEqual([[], []]);
    expect([phone.connected, tablet.connected]).toEqual([true, true]);
    expect(await request(phone, "topic:subscribe", { topic: "project:p1" })).toMatchObject({ ok: false, error: { code: "FORBIDDEN" } });
    for (const socket of [phone, tablet, bob]) socket.close();
  });
});
