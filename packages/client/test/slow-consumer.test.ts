import { afterEach, expect, test } from "vitest";
import { sleep, waitFor, type TcpProxy, type TestServer } from "@truss/test-utils";
import { alice, closeAll, openClient, startProxy, startServer, waitForStatus } from "./helpers.js";

let server: TestServer | undefined;
let proxy: TcpProxy | undefined;
afterEach(closeAll);

test("a client the server dropped as a slow consumer reconnects by itself once it reads again", async () => {
  server = await startServer({ limits: { maxBufferedBytes: 128 * 1024 } });
  proxy = await startProxy(server.port);
  const client = openClient(proxy.url, alice);
  const statuses: string[] = [];
  client.onStatus((status) => statuses.push(status));
  await waitForStatus(client, "connected");
  const connectionsBefore = server.engine.io!.of("/").sockets.size;

  proxy.stallDownstream();
  const payload = "s".repeat(16 * 1024);
  for (let burst = 0; burst < 200 && server.engine.io!.of("/").sockets.size === connectionsBefore; burst++) {
    for (let i = 0; i < 50; i++) server.engine.toCompany("acme").emit("stock:updated", { payload });
    await sleep(20);
  }
  expect(server.engine.io!.of("/").sockets.size).toBe(connectionsBefore - 1);
  expect(await server.engine.metrics()).toMatch(/truss_slow_consumers_total 1/);

  // The dropped transport surfaces on the client; once it reads again it is back without any help.
  proxy.resumeDownstream();
  await waitFor(() => statuses.includes("reconnecting"), { timeoutMs: 10_000, message: "a reconnect" });
  await waitForStatus(client, "connected", 10_000);
  expect(client.status).toBe("connected");
});

test("a client cut while it read nothing, not even why, hears SLOW_CONSUMER on its next connection and carries on", async () => {
  server = await startServer({ limits: { maxBufferedBytes: 128 * 1024 } });
  proxy = await startProxy(server.port);
  const client = openClient(proxy.url, alice);
  const errors: string[] = [];
  client.onError((error) => errors.push(error.code));
  await waitForStatus(client, "connected");
  const serverSide = [...server.engine.io!.of("/").sockets.values()][0]!;

  proxy.stallDownstream();
  const payload = "s".repeat(16 * 1024);
  for (let burst = 0; burst < 200 && serverSide.connected; burst++) {
    for (let i = 0; i < 50; i++) server.engine.toCompany("acme").emit("stock:updated", { payload });
    await sleep(20);
  }
  expect(serverSide.connected).toBe(false);
  // Its network is gone before it read anything more, the goodbye included.
  proxy.cut();
  proxy.resumeDownstream();
  await waitFor(() => errors.includes("SLOW_CONSUMER"), { timeoutMs: 10_000, message: "SLOW_CONSUMER through onError" });
  expect(errors.filter((code) => code === "SLOW_CONSUMER")).toEqual(["SLOW_CONSUMER"]);
  const heard: unknown[] = [];
  client.on("stock:updated", (data) => void heard.push(data));
  server.engine.toCompany("acme").emit("stock:updated", { after: true });
  await waitFor(() => heard.some((data) => (data as { after?: boolean }).after === true), { message: "a broadcast after the notice" });
  expect(client.status).toBe("connected");
});
