import { afterEach, expect, test } from "vitest";
import { signToken, sleep, waitFor } from "@truss/test-utils";
import type { ConnectionStatus, TrussClientError } from "@truss/client";
import { alice, closeAll, freePort, openClient, startServer, startServerAt, waitForStatus } from "./helpers.js";

afterEach(closeAll);

function recordErrors(client: { onError(cb: (error: TrussClientError) => void): unknown }): TrussClientError[] {
  const errors: TrussClientError[] = [];
  client.onError((error) => errors.push(error));
  return errors;
}

test("an invalid static token surfaces a coded AUTH_INVALID_TOKEN and stops retrying", async () => {
  const server = await startServer();
  const forged = signToken({ userId: "alice", companyId: "acme" }, { secret: "not-the-server-secret" });
  const client = openClient(server.url, alice, { token: forged });
  const errors = recordErrors(client);
  await waitForStatus(client, "closed");
  // With 20 ms backoff, a client that kept retrying would make several more attempts in this time.
  await sleep(300);
  expect(errors.map((error) => error.code)).toEqual(["AUTH_INVALID_TOKEN"]);
  expect(errors[0]!.message).toMatch(/token/i);
  expect(await server.engine.metrics()).toContain('truss_auth_failures_total{code="AUTH_INVALID_TOKEN"} 1');
  await expect(client.emit("user:typing", { documentId: "d1" })).rejects.toMatchObject({ code: "CLIENT_CLOSED" });
});

test("an unreachable server is retried with backoff until it comes up", async () => {
  const port = await freePort();
  const client = openClient(`http://127.0.0.1:${port}`, alice);
  const errors = recordErrors(client);
  await waitFor(() => errors.length >= 2, { message: "two failed attempts" });
  expect(client.status).toBe("connecting");
  expect(new Set(errors.map((error) => error.code))).toEqual(new Set(["CONNECTION_FAILED"]));

  await startServerAt(port);
  await waitForStatus(client, "connected");
});

test("a server shutting down is reconnected to once it is back, and the session works again", async () => {
  const port = await freePort();
  const first = await startServerAt(port);
  const client = openClient(`http://127.0.0.1:${port}`, alice);
  const errors = recordErrors(client);
  const statuses: ConnectionStatus[] = [];
  client.onStatus((status) => statuses.push(status));
  await waitForStatus(client, "connected");

  await first.close();
  await waitForStatus(client, "reconnecting");
  expect(errors.map((error) => error.code)).toContain("SERVER_SHUTTING_DOWN");

  await startServerAt(port);
  await waitForStatus(client, "connected");
  expect(statuses[0]).toBe("connected");
  expect(statuses.at(-1)).toBe("connected");
  expect(statuses).toContain("reconnecting");
  expect((await client.presence.list()).map((user) => user.userId)).toEqual(["alice"]);
});

test("a server-side disconnect without a reason stops the client with SERVER_DISCONNECTED", async () => {
  const server = await startServer();
  const client = openClient(server.url, alice);
  const errors = recordErrors(client);
  await waitForStatus(client, "connected");
  server.engine.io!.disconnectSockets(true);
  await waitForStatus(client, "closed");
  await sleep(100);
  expect(errors.map((error) => error.code)).toEqual(["SERVER_DISCONNECTED"]);
  expect(await server.engine.metrics()).toMatch(/^truss_connections_total 1$/m);
});
