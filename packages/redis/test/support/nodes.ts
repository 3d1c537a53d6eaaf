import { randomUUID } from "node:crypto";
import type { RealtimeEngineOptions } from "@truss/core";
import { redisAdapter, redisStores, type RedisClient } from "@truss/redis";
import {
  createClient,
  open,
  startTestServer,
  waitFor,
  withTimeout,
  type TestClaims,
  type TestClientOptions,
  type TestServer,
} from "@truss/test-utils";
import { Cluster, Redis } from "ioredis";
import type { Socket as ClientSocket } from "socket.io-client";

/** The store client's `commandTimeout`, as the README recommends. */
export const STORE_COMMAND_TIMEOUT_MS = 2_000;

/** Where the nodes' Redis lives: one server, or the masters of a Redis Cluster. */
export type RedisTarget = { url: string } | { cluster: { host: string; port: number }[] };

/** One engine node with its own three Redis connections, as a production process holds them. */
export interface EngineNode extends TestServer {
  /** A label for assertion messages. */
  readonly name: string;
  /** The fail-fast client the stores run on. */
  readonly storeClient: RedisClient;
  /** The adapter's publisher and subscriber (ioredis defaults: they queue and re-subscribe). */
  readonly pub: RedisClient;
  readonly sub: RedisClient;
  /** Every `error` event any of the three clients emitted. */
  readonly redisErrors: Error[];
}

/** Options of {@link NodeGroup}. */
export interface NodeGroupOptions {
  /** Sharded pub/sub (`SSUBSCRIBE`) instead of classic. */
  sharded?: boolean;
  /** Engine options every node gets, on top of the Redis stores and adapter. */
  engine?: Partial<RealtimeEngineOptions>;
}

/**
 * Engine nodes sharing one Redis under a fresh key prefix and channel prefix,
 * so that tests on one redis-server never see each other's keys or
 * broadcasts. Tracks every node, client and Redis connection it made, and
 * {@link NodeGroup.closeAll} ends them all, pass or fail.
 */
export class NodeGroup {
  /** The key prefix and the adapter's channel prefix. */
  readonly prefix = `truss-mn-${randomUUID()}`;
  readonly nodes: EngineNode[] = [];
  private readonly sockets = new Set<ClientSocket>();
  private readonly clients = new Set<RedisClient>();

  constructor(
    private readonly target: RedisTarget,
    private readonly options: NodeGroupOptions = {},
  ) {}

  /**
   * Starts one node on a free port. `subscriberPort` sends its adapter's
   * subscriber to another port of 127.0.0.1 (a TCP proxy in front of Redis,
   * so that connection alone can be cut); it then reconnects every 50 ms.
   */
  async start(name: string, engine: Partial<RealtimeEngineOptions> = {}, { subscriberPort }: { subscriberPort?: number } = {}): Promise<EngineNode> {
    const redisErrors: Error[] = [];
    const track = <T extends RedisClient>(client: T): T => {
      // What production code must do as well: without a listener ioredis
      // prints "Unhandled error event" for every failed reconnect.
      client.on("error", (error: Error) => redisErrors.push(error));
      this.clients.add(client);
      return client;
    };
    const storeClient = track(this.storeClient());
    const pub = track(this.pubClient());
    const sub = track(
      subscriberPort === undefined ? this.subClient(pub, name) : new Redis(subscriberPort, { host: "127.0.0.1", lazyConnect: true, connectionName: `${name}-sub`, retryStrategy: () => 50 }),
    );
    await Promise.all([storeClient.connect(), pub.connect(), sub.connect()]);
    const prefix = this.prefix;
    const server = await startTestServer({
      ...redisStores(storeClient, { prefix, documents: { maxHistory: 200 } }),
      adapter: this.options.sharded
        ? redisAdapter(pub, sub, { sharded: true, channelPrefix: prefix })
        : redisAdapter(pub, sub, { key: prefix }),
      ...this.options.engine,
      ...engine,
    });
    const node: EngineNode = Object.assign(server, { name, storeClient, pub, sub, redisErrors });
    this.nodes.push(node);
    return node;
  }

