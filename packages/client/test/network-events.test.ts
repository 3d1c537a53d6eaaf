import { afterEach, beforeEach, expect, test } from "vitest";
import { waitFor, type TcpProxy, type TestServer } from "@truss/test-utils";
import { alice, closeAll, openClient, startProxy, startServer, waitForStatus } from "./helpers.js";

/** A window's `online`/`offline` events, as a browser fires them when the device loses or regains its network. */
let network: EventTarget;
let server: TestServer | undefined;
let proxy: TcpProxy | undefined;

beforeEach(() => {
  network = new EventTarget();
  Object.assign(globalThis, { addEventListener: network.addEventListener.bind(network), removeEventListener: network.removeEventListener.bind(network) });
});
afterEach(async () => {
  await closeAll();
  delete (globalThis as { addEventListener?: unknown }).addEventListener;
  delete (globalThis as { removeEventListener?: unknown }).removeEventListener;
});

test("the browser's offline event drops the connection at once; its online event reconnects without waiting out the backoff", async () => {
  server = await startServer();
  proxy = await startProxy(server.port);
  // A minute of backoff without jitter: only the online event can bring the client back within the test.
  const client = openClient(proxy.url, alice, { reconnect: { initialDelayMs: 60_000, jitter: 0 } });
  await waitForStatus(client, "connected");
  await server.engine.documents.update("acme", "site-report", "r-1", { baseVersion: 0, changes: { crew: 1 } });

  // The TCP connection itself is still up: only the event tells the client the network is gone.
  proxy.hold();
  network.dispatchEvent(new Event("offline"));
  await waitForStatus(client, "reconnecting", 2000);
  const write = client.documents.update("site-report", "r-1", { crew: 2 }, { baseVersion: 1 });
  await waitFor(() => client.sync.pendingWrites === 1);
  expect(client.sync).toMatchObject({ status: "reconnecting", inSync: false });

  proxy.release();
  network.dispatchEvent(new Event("online"));
  await waitForStatus(client, "connected", 5000);
  expect(await write).toMatchObject({ status: "applied", document: { version: 2 } });
});

test("a closed client stops listening to the network events", async () => {
  server = await startServer();
  const client = openClient(server.url, alice, { reconnect: { initialDelayMs: 60_000, jitter: 0 } });
  await waitForStatus(client, "connected");
  client.close();
  network.dispatchEvent(new Event("online"));
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(client.status).toBe("closed");
});
