import "reflect-metadata";
import { Body, Controller, Delete, HttpCode, Inject, Injectable, Module, Param, Post } from "@nestjs/common";
import type { ErrorPayload, TopicDropped } from "@truss/core";
import { RealtimeModule, RealtimeService } from "@truss/nestjs";
import { collect, connectAs, jsonRequest, request, sleep, testAuth, waitFor } from "@truss/test-utils";
import { afterEach, describe, expect, test } from "vitest";
import { startNest, type RunningApp } from "./app.js";

const alicePhone = { userId: "alice", companyId: "acme", deviceId: "phone" };
const aliceTablet = { userId: "alice", companyId: "acme", deviceId: "tablet" };
const acmeBob = { userId: "bob", companyId: "acme" };
const acmeCarol = { userId: "carol", companyId: "acme" };
const globexAlice = { userId: "alice", companyId: "globex" };
const globexEve = { userId: "eve", companyId: "globex" };

/** Who works on which project, per company: the app's own data, which the policy reads. */
@Injectable()
class Crews {
  private readonly members = new Map([
    ["acme/p1", new Set(["alice", "bob"])],
    ["globex/p1", new Set(["eve"])],
  ]);

  has(companyId: string, projectId: string | undefined, userId: string): boolean {
    return this.members.get(`${companyId}/${projectId}`)?.has(userId) === true;
  }

  remove(companyId: string, projectId: string, userId: string): void {
    this.members.get(`${companyId}/${projectId}`)?.delete(userId);
  }
}

@Module({ providers: [Crews], exports: [Crews] })
class CrewsModule {}

@Controller("companies/:companyId")
class AccessController {
  constructor(
    @Inject(RealtimeService) private readonly realtime: RealtimeService,
    @Inject(Crews) private readonly crews: Crews,
  ) {}

  @Post("users/:userId/revoke")
  @HttpCode(200)
  revoke(@Param("companyId") companyId: string, @Param("userId") userId: string) {
    return this.realtime.disconnectUser(companyId, userId);
  }

  @Post("projects/:id/site-reports")
  fileSiteReport(@Param("companyId") companyId: string, @Param("id") id: string, @Body() body: { summary: string }) {
    const report = { projectId: id, summary: body.summary };
    this.realtime.toTopic(companyId, `project:${id}`).emit("site-report:filed", report);
    return report;
  }

  @Delete("projects/:id/crew/:userId")
  removeFromCrew(@Param("companyId") companyId: string, @Param("id") id: string, @Param("userId") userId: string) {
    this.crews.remove(companyId, id, userId);
    return this.realtime.unsubscribeUser(companyId, userId, `project:${id}`);
  }
}

/** The policy is built from an injected provider, as an app's would be from its repositories. */
@Module({
  imports: [
    CrewsModule,
    RealtimeModule.forRootAsync({
      imports: [CrewsModule],
      inject: [Crews],
      useFactory: (crews: Crews) => ({
        auth: testAuth(),
        logger: false,
        topics: { patterns: ["project:{projectId}"] },
        authorize: (principal, request) =>
          request.action !== "topic:subscribe" || crews.has(principal.companyId, request.params.projectId, principal.userId),
      }),
    }),
  ],
  controllers: [AccessController],
})
class AppModule {}

let running: RunningApp | undefined;
afterEach(async () => {
  await running?.app.close();
  running = undefined;
});

async function start(): Promise<RunningApp> {
  running = await startNest(AppModule);
  return running;
}

describe("revoking through RealtimeService", () => {
  test("disconnectUser closes every device of the user with ACCESS_REVOKED and answers how many", async () => {
    const { url } = await start();
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
    const { url } = await start();
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
    const { url } = await start();
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
