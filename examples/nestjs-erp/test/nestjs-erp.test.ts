import type { AddressInfo } from "node:net";
import type { INestApplication } from "@nestjs/common";
import { call, login as erpLogin } from "@truss/example-construction-erp/test-rest";
import { openSocket, request, subcontractorView, SUBCONTRACTOR_VIEW, subscribe, watch, type Device } from "@truss/example-construction-erp/test-sockets";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createNestErp } from "../src/bootstrap.js";

describe("the NestJS ERP", () => {
  let app: INestApplication;
  let url: string;
  const devices: Device[] = [];

  const login = async (email: string) => (await erpLogin(url, email)).token;
  const api = (token: string, method: string, path: string, body?: unknown) => call(url, token, method, `/api${path}`, body);

  /** A connected socket, subscribed to `topics`, with the log of every event it received since before its handshake. */
  const open = async (token: string, deviceId: string, ...topics: string[]) => {
    const device = await openSocket(url, token, deviceId);
    devices.push(device);
    await subscribe(device.socket, ...topics);
    return device;
  };

  beforeAll(async () => {
    app = await createNestErp({ jwtSecret: "nestjs-erp-test-secret", logger: false }, { logger: false });
    await app.listen(0, "127.0.0.1");
    url = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const { socket } of devices) socket.disconnect();
    await app?.close();
  });

  test("a REST budget change reaches the project's subscribers as project:updated, and not the other company's", async () => {
    const [alice, ben, gus] = await Promise.all([login("alice@northwind.test"), login("ben@northwind.test"), login("gus@globex.test")]);
    const northwind = await open(alice, "alice-laptop", "project:p-elm");
    const globex = await open(gus, "gus-laptop", "project:p-hangar");

    expect((await api(ben, "PATCH", "/projects/p-elm", { budget: 1_250_000 })).status).toBe(200);
    await expect.poll(() => northwind.log.of("project:updated"), { timeout: 5000 }).toEqual([expect.objectContaining({ id: "p-elm", budget: 1_250_000 })]);

    expect((await api(gus, "PATCH", "/projects/p-hangar", { budget: 5_600_000 })).status).toBe(200);
    await expect.poll(() => globex.log.of("project:updated"), { timeout: 5000 }).toEqual([expect.objectContaining({ id: "p-hangar", budget: 5_600_000 })]);
    expect(northwind.log.of("project:updated").map((project) => project.id)).toEqual(["p-elm"]);
    expect((await api(gus, "PATCH", "/projects/p-elm", { budget: 1 })).status).toBe(404);
    expect((await api("not-a-token", "GET", "/projects")).status).toBe(401);
  });

  test("approving an expense sends expense:approved to the submitter's inbox", async () => {
    const [alice, ben] = await Promise.all([login("alice@northwind.test"), login("ben@northwind.test")]);
    const { log } = await open(ben, "ben-phone");
    expect((await api(ben, "POST", "/expenses/e-pump/approve")).status).toBe(403);
    expect((await api(alice, "POST", "/expenses/e-pump/approve")).status).toBe(200);
    const inbox = () => log.of("inbox:message").map((message) => [message.event, message.data.id ?? message.data.title]);
    await expect.poll(inbox, { timeout: 5000 }).toEqual([
      ["expense:approved", "e-pump"],
      ["notification:new", expect.any(String)],
    ]);
    expect((await api(alice, "POST", "/expenses/e-pump/approve")).status).toBe(409);
    expect((await fetch(`${url}/health/websocket`)).status).toBe(200);
  });

  test("Sam, a subcontractor on Riverside Tower, is refused Harbor Bridge's topic and site report and allowed his own", async () => {
    const sam = await login("sam@northwind.test");
    const { socket } = await open(sam, "sam-phone");
    expect(await subcontractorView(socket)).toEqual(SUBCONTRACTOR_VIEW);

    // REST agrees: his project only, his own expenses only, no budget changes.
    const ids = async (path: string) => (await api(sam, "GET", path)).body.map((row: { id: string }) => row.id);
    expect(await ids("/projects")).toEqual(["p-riverside"]);
    expect(await ids("/expenses")).toEqual([]);
    expect((await api(sam, "PATCH", "/projects/p-harbor", { budget: 1 })).status).toBe(404);
    const refused = await api(sam, "PATCH", "/projects/p-riverside", { budget: 1 });
    expect(refused).toMatchObject({ status: 403, body: { message: "Only managers and members may edit projects." } });
  });

  test("Sam hears his project's changes and none of another project's", async () => {
    const [alice, sam] = await Promise.all([login("alice@northwind.test"), login("sam@northwind.test")]);
    const { socket, log } = await open(sam, "sam-laptop", "project:p-riverside");
    await watch(socket, "site-report", "riverside-daily");
    const { socket: aliceSocket } = await open(alice, "alice-phone", "project:p-harbor");
    await watch(aliceSocket, "site-report", "harbor-daily");

    // Harbor first: a socket receives in order, so once Riverside's change arrives a leak would already be logged.
    expect((await api(alice, "PATCH", "/projects/p-harbor", { budget: 2_900_000 })).status).toBe(200);
    expect((await request(socket, "presence:join", { scope: { type: "site-report", id: "riverside-daily" }, state: { field: null } })).ok).toBe(true);
    expect((await request(aliceSocket, "presence:join", { scope: { type: "site-report", id: "harbor-daily" }, state: { field: "notes" } })).ok).toBe(true);
    expect((await api(alice, "PATCH", "/projects/p-riverside", { budget: 4_400_000 })).status).toBe(200);

    expect(await log.waitFor("project:updated")).toMatchObject({ id: "p-riverside", budget: 4_400_000 });
    const heard = log.events.filter((entry) => ["project:updated", "document:updated"].includes(entry.event));
    expect(heard).toEqual([{ event: "project:updated", data: expect.objectContaining({ id: "p-riverside" }) }]);
    // Presence batches reach the whole scope, this socket's own join included: only Riverside's report is heard of.
    const scopes = log.events.filter((entry) => entry.event === "presence:changes").map((entry) => (entry.data as { scope: { id: string } }).scope.id);
    expect(scopes.every((id) => id === "riverside-daily")).toBe(true);
    expect(JSON.stringify(log.events)).not.toMatch(/p-harbor|harbor-daily/);
  });
});
