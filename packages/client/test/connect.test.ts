import { afterEach, expect, test, vi } from "vitest";
import { signToken, waitFor, type TestServer } from "@truss/test-utils";
import { connect, type ConnectionStatus, type TrussClientError } from "@truss/client";
import { alice, closeAll, openClient, startServer, waitForStatus } from "./helpers.js";

let server: TestServer | undefined;
afterEach(closeAll);

test("connects with a static token as the given device, and close() ends the session", async () => {
  server = await startServer();
  const client = openClient(server.url, alice, { deviceId: "alice-tablet" });
  const statuses: ConnectionStatus[] = [client.status];
  client.onStatus((status) => statuses.push(status));
  await waitForStatus(client, "connected");
  const users = await client.presence.list();
  expect(users).toEqual([{ userId: "alice", devices: [expect.objectContaining({ deviceId: "alice-tablet" })] }]);

  client.close();
  expect(statuses).toEqual(["connecting", "connected", "closed"]);
  await expect(client.presence.list()).rejects.toMatchObject({ name: "TrussClientError", code: "CLIENT_CLOSED" });
  await waitFor(async () => (await server!.engine.presence("acme")).length === 0, { message: "alice to go offline" });
});

test("getToken is asked before every connection attempt, the reconnection after a dropped transport too", async () => {
  server = await startServer();
  const getToken = vi.fn(async () => signToken({ userId: "alice", companyId: "acme" }));
  const client = openClient(server.url, alice, { getToken });
  const statuses: ConnectionStatus[] = [];
  client.onStatus((status) => statuses.push(status));
  await waitForStatus(client, "connected");
  expect(getToken).toHaveBeenCalledTimes(1);

  client.socket.io.engine.close();
  await waitFor(() => statuses.length >= 2 && client.status === "connected", { message: "reconnection" });
  expect(statuses).toEqual(["connected", "reconnecting", "connected"]);
  expect(getToken).toHaveBeenCalledTimes(2);
});

test("a token given with getToken is used first; a refused one is replaced by asking getToken", async () => {
  server = await startServer();
  const expired = signToken({ userId: "alice", companyId: "acme" }, { expiresInSec: -60 });
  const getToken = vi.fn(() => signToken({ userId: "alice", companyId: "acme" }));
  const client = openClient(server.url, alice, { token: expired, getToken });
  const errors: TrussClientError[] = [];
  client.onError((error) => errors.push(error));
  await waitForStatus(client, "connected");
  expect(errors.map((error) => error.code)).toEqual(["AUTH_TOKEN_EXPIRED"]);
  expect(getToken).toHaveBeenCalledTimes(1);
});

test("a getToken that fails is reported as TOKEN_UNAVAILABLE and retried", async () => {
  server = await startServer();
  let calls = 0;
  const client = openClient(server.url, alice, {
    getToken: async () => {
      calls += 1;
      if (calls === 1) throw new Error("token endpoint returned 503");
      return signToken({ userId: "alice", companyId: "acme" });
    },
  });
  const errors: TrussClientError[] = [];
  client.onError((error) => errors.push(error));
  await waitForStatus(client, "connected");
  expect(errors.map((error) => [error.code, error.message])).toEqual([["TOKEN_UNAVAILABLE", "getToken() failed: token endpoint returned 503"]]);
});

test("missing deviceId or credential is a TypeError at connect()", () => {
  expect(() => connect("http://127.0.0.1:1", { token: "t" } as never)).toThrow(/deviceId/);
  expect(() => connect("http://127.0.0.1:1", { deviceId: "d" })).toThrow(/token/);
  expect(() => connect("http://127.0.0.1:1", { deviceId: "d", token: "t", reconnect: { jitter: 2 } })).toThrow(/jitter/);
});
