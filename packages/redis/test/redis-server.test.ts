import { createConnection } from "node:net";
import { requireRedisOrSkip, startRedisServer } from "@truss/test-utils";
import { Redis } from "ioredis";
import { describe, expect, test } from "vitest";

/** Whether anything accepts a TCP connection on the port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

describe.runIf(requireRedisOrSkip("the redis-server test helper's tests"))("startRedisServer", () => {
  test("starts an empty server, restarts it on the same port, and stops it", async () => {
    const server = await startRedisServer();
    const redis = new Redis(server.url, { lazyConnect: true });
    try {
      await redis.connect();
      await redis.set("left-over", "1");
      await redis.quit();

      await server.restart();
      const again = new Redis(server.url, { lazyConnect: true });
      await again.connect();
      // Persistence is off, so a restart is a fresh, empty Redis.
      expect(await again.get("left-over")).toBeNull();
      await again.quit();
    } finally {
      await server.stop();
    }
    expect(await listening(server.port)).toBe(false);
  });

  test("kill ends the process at once, and stop after kill is a no-op", async () => {
    const server = await startRedisServer();
    await server.kill();
    expect(await listening(server.port)).toBe(false);
    await server.stop();
  });
});
