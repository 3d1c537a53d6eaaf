import type { AddressInfo } from "node:net";
import { connect, type TrussClient } from "@truss/client";
import type { ErpCatalog } from "@truss/example-construction-erp/catalog";
import { call, login as erpLogin } from "@truss/example-construction-erp/test-rest";
import { openSocket, request, subcontractorView, SUBCONTRACTOR_VIEW, subscribe, watch, type Device } from "@truss/example-construction-erp/test-sockets";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createExpressErp, type ExpressErp } from "../src/app.js";

const SECRET = "express-erp-test-secret";

describe("the Express ERP", () => {
  let erp: ExpressErp;
  let url: string;
  const clients: TrussClient<ErpCatalog>[] = [];
  const devices: Device[] = [];

  const login = async (email: string) => (await erpLogin(url, email)).token;
  const api = (token: string, method: string, path: string, body?: unknown) => call(url, token, method, `/api${path}`, body);

  /** A @truss/client connection, resolved once connected, with every project:updated it receives. */
  const open = async (token: string, deviceId: string, ...topics: string[]) => {
    const client = connect<ErpCatalog>(url, { token, deviceId, socketOptions: { transports: ["websocket"] } });
    clients.push(client);
    const updates: Array<{ id: string; budget: number }> = [];
    client.on("project:updated", (project) => void updates.push(project));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${deviceId} did not connect`)), 5000);
      client.onStatus((status) => {
        if (status === "connected") {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    await Promise.all(topics.map((topic) => client.subscribe(topic)));
    return { client, updates };
  };

  /** A plain socket.io-client connection, to see the engine's own answers. */
  const openDevice = async (token: string, deviceId: string) => {
    const device = await openSocket(url, token, deviceId);
    devices.push(device);
    return device;
  };

  beforeAll(async () => {
    erp = await createExpressErp({ jwtSecret: SECRET, logger: false });
    await new Promise<void>((resolve) => erp.server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(erp.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const client of clients) client.close();
    for (const { socket } of devices) socket.disconnect();
    await erp?.close();
  });

  test("a REST budget change reaches the project's subscribers as project:updated, and not the other company's", async () => {
    const [alice, ben, gus] = await Promise.all([login("alice@northwind.test"), login("ben@northwind.test"), login("gus@globex.test")]);
    const northwind = await open(alice, "alice-laptop", "project:p-harbor");
    const globex = await open(gus, "gus-laptop", "project:p-annex");

    const response = await api(ben, "PATCH", "/projects/p-harbor", { budget: 3_000_000 });
    expect(response.status).toBe(200);
    await expect.poll(() => northwind.updates, { timeout: 5000 }).toEqual([expect.objectContaining({ id: "p-harbor", budget: 3_000_000 })]);

    // Globex's own change arrives after Northwind's would have: Globex saw only its own.
    expect((await api(gus, "PATCH", "/projects/p-annex", { budget: 3_100_000 })).status).toBe(200);
    await expect.poll(() => globex.updates, { timeout: 5000 }).toEqual([expect.objectContaining({ id: "p-annex", budget: 3_100_000 })]);
    expect(northwind.updates.map((project) => project.id)).toEqual(["p-harbor"]);

    // A row of the other company is not found.
    expect((await api(gus, "PATCH", "/projects/p-harbor", { budget: 1 })).status).toBe(404);
  });

  test("approving an expense notifies the submitter through the inbox and updates the project for its subscribers", async () => {
    const [alice, ben] = await Promise.all([login("alice@northwind.test"), login("ben@northwind.test")]);
    const { client: benClient } = await open(ben, "ben-phone");
    const approved = new Promise((resolve) => benClient.on("expense:approved", resolve));
    expect((await api(ben, "POST", "/expenses/e-pump/approve")).status).toBe(403);
    expect((await api(alice, "POST", "/expenses/e-pump/approve")).status).toBe(200);
    await expect(approved).resolves.toMatchObject({ id: "e-pump", status: "approved", decidedBy: "u-alice" });
    const health = await fetch(`${url}/health/websocket`);
    expect(health.status).toBe(200);
  });

  test("Sam, a subcontractor on Riverside Tower, is refused Harbor Bridge's topic and site report and allowed his own", async () => {
    const sam = await login("sam@northwind.test");
    const { socket } = await openDevice(sam, "sam-phone");
    expect(await subcontractorView(socket)).toEqual(SUBCONTRACTOR_VIEW);

    // REST agrees: his project only, his own expenses only, no budget changes.
    const ids = async (path: string) => (await api(sam, "GET", path)).body.map((row: { id: string }) => row.id);
    expect(await ids("/projects")).toEqual(["p-riverside"]);
    expect(await ids("/expenses")).toEqual([]);
    expect((await api(sam, "PATCH", "/projects/p-harbor", { budget: 1 })).status).toBe(404);
    expect((await api(sam, "PATCH", "/projects/p-riverside", { budget: 1 })).body).toEqual({
      error: { code: "FORBIDDEN", message: "Only managers and members may edit projects." },
    });
  });

  test("Sam hears his project's changes and none of another project's", async () => {
    const [alice, sam] = await Promise.all([login("alice@northwind.test"), login("sam@northwind.test")]);
    const { socket, log } = await openDevice(sam, "sam-laptop");
    await subscribe(socket, "project:p-riverside");
    await watch(socket, "site-report", "riverside-daily");
    const { socket: aliceSocket } = await openDevice(alice, "alice-phone");
    await subscribe(aliceSocket, "project:p-harbor");
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
