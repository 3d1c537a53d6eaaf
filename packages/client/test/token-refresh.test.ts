import { afterEach, expect, test } from "vitest";
import { signToken, signTokenAfter, sleep, waitFor, type TestServer } from "@truss/test-utils";
import type { ConnectionStatus, TrussClientError } from "@truss/client";
import { alice, closeAll, openClient, startServer, waitForStatus } from "./helpers.js";

let server: TestServer | undefined;
afterEach(closeAll);

const claims = { userId: "alice", companyId: "acme" };

function record(client: ReturnType<typeof openClient>) {
  const statuses: ConnectionStatus[] = [];
  const errors: TrussClientError[] = [];
  client.onStatus((status) => statuses.push(status));
  client.onError((error) => errors.push(error));
  return { statuses, errors };
}

test("auth:expiring is answered with a token from getToken, without dropping the connection", async () => {
  // The warning lead exceeds the token's life, so the warning comes right after connecting.
  server = await startServer({ authExpiry: { warnBeforeMs: 10_000 } });
  let calls = 0;
  const client = openClient(server.url, alice, {
    // The first token is signed as a second starts, so it lives its whole 2 s (exp counts whole seconds): signed late in
    // a second, it could expire before a loaded machine's refresh landed, and the connection dropped (seen in CI).
    getToken: async () => (++calls === 1 ? await signTokenAfter(Date.now(), claims, { expiresInSec: 2 }) : signToken(claims, { expiresInSec: 600 })),
  });
  const { statuses, errors } = record(client);
  await waitForStatus(client, "connected");
  // Past the first token's expiry.
  await sleep(2200);
  expect(statuses).toEqual(["connected"]);
  expect(errors).toEqual([]);
  expect(calls).toBe(2);
  expect(await server.engine.metrics()).toMatch(/^truss_auth_refreshed_total 1$/m);
  expect((await client.presence.list()).map((user) => user.userId)).toEqual(["alice"]);
});

test("when the refresh fails, the expired connection is re-established with a new token", async () => {
  server = await startServer({ authExpiry: { warnBeforeMs: 10_000 } });
  let calls = 0;
  const client = openClient(server.url, alice, {
    getToken: () => {
      calls += 1;
      if (calls === 2) throw new Error("refresh endpoint unreachable");
      return signToken(claims, { expiresInSec: calls === 1 ? 2 : 600 });
    },
  });
  const { statuses, errors } = record(client);
  await waitForStatus(client, "connected");
  await waitFor(() => statuses.length === 3, { timeoutMs: 4000, message: "the expiry and the reconnection" });
  expect(statuses).toEqual(["connected", "reconnecting", "connected"]);
  expect(errors.map((error) => error.code)).toEqual(["TOKEN_UNAVAILABLE", "AUTH_TOKEN_EXPIRED"]);
  expect(errors[0]!.message).toContain("refresh endpoint unreachable");
  expect(calls).toBe(3);
});

test("a static token that expires ends the session with AUTH_TOKEN_EXPIRED and no reconnection", async () => {
  server = await startServer({ authExpiry: { warnBeforeMs: 500 } });
  // Signed as a second starts, so the token lives its whole 2 s (exp counts whole seconds).
  const client = openClient(server.url, alice, { token: await signTokenAfter(Date.now(), claims, { expiresInSec: 2 }) });
  const { statuses, errors } = record(client);
  await waitForStatus(client, "closed", 3000);
  await sleep(150);
  expect(statuses).toEqual(["connected", "closed"]);
  expect(errors.map((error) => error.code)).toEqual(["AUTH_TOKEN_EXPIRED"]);
  expect(await server.engine.metrics()).toMatch(/^truss_connections_total 1$/m);
});

test("a getToken that never answers (a token fetch hanging on a flaky network) is given up after callbackTimeoutMs, reported, and asked again: the client still connects", async () => {
  server = await startServer();
  let calls = 0;
  const client = openClient(server.url, alice, {
    // The first fetch hangs for good; the retry answers.
    getToken: () => (++calls === 1 ? new Promise<string>(() => {}) : signToken(claims, { expiresInSec: 600 })),
    callbackTimeoutMs: 200,
  });
  const { errors } = record(client);
  await waitForStatus(client, "connected");
  expect(calls).toBe(2);
  expect(errors.map((error) => error.code)).toEqual(["TOKEN_UNAVAILABLE"]);
  expect(errors[0]!.message).toMatch(/no answer within 200 ms/);
});
