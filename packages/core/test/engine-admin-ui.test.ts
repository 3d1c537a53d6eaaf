import { afterEach, expect, test } from "vitest";
import { instrument } from "@socket.io/admin-ui";
import { connectAs, createClient, open, request, startTestServer, waitFor, type TestServer } from "@truss/test-utils";

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const alice = { userId: "alice", companyId: "acme", deviceId: "laptop" };

interface AdminSocket {
  id: string;
  nsp: string;
  rooms: string[];
}

test("@socket.io/admin-ui beside Truss: the admin namespace sees Truss's sockets and rooms, and Truss's auth is unchanged", async () => {
  server = await startTestServer();
  instrument(server.engine.io!, { auth: false, mode: "development" });

  const truss = await connectAs(server.url, alice);

  // An admin client carries no Truss token: /admin is its own namespace, outside Truss's handshake.
  const admin = createClient(`${server.url}/admin`, alice, { auth: {} });
  const snapshots: AdminSocket[][] = [];
  const connected: AdminSocket[] = [];
  admin.on("all_sockets", (sockets: AdminSocket[]) => snapshots.push(sockets));
  admin.on("socket_connected", (socket: AdminSocket) => connected.push(socket));
  await open(admin);
  await waitFor(() => snapshots.length === 1, { message: "the admin all_sockets snapshot" });
  const seen = snapshots[0]!.find((socket) => socket.id === truss.id);
  expect(seen).toMatchObject({ nsp: "/" });
  expect(seen!.rooms).toEqual(expect.arrayContaining(["company:acme"]));

  // A Truss socket connecting later is reported live, with its rooms.
  const phone = await connectAs(server.url, { ...alice, deviceId: "phone" });
  await waitFor(() => connected.some((socket) => socket.id === phone.id), { message: "socket_connected for the phone" });

  // Truss still refuses a bad token with its code, and counts it; the admin socket is not a Truss connection.
  await expect(open(createClient(server.url, alice, { token: "not-a-token" }))).rejects.toMatchObject({ data: { code: "AUTH_INVALID_TOKEN" } });
  const metrics = await server.engine.metrics();
  expect(metrics).toContain('truss_auth_failures_total{code="AUTH_INVALID_TOKEN"} 1');
  expect(metrics).toMatch(/^truss_connections 2$/m);

  // Truss sockets keep working with admin-ui's proxies over socket.data.
  expect((await request(truss, "document:update", { type: "project", id: "p1", baseVersion: 0, changes: { name: "Tower" } })).ok).toBe(true);
  expect(await request(truss, "presence:list", {})).toMatchObject({ ok: true });

  admin.close();
  truss.close();
  phone.close();
});
