import { afterEach, expect, test } from "vitest";
import { signToken, waitFor, type TestServer } from "@truss/test-utils";
import type { StatusChange } from "@truss/client";
import { alice, closeAll, openClient, startServer, waitForStatus } from "./helpers.js";

let server: TestServer | undefined;
afterEach(closeAll);

function recordChanges(client: { onStatus(cb: (status: string, change: StatusChange) => void): unknown }): StatusChange[] {
  const changes: StatusChange[] = [];
  client.onStatus((_status, change) => changes.push(change));
  return changes;
}

test("a status change names the status it left and why, so closed needs no earlier onError to explain it", async () => {
  server = await startServer();
  const forged = signToken({ userId: "alice", companyId: "acme" }, { secret: "another-secret" });
  const client = openClient(server.url, alice, { token: forged });
  const changes = recordChanges(client);
  await waitForStatus(client, "closed");
  expect(changes.at(-1)).toMatchObject({ status: "closed", previous: "connecting" });
  expect(changes.at(-1)!.reason?.code).toBe("AUTH_INVALID_TOKEN");
});

test("a server shutting down moves the client to reconnecting with SERVER_SHUTTING_DOWN as the reason", async () => {
  server = await startServer();
  const client = openClient(server.url, alice);
  const changes = recordChanges(client);
  await waitForStatus(client, "connected");
  await server.close();
  server = undefined;
  await waitFor(() => changes.some((change) => change.status === "reconnecting"), { message: "reconnecting" });
  const reconnecting = changes.find((change) => change.status === "reconnecting")!;
  expect(reconnecting.previous).toBe("connected");
  expect(reconnecting.reason?.code).toBe("SERVER_SHUTTING_DOWN");
});

test("close() ends with no reason", async () => {
  server = await startServer();
  const client = openClient(server.url, alice);
  const changes = recordChanges(client);
  await waitForStatus(client, "connected");
  client.close();
  expect(changes.at(-1)).toEqual({ status: "closed", previous: "connected", reason: null });
});
