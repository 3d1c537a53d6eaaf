import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { AuthorizePolicy, ErrorPayload, RealtimeEngine, TopicDropped } from "@truss/core";
import { attachRealtime, realtimeHandler } from "@truss/express";
import { collect, connectAs, jsonRequest, request, sleep, testAuth, waitFor } from "@truss/test-utils";
import express from "express";
import { afterEach, describe, expect, test } from "vitest";

const alicePhone = { userId: "alice", companyId: "acme", deviceId: "phone" };
const aliceTablet = { userId: "alice", companyId: "acme", deviceId: "tablet" };
const acmeBob = { userId: "bob", companyId: "acme" };
const acmeCarol = { userId: "carol", companyId: "acme" };
const globexAlice = { userId: "alice", companyId: "globex" };
const globexEve = { userId: "eve", companyId: "globex" };

interface TestApp {
  server: Server;
  /** What `attachRealtime` returned. */
  realtime: RealtimeEngine;
  /** Who works on which project, by `company/project`: the policy reads it. */
  crews: Map<string, Set<string>>;
  url: string;
  close(): Promise<void>;
}

let running: TestApp | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

/**
 * An ERP-like app whose project crews decide who hears a project's topic:
 * the policy reads the crews, and the routes change them and tell the engine
 * through `req.realtime`.
 */
async function startApp(): Promise<TestApp> {
  const crews = new Map([
    ["acme/p1", new Set(["alice", "bob"])],
    ["globex/p1", new Set(["eve"])],
  ]);
  const authorize: AuthorizePolicy = (principal, request) =>
    request.action !== "topic:subscribe" || crews.get(`${principal.companyId}/${request.params.projectId}`)?.has(principal.userId) === true;

  const app = express();
  const server = createServer(app);
  const realtime = attachRealtime(server, { auth: testAuth(), logger: false, authorize, topics: { patterns: ["project:{projectId}"] } });
  app.use(express.json());
  app.use(realtimeHandler(realtime));
  app.post("/companies/:companyId/users/:userId/revoke", async (req, res) => {
    res.json(await req.realtime.disconnectUser(req.params.companyId, req.params.userId));
  });
  app.post("/companies/:companyId/projects/:id/site-reports", (req, res) => {
    const report = { projectId: req.params.id, summary: (req.body as { summary: string }).summary };
    req.realtime.toTopic(req.params.companyId, `project:${req.params.id}`).emit("site-report:filed", report);
    res.status(201).json(report);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  running = {
    server,
    realtime,
    crews,
    url: `http://127.0.0.1:${port}`,
    async close() {
      await realtime.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return running;
}

describe("revoking from route handlers (req.realtime)", () => {
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
});

describe("revoking outside a request (the engine attachRealtime returned)", () => {
  test("unsubscribeUser ends the user's subscription on every device, and the policy keeps it ended", async () => {
    const { url, realtime, crews } = await startApp();
    const phone = await connectAs(url, alicePhone);
    const tablet = await connectAs(url, aliceTablet);
    const bob = await connectAs(url, acmeBob);
    for (const socket of [phone, tablet, bob]) expect(await request(socket, "topic:subscribe", { topic: "project:p1" })).toMatchObject({ ok: true });
    const dropped = [phone, tablet].map((socket) => collect<TopicDropped>(socket, "topic:dropped"));
    const aliceSaw = [phone, tablet].map((socket) => collect(socket, "site-report:filed"));
    const bobSaw = collect(bob, "site-report:filed");

    // A crew change made by a background job: the policy's data first, then the live sockets.
    crews.get("acme/p1")!.delete("alice");
    expect(await realtime.unsubscribeUser("acme", "alice", "project:p1")).toEqual({ sockets: 2, complete: true });

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
