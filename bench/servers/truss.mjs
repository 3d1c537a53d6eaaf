/**
 * The server under test: Truss, configured as an application would
 * (HS256 JWT auth, in-memory or Redis stores, optionally the Redis adapter,
 * for the topic scenario a topic pattern and an `authorize` policy), driven
 * by the runner's commands.
 */
import { serveCommands } from "../lib/commands.mjs";
import { now } from "../lib/clock.mjs";
import { BENCH_SECRET } from "../lib/tokens.mjs";
import { canSeeProject, expenseApproved, listen, memoryReport, pace, projectUpdate, runBounded, SendTracker } from "./common.mjs";

let engine;
let io;
/** The `seq` of the next `burst` broadcast: increasing over the server's life, so a device can check the order it gets them in. */
let burstSeq = 0;

serveCommands({
  /**
   * @param {object} args
   * @param {string[]} [args.features] `topics`: the `project:{projectId}` pattern and an `authorize` policy
   * @param {"memory"|"redis"|"postgres"} [args.store] `postgres`: `postgresStores` on the machine's PostgreSQL (127.0.0.1:5432, database `test`)
   * @param {string} [args.pgSchema] with `store: "postgres"`: the schema, migrated here (the scenario drops it)
   * @param {number} [args.redisPort] with `store: "redis"` or `adapter: true`
   * @param {boolean} [args.adapter] Redis adapter, for several nodes
   * @param {string} [args.prefix] Redis key prefix, shared by the nodes of one run
   * @param {boolean} [args.dropRequest] measure the proposed core change: drop the handshake request once the socket is built
   */
  async start({ features = [], store = "memory", redisPort, adapter = false, prefix = "bench", dropRequest = false, pgSchema }) {
    // TRUSS_CORE points at another build of @truss/core (a proposed change) to measure it against the same workload.
    const { createRealtimeEngine } = await import(process.env.TRUSS_CORE ?? "@truss/core");
    const options = {
      auth: { secret: BENCH_SECRET, algorithms: ["HS256"] },
      logger: false,
      // The bench's writers and acking devices send far more than a person
      // would; the rate limit still runs (and costs what it costs), it just never trips.
      limits: { eventsPerSecond: 1_000_000 },
    };
    if (features.includes("topics")) {
      // Only here: a policy also narrows who hears document commits, which the document scenarios measure without one.
      options.topics = { patterns: ["project:{projectId}"] };
      options.limits.maxSubscriptionsPerConnection = 100;
      options.authorize = (principal, request) => request.action !== "topic:subscribe" || canSeeProject(principal.roles, request.params.projectId);
    }
    if (store === "redis" || adapter) {
      const { Redis } = await import("ioredis");
      const redis = await import("@truss/redis");
      const connect = () => {
        return new Redis({ host: "127.0.0.1", port: redisPort, maxRetriesPerRequest: 2 });
      };
      if (store === "redis") Object.assign(options, redis.redisStores(connect(), { prefix }));
      if (adapter) {
        const pub = connect();
        options.adapter = redis.redisAdapter(pub, pub.duplicate());
      }
    }
    if (store === "postgres") {
      const { default: pg } = await import("pg");
      const { migrate, postgresStores } = await import("@truss/postgres");
      const pool = new pg.Pool({ host: "127.0.0.1", port: 5432, user: "postgres", database: "test", max: 20 });
      await migrate(pool, { schema: pgSchema });
      Object.assign(options, postgresStores(pool, { schema: pgSchema }));
    }
    engine = createRealtimeEngine(options);
    const { server, port } = await listen();
    io = engine.attach(server);
    if (dropRequest) {
      // What the proposed core change does, from the outside: Truss's own
      // connection listener has run by now, so the handshake (headers
      // included) is built and the socket no longer needs the request.
      io.of("/").on("connection", (socket) => {
        socket.conn.request = null;
      });
    }
    return { port, pid: process.pid };
  },

  broadcast: ({ companies, rate, durationMs }) =>
    pace({
      rate,
      durationMs,
      send: (seq, t) => {
        const companyId = companies[seq % companies.length];
        engine.toCompany(companyId).emit("project:updated", projectUpdate(t, seq, companyId));
      },
    }),

  /**
   * `perCompany` company broadcasts to each of `companies`, round-robin, as
   * fast as they go; resolves once every one is stored in its stream.
   */
  async burst({ companies, perCompany }) {
    const startedAt = now();
    const published = [];
    for (let round = 0; round < perCompany; round++) {
      for (const companyId of companies) published.push(engine.toCompany(companyId).emit("project:updated", projectUpdate(now(), burstSeq++, companyId)));
    }
    const positions = await Promise.all(published);
    return { sent: published.length, stored: positions.filter(Boolean).length, elapsedMs: Math.round(now() - startedAt) };
  },

  /** Open connections, without the collections `memory` runs first. */
  sockets: () => io.engine.clientsCount,

  /** `toTopic` at a paced rate, cycling through `targets` (`[companyId, topic]`). */
  toTopic: ({ targets, rate, durationMs }) =>
    pace({
      rate,
      durationMs,
      send: (seq, t) => {
        const [companyId, topic] = targets[seq % targets.length];
        engine.toTopic(companyId, topic).emit("project:updated", projectUpdate(t, seq, companyId));
      },
    }),

  /** `toUser` at a paced rate, round-robin over `users` (`{ companyId, userId }`). */
  async toUser({ users, rate, durationMs }) {
    const tracker = new SendTracker();
    const paced = await pace({
      rate,
      durationMs,
      send: (seq, t) => {
        const { companyId, userId } = users[seq % users.length];
        return tracker.track(engine.toUser(companyId, userId).emit("expense:approved", expenseApproved(t, seq)));
      },
    });
    return { ...paced, ...(await tracker.settle()) };
  },

  /** Queues `perUser` messages for each of `users` (who are offline), in order per user. */
  async enqueue({ users, perUser, concurrency = 200 }) {
    const startedAt = performance.now();
    const failed = await runBounded(users.length, concurrency, async (index) => {
      for (let seq = 0; seq < perUser; seq++) {
        await engine.toUser(users[index].companyId, users[index].userId).emit("expense:approved", expenseApproved(0, seq));
      }
    });
    return { failed, elapsedMs: Math.round(performance.now() - startedAt) };
  },

  /** Creates the documents the writers update, each with `fields` set (version 1). */
  async seedDocuments({ companyId, docs, fields }) {
    const data = Object.fromEntries(fields.map((field) => [field, 0]));
    for (const id of docs) await engine.documents.update(companyId, "project", id, { baseVersion: 0, changes: data });
    return { seeded: docs.length };
  },

  memory: async () => ({ ...(await memoryReport()), sockets: io.engine.clientsCount }),
});
