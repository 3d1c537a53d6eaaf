import { startRedisServer, type RedisServer } from "@truss/test-utils";
import { afterAll, afterEach, beforeAll } from "vitest";
import { startChildNode, type ChildNode } from "./child-node.js";
import { NodeGroup, type NodeGroupOptions } from "./nodes.js";

/** What a child node is started with; the fixture supplies the Redis. */
export type ChildNodeConfig = Omit<Parameters<typeof startChildNode>[0], "redisUrl">;

/** The Redis and the nodes of one describe block; see {@link redisNodes}. */
export interface RedisNodes {
  /** The block's redis-server (started in `beforeAll`). */
  readonly server: RedisServer;
  /** A node group on {@link RedisNodes.server}, closed after the test. */
  group(options?: NodeGroupOptions): NodeGroup;
  /** An engine node in a child process on {@link RedisNodes.server}, killed after the test. */
  child(config: ChildNodeConfig): Promise<ChildNode>;
}

/**
 * Registers the hooks of a multi-node describe block: one redis-server for
 * the block, and after each test the child nodes killed, then the node groups
 * closed, pass or fail. Call it first in the block: vitest runs after-hooks
 * in reverse order, so the block's own clean-up (devices, proxies, a Redis
 * restart) still runs before the nodes close.
 */
export function redisNodes(): RedisNodes {
  let server: RedisServer | undefined;
  const groups: NodeGroup[] = [];
  const children: ChildNode[] = [];
  const started = () => {
    if (!server) throw new Error("the redis-server starts in beforeAll; use it inside a test or hook");
    return server;
  };

  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterEach(async () => {
    for (const child of children.splice(0)) await child.kill();
    for (const group of groups.splice(0)) await group.closeAll();
  });
  afterAll(async () => {
    await server?.stop();
  });

  return {
    get server() {
      return started();
    },
    group(options) {
      const group = new NodeGroup({ url: started().url }, options);
      groups.push(group);
      return group;
    },
    async child(config) {
      const child = await startChildNode({ redisUrl: started().url, ...config });
      children.push(child);
      return child;
    },
  };
}
