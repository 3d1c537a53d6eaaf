import type { AddressInfo } from "node:net";
import type { INestApplication } from "@nestjs/common";
import { io, type Socket } from "socket.io-client";
import { call, login as erpLogin } from "@truss/example-construction-erp/test-rest";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createNestErp } from "../src/bootstrap.js";

describe("the NestJS ERP", () => {
  let app: INestApplication;
  let url: string;
  const sockets: Socket[] = [];

  const login = async (email: string) => (await erpLogin(url, email)).token;
  const api = (token: string, method: string, path: string, body?: unknown) => call(url, token, method, `/api${path}`, body);

  /** A connected socket with every event it received, recorded from before the handshake. */
  const open = async (token: string, deviceId: string) => {
    const socket = io(url, { transports: ["websocket"], auth: { token, deviceId }, reconnection: false, forceNew: true, autoConnect: false });
    sockets.push(socket);
    const events: Array<[string, any]> = [];
    socket.onAny((event: string, data: unknown) => void events.push([event, data]));
    socket.connect();
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
    });
    return events;
  };

  beforeAll(async () => {
    app = await createNestErp({ jwtSecret: "nestjs-erp-test-secret", logger: false }, { logger: false });
    await app.listen(0, "127.0.0.1");
    url = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const socket of sockets) socket.disconnect();
    await app?.close();
  });

  test("a REST budget change reaches the company's sockets as project:updated, and not the other company's", async () => {
    const [alice, ben, gus] = await Promise.all([login("alice@northwind.test"), login("ben@northwind.test"), login("gus@globex.test")]);
    const northwind = await open(alice, "alice-laptop");
    const globex = await open(gus, "gus-laptop");
    const updates = (events: Array<[string, any]>) => events.filter(([event]) => event === "project:updated").map(([, project]) => project);

    expect((await api(ben, "PATCH", "/projects/p-elm", { budget: 1_250_000 })).status).toBe(200);
    await expect.poll(() => updates(northwind), { timeout: 5000 }).toEqual([expect.objectContaining({ id: "p-elm", budget: 1_250_000 })]);

    expect((await api(gus, "PATCH", "/projects/p-hangar", { budget: 5_600_000 })).status).toBe(200);
    await expect.poll(() => updates(globex), { timeout: 5000 }).toEqual([expect.objectContaining({ id: "p-hangar", budget: 5_600_000 })]);
    expect(updates(northwind).map((project) => project.id)).toEqual(["p-elm"]);
    expect((await api(gus, "PATCH", "/projects/p-elm", { budget: 1 })).status).toBe(404);
    expect((await api("not-a-token", "GET", "/projects")).status).toBe(401);
  });

  test("approving an expense sends expense:approved to the submitter's inbox", async () => {
    const [alice, ben] = await Promise.all([login("alice@northwind.test"), login("ben@northwind.test")]);
    const benEvents = await open(ben, "ben-phone");
    expect((await api(ben, "POST", "/expenses/e-pump/approve")).status).toBe(403);
    expect((await api(alice, "POST", "/expenses/e-pump/approve")).status).toBe(200);
    const inbox = () => benEvents.filter(([event]) => event === "inbox:message").map(([, message]) => [message.event, message.data.id ?? message.data.title]);
    await expect.poll(inbox, { timeout: 5000 }).toEqual([
      ["expense:approved", "e-pump"],
      ["notification:new", expect.any(String)],
    ]);
    expect((await api(alice, "POST", "/expenses/e-pump/approve")).status).toBe(409);
    expect((await fetch(`${url}/health/websocket`)).status).toBe(200);
  });
});
