import type { AddressInfo } from "node:net";
import { connect, type TrussClient } from "@truss/client";
import type { ErpCatalog } from "@truss/example-construction-erp/catalog";
import { call, login as erpLogin } from "@truss/example-construction-erp/test-rest";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createExpressErp, type ExpressErp } from "../src/app.js";

const SECRET = "express-erp-test-secret";

describe("the Express ERP", () => {
  let erp: ExpressErp;
  let url: string;
  const clients: TrussClient<ErpCatalog>[] = [];

  const login = async (email: string) => (await erpLogin(url, email)).token;
  const api = (token: string, method: string, path: string, body?: unknown) => call(url, token, method, `/api${path}`, body);

  /** A @truss/client connection, resolved once connected, with every project:updated it receives. */
  const open = async (token: string, deviceId: string) => {
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
    return { client, updates };
  };

  beforeAll(async () => {
    erp = createExpressErp({ jwtSecret: SECRET, logger: false });
    await new Promise<void>((resolve) => erp.server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(erp.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const client of clients) client.close();
    await erp?.close();
  });

  test("a REST budget change reaches the company's clients as project:updated, and not the other company's", async () => {
    const [alice, ben, gus] = await Promise.all([login("alice@northwind.test"), login("ben@northwind.test"), login("gus@globex.test")]);
    const northwind = await open(alice, "alice-laptop");
    const globex = await open(gus, "gus-laptop");

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

  test("approving an expense notifies the submitter through the inbox and updates the project for the company", async () => {
    const [alice, ben] = await Promise.all([login("alice@northwind.test"), login("ben@northwind.test")]);
    const { client: benClient } = await open(ben, "ben-phone");
    const approved = new Promise((resolve) => benClient.on("expense:approved", resolve));
    expect((await api(ben, "POST", "/expenses/e-pump/approve")).status).toBe(403);
    expect((await api(alice, "POST", "/expenses/e-pump/approve")).status).toBe(200);
    await expect(approved).resolves.toMatchObject({ id: "e-pump", status: "approved", decidedBy: "u-alice" });
    const health = await fetch(`${url}/health/websocket`);
    expect(health.status).toBe(200);
  });
});