  /** Starts nodes A and B and waits until both adapters are subscribed. */
  async startTwo(engine: Partial<RealtimeEngineOptions> = {}): Promise<[EngineNode, EngineNode]> {
    const nodes: [EngineNode, EngineNode] = [await this.start("A", engine), await this.start("B", engine)];
    await this.adaptersReady();
    return nodes;
  }

  /** Starts nodes A, B and C. */
  async startThree(engine: Partial<RealtimeEngineOptions> = {}): Promise<[EngineNode, EngineNode, EngineNode]> {
    return [await this.start("A", engine), await this.start("B", engine), await this.start("C", engine)];
  }

  /** Connects a client to a node (websocket only, no reconnection) and tracks it. */
  async connect(node: { url: string }, claims: TestClaims, options: TestClientOptions = {}): Promise<ClientSocket> {
    return open(this.client(node, claims, options));
  }

  /** A tracked client that is not connected yet, so listeners can go on first. */
  client(node: { url: string }, claims: TestClaims, options: TestClientOptions = {}): ClientSocket {
    const socket = createClient(node.url, claims, options);
    this.sockets.add(socket);
    return socket;
  }

  /**
   * Waits until every node's adapter is subscribed (each counts all of them
   * on the request channel), so a server-side emit reaches every node. On a
   * timeout the error lists the counts seen, the subscribed (and named)
   * connections Redis knows of (each node's is named `<node>-sub`), and `others()`, for
   * subscribers outside the group such as a child process.
   */
  async adaptersReady(expected = this.nodes.length, others?: () => string): Promise<void> {
    for (const node of this.nodes) {
      const adapter = node.engine.io!.of("/").adapter;
      const seen: number[] = [];
      const count = async () => {
        seen.push(await adapter.serverCount());
        return seen.at(-1)! >= expected;
      };
      await waitFor(count, { intervalMs: 25, message: `${node.name}'s adapter to see ${expected} nodes` }).catch(async (error: Error) => {
        const clients = String(await node.storeClient.call("CLIENT", "LIST"))
          .split("\n")
          .filter((line) => / (p|s)?sub=[1-9]/.test(line) || / name=\S/.test(line))
          .map((line) => line.replace(/^.*? (addr=\S+).*? (name=\S*).*? (age=\d+).*? (sub=\d+ psub=\d+).*$/, "$1 $2 $3 $4"));
        const beyond = others ? `\nothers: ${others()}` : "";
        throw new Error(`${error.message}; counts seen: ${seen.slice(-10).join(", ")}\nsubscribed or named connections:\n${clients.join("\n")}${beyond}`);
      });
    }
  }

  /** Closes every client, node and Redis connection this group made. */
  async closeAll(): Promise<void> {
    for (const socket of this.sockets) socket.close();
    this.sockets.clear();
    await Promise.allSettled(this.nodes.splice(0).map((node) => withTimeout(node.close(), 10_000)));
    for (const client of this.clients) client.disconnect();
    this.clients.clear();
  }

  /** Stores fail fast (README): no offline queue, one retry, a bound on every command. */
  private storeClient(): RedisClient {
    const options = { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: STORE_COMMAND_TIMEOUT_MS };
    if ("url" in this.target) return new Redis(this.target.url, { ...options, lazyConnect: true });
    const { enableOfflineQueue, ...perNode } = options;
    return new Cluster(this.target.cluster, { enableOfflineQueue, lazyConnect: true, redisOptions: perNode });
  }

  private pubClient(): RedisClient {
    if ("url" in this.target) return new Redis(this.target.url, { lazyConnect: true });
    return new Cluster(this.target.cluster, { lazyConnect: true });
  }

  private subClient(pub: RedisClient, name: string): RedisClient {
    if ("url" in this.target) return (pub as Redis).duplicate({ connectionName: `${name}-sub` });
    // The sharded adapter needs one subscriber per shard.
    return new Cluster(this.target.cluster, { lazyConnect: true, shardedSubscribers: true });
  }
}

/** A fresh company id, so cases on one Redis never share rooms. */
export const company = (label = "company") => `${label}-${randomUUID()}`;

/** A fresh user id. */
export const user = (label = "user") => `${label}-${randomUUID()}`;
