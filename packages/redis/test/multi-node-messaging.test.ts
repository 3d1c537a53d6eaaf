import { requireRedisOrSkip, startRedisServer, type RedisServer } from "@truss/test-utils";
import { afterAll, beforeAll, describe } from "vitest";
import { registerMessagingCases } from "./support/messaging-cases.js";
import { NodeGroup } from "./support/nodes.js";

/**
 * Three engine nodes on separate ports sharing one redis-server, each with
 * its own store, publisher and subscriber connections and classic pub/sub:
 * company broadcasts and user inboxes cross nodes.
 */
describe.runIf(requireRedisOrSkip("@truss/redis multi-node messaging tests"))("three nodes on one redis-server", () => {
  let server: RedisServer;

  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  registerMessagingCases(async () => {
    const group = new NodeGroup({ url: server.url });
    try {
      return { group, nodes: await group.startThree() };
    } catch (error) {
      await group.closeAll();
      throw error;
    }
  });
});
