import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireRedisOrSkip, startRedisServer, type RedisServer } from "@truss/test-utils";
import type { Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { BACKENDS, call, login, openSocket, startErp, subscribe, type RunningErp } from "./helpers.js";
import { createTestDatabase, type TestDatabase } from "./postgres.js";

/**
 * With `REDIS_URL` (here: `redisUrl`), presence, inboxes and broadcasts go
 * through Redis, so two server processes behind a load balancer act as one.
 * The two nodes share one SQLite file, as two processes on one host would,
 * or one PostgreSQL database; each runs an outbox relay on it.
 */
describe.runIf(requireRedisOrSkip("construction-erp Redis tests")).each(BACKENDS)("two ERP nodes sharing Redis, on %s", (backend) => {
  let redis: RedisServer;
  let nodeA: RunningErp;
  let nodeB: RunningErp;
  let directory: string;
  let database: TestDatabase | undefined;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    redis = await startRedisServer();
    directory = mkdtempSync(join(tmpdir(), "truss-erp-redis-"));
    if (backend === "postgres") database = await createTestDatabase("redis");
    const place = database ? { databaseUrl: database.url } : { databasePath: join(directory, "erp.sqlite") };
    nodeA = await startErp({ redisUrl: redis.url, ...place, engine: { logger: false, nodeId: "node-a" } });
    nodeB = await startErp({ redisUrl: redis.url, ...place, engine: { logger: false, nodeId: "node-b" } });
  });

  afterAll(async () => {
    for (const socket of sockets) socket.disconnect();
    await nodeA?.close();
    await nodeB?.close();
    await redis?.stop();
    await database?.drop();
    if (directory) rmSync(directory, { recursive: true, force: true });
  });

  test("both nodes use Redis and report healthy", async () => {
    expect([nodeA.storage, nodeB.storage]).toEqual(["redis", "redis"]);
    const health = await call(nodeB.url, null, "GET", "/health/websocket");
    expect(health.status).toBe(200);
    expect(health.body.stores).toMatchObject({ presence: { state: "up" }, inbox: { state: "up" }, documents: { state: "up" } });
    expect(Object.values(health.body.stores).every((store: any) => store.state === "up")).toBe(true);
  });

  test("a change made through one node reaches a colleague connected to the other; presence spans both", async () => {
    const [alice, ben] = await Promise.all([login(nodeA.url, "alice@northwind.test"), login(nodeB.url, "ben@northwind.test")]);
    const aliceOnA = await openSocket(nodeA.url, alice.token, "alice-laptop");
    const benOnB = await openSocket(nodeB.url, ben.token, "ben-phone");
    sockets.push(aliceOnA.socket, benOnB.socket);
    await subscribe(aliceOnA.socket, "project:p-elm");

    await expect.poll(() => nodeA.realtime.isOnline("northwind", "u-ben"), { timeout: 5000 }).toBe(true);
    expect((await nodeA.realtime.presence("northwind")).map((user) => user.userId)).toEqual(["u-alice", "u-ben"]);

    expect((await call(nodeB.url, ben.token, "PATCH", "/api/projects/p-elm", { status: "active" })).status).toBe(200);
    expect(await aliceOnA.log.waitFor("project:updated", (project) => project.id === "p-elm")).toMatchObject({ status: "active" });
  });

  test("an approval made on one node waits in the shared inbox (Redis, or PostgreSQL) for the submitter's phone, which reconnects to the other", async () => {
    const [alice, chloe] = await Promise.all([login(nodeA.url, "alice@northwind.test"), login(nodeB.url, "chloe@northwind.test")]);
    const first = await openSocket(nodeB.url, chloe.token, "chloe-tablet");
    first.socket.disconnect();
    await expect.poll(() => nodeA.realtime.isOnline("northwind", "u-chloe"), { timeout: 5000 }).toBe(false);

    expect((await call(nodeA.url, alice.token, "POST", "/api/expenses/e-drone/approve", {})).status).toBe(200);
    const back = await openSocket(nodeB.url, chloe.token, "chloe-tablet");
    sockets.push(back.socket);
    const message = await back.log.waitFor("inbox:message", (entry) => entry.event === "expense:approved");
    expect(message.data).toMatchObject({ id: "e-drone", status: "approved", decidedBy: "u-alice" });
  });

  test("removing a user on one node disconnects their devices on both, and both nodes refuse the token afterwards", async () => {
    const [gus, hana] = await Promise.all([login(nodeA.url, "gus@globex.test"), login(nodeA.url, "hana@globex.test")]);
    const onA = await openSocket(nodeA.url, hana.token, "hana-laptop");
    const onB = await openSocket(nodeB.url, hana.token, "hana-phone");
    sockets.push(onA.socket, onB.socket);
    const closed = [onA, onB].map((device) => new Promise<string>((resolve) => device.socket.once("disconnect", resolve)));

    const removed = await call(nodeA.url, gus.token, "DELETE", "/api/users/u-hana");
    expect(removed.body).toMatchObject({ id: "u-hana", disconnectedSockets: 2, allNodesAnswered: true });
    expect(await Promise.all(closed)).toEqual(["io server disconnect", "io server disconnect"]);
    expect(onB.log.of("error")).toEqual([expect.objectContaining({ code: "ACCESS_REVOKED" })]);
    for (const node of [nodeA, nodeB]) {
      expect((await call(node.url, hana.token, "GET", "/api/projects")).body.error.code).toBe("ACCESS_REVOKED");
      await expect(openSocket(node.url, hana.token, "hana-phone")).rejects.toMatchObject({ data: { code: "ACCESS_REVOKED" } });
    }
  });
});
