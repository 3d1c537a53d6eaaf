import { afterEach, expect, test } from "vitest";
import { collect, connectAs, createClient, open, request, signToken, signTokenAfter, startTestServer, waitFor, type TestServer } from "@truss/test-utils";
import type { AuthExpiring, ErrorPayload } from "@truss/protocol";

let server: TestServer;
afterEach(() => server?.close());

const alice = { userId: "alice", companyId: "acme" };

test("a connection is warned before its token expires and closed at expiry with AUTH_TOKEN_EXPIRED", async () => {
  server = await startTestServer({ authExpiry: { warnBeforeMs: 1000 } });
  // Signed as a second starts, so the token lives its whole 2 s (exp counts whole seconds).
  const socket = createClient(server.url, alice, { token: await signTokenAfter(Date.now(), alice, { expiresInSec: 2 }) });
  const warnings = collect<AuthExpiring>(socket, "auth:expiring");
  const errors = collect<ErrorPayload>(socket, "error");
  const reasons = collect<string>(socket, "disconnect");
  await open(socket);
  await waitFor(() => warnings.length === 1, { timeoutMs: 3000 });
  expect(warnings[0]!.expiresInMs).toBeGreaterThan(0);
  expect(warnings[0]!.expiresInMs).toBeLessThanOrEqual(1000);
  // The disconnect comes at most a second after expiry: expiry timers are rounded up to whole seconds.
  await waitFor(() => reasons.length === 1, { timeoutMs: 4000 });
  expect(errors.map((e) => e.code)).toEqual(["AUTH_TOKEN_EXPIRED"]);
  expect(reasons).toEqual(["io server disconnect"]);
});

test("auth:refresh with a fresh token for the same user keeps the connection past the old expiry", async () => {
  server = await startTestServer({ authExpiry: { warnBeforeMs: 1500 } });
  // Listeners go on before the handshake: with a token this short the warning can come right after it.
  const socket = createClient(server.url, alice, { token: await signTokenAfter(Date.now(), alice, { expiresInSec: 2 }) });
  const reasons = collect<string>(socket, "disconnect");
  const refreshes: Array<{ ok: boolean; expiresAt?: number }> = [];
  socket.on("auth:expiring", async () => {
    refreshes.push(await request(socket, "auth:refresh", { token: signToken(alice, { expiresInSec: 600 }) }));
  });
  await open(socket);
  await new Promise((resolve) => setTimeout(resolve, 2600));
  expect(refreshes).toHaveLength(1);
  expect(refreshes[0]!.ok).toBe(true);
  expect(refreshes[0]!.expiresAt).toBeGreaterThan(Date.now() + 500_000);
  expect(reasons).toEqual([]);
  expect(socket.connected).toBe(true);
  expect((await request(socket, "presence:list", {})).ok).toBe(true);
  socket.close();
});

test("a refreshed token for another user or company is refused and the session is unchanged", async () => {
  server = await startTestServer();
  const socket = await connectAs(server.url, alice);
  const otherUser = await request(socket, "auth:refresh", { token: signToken({ userId: "mallory", companyId: "acme" }) });
  expect(otherUser.error.code).toBe("AUTH_PRINCIPAL_MISMATCH");
  const otherCompany = await request(socket, "auth:refresh", { token: signToken({ userId: "alice", companyId: "globex" }) });
  expect(otherCompany.error.code).toBe("AUTH_PRINCIPAL_MISMATCH");
  const expired = await request(socket, "auth:refresh", { token: signToken(alice, { expiresInSec: -5 }) });
  expect(expired.error.code).toBe("AUTH_TOKEN_EXPIRED");
  const forged = await request(socket, "auth:refresh", { token: signToken(alice, { secret: "nope" }) });
  expect(forged.error.code).toBe("AUTH_INVALID_TOKEN");
  expect(socket.connected).toBe(true);
  const listed = await request(socket, "presence:list", {});
  expect(listed.users.map((u: { userId: string }) => u.userId)).toEqual(["alice"]);
  socket.close();
});
