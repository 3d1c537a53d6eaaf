/**
 * The baseline: plain Socket.IO doing each job by hand, the way an
 * application would without Truss — `jsonwebtoken` in a middleware, a
 * `company:<id>` room per socket, and only for the scenarios that need them
 * a hand-written inbox (user room, ids, per-device cursor, replay, ack),
 * hand-written versioned documents (compare-and-set, field merge, history)
 * and hand-written topics (roles checked, then a company-scoped room).
 * Socket.IO's defaults are kept: that is what "plain" means, except in the
 * recovery scenario, where its connection state recovery is on (with the
 * in-memory adapter, or `@socket.io/redis-streams-adapter` on Redis, since
 * the classic Redis adapter cannot recover sessions).
 */
import jwt from "jsonwebtoken";
import { Server } from "socket.io";
import { serveCommands } from "../lib/commands.mjs";
import { now } from "../lib/clock.mjs";
import { BENCH_KEY } from "../lib/tokens.mjs";
import { memoryInbox, redisInbox } from "./by-hand/inbox.mjs";
import { memoryDocuments, redisDocuments } from "./by-hand/documents.mjs";
import { handTopics, topicRoom } from "./by-hand/topics.mjs";
import { connectJob } from "./by-hand/connect.mjs";
import { productionLimitsAndMetrics } from "./by-hand/production.mjs";
import { expenseApproved, listen, memoryReport, pace, projectUpdate, runBounded, SendTracker } from "./common.mjs";

let io;
let redis;
let inbox;
let documents;
let topics;
let connect;
/** The roles of a token that carries none, shared rather than one empty array per socket. */
const NO_ROLES = Object.freeze([]);
/** The `seq` of the next `burst` broadcast: increasing over the server's life, so a device can check the order it gets them in. */
let burstSeq = 0;

serveCommands({
  /**
   * @param {object} args
   * @param {string[]} [args.features] `inbox`, `documents`, `topics`, `connect` (what Truss does at every connection: revocation and device caps at the handshake, the token's expiry, presence, stream start, inbox replay): the hand-written services to register;
   *   `production`: with them, the rate limits and metrics a server in production keeps (by-hand/production.mjs)
   * @param {"memory"|"redis"} [args.store]
   * @param {number} [args.redisPort]
   * @param {boolean} [args.adapter] `@socket.io/redis-adapter`, for several nodes; with `recovery`, `@socket.io/redis-streams-adapter`
   * @param {boolean} [args.recovery] connection state recovery: `{ maxDisconnectionDuration: 120000, skipMiddlewares: false }`
   */
  async start({ features = [], store = "memory", redisPort, adapter = false, recovery = false, prefix = "bench" }) {
    let adapterFactory;
    if (store === "redis" || adapter) {
      const { Redis } = await import("ioredis");
      redis = new Redis({ host: "127.0.0.1", port: redisPort, maxRetriesPerRequest: 2 });
      if (adapter && recovery) {
        // Its README's ioredis form, on the same driver as every other bench server.
        const { createAdapter } = await import("@socket.io/redis-streams-adapter");
        adapterFactory = createAdapter(redis, { streamName: `${prefix}:socket.io`, channelPrefix: `${prefix}:socket.io`, sessionKeyPrefix: `${prefix}:sio:session:` });
      } else if (adapter) {
        const { createAdapter } = await import("@socket.io/redis-adapter");
        adapterFactory = createAdapter(redis, redis.duplicate());
      }
    }
    const { server, port } = await listen();
    io = new Server(server, {
      serveClient: false,
      ...(adapterFactory ? { adapter: adapterFactory } : {}),
      // The middlewares (the JWT check) run again on a recovered connection, as Truss authenticates every reconnection.
      ...(recovery ? { connectionStateRecovery: { maxDisconnectionDuration: 120_000, skipMiddlewares: false } } : {}),
    });

    io.use((socket, next) => {
      try {
        const claims = jwt.verify(socket.handshake.auth?.token, BENCH_KEY, { algorithms: ["HS256"] });
        if (typeof claims.sub !== "string" || typeof claims.companyId !== "string") throw new Error("missing claims");
        const deviceId = socket.handshake.auth?.deviceId;
        const roles = Array.isArray(claims.roles) ? claims.roles.filter((role) => typeof role === "string") : NO_ROLES;
        socket.data.user = {
          userId: claims.sub,
          companyId: claims.companyId,
          deviceId: typeof deviceId === "string" ? deviceId : socket.id,
          roles,
          issuedAt: claims.iat * 1000,
          expiresAt: claims.exp * 1000,
        };
        next();
      } catch {
        next(Object.assign(new Error("unauthorized"), { data: { code: "AUTH_INVALID_TOKEN" } }));
      }
    });

    if (features.includes("inbox") || features.includes("connect")) inbox = store === "redis" ? redisInbox(io, redis, prefix) : memoryInbox(io);
    if (features.includes("documents")) documents = store === "redis" ? redisDocuments(io, redis, prefix) : memoryDocuments(io);
    if (features.includes("topics")) topics = handTopics();
    if (features.includes("connect")) connect = connectJob(io, inbox);
    const production = features.includes("production") ? productionLimitsAndMetrics(io, redis) : null;

    io.on("connection", (socket) => {
      production?.onConnection(socket);
      const { companyId } = socket.data.user;
      socket.join(`company:${companyId}`);
      if (connect) connect.onConnection(socket);
      else inbox?.onConnection(socket);
      documents?.onConnection(socket);
      topics?.onConnection(socket);
    });
    return { port, pid: process.pid };
  },

  broadcast: ({ companies, rate, durationMs }) =>
    pace({
      rate,
      durationMs,
      send: (seq, t) => {
        const companyId = companies[seq % companies.length];
        io.to(`company:${companyId}`).emit("project:updated", projectUpdate(t, seq, companyId));
      },
    }),

  /**
   * `perCompany` company broadcasts to each of `companies`, round-robin, as
   * fast as they go. On Redis, resolves once Redis has answered everything
   * sent before (the streams adapter's XADDs go out on this connection).
   */
  async burst({ companies, perCompany }) {
    const startedAt = now();
    let sent = 0;
    for (let round = 0; round < perCompany; round++) {
      for (const companyId of companies) {
        io.to(`company:${companyId}`).emit("project:updated", projectUpdate(now(), burstSeq++, companyId));
        sent += 1;
      }
    }
    if (redis) await redis.ping();
    return { sent, stored: sent, elapsedMs: Math.round(now() - startedAt) };
  },

  sockets: () => io.engine.clientsCount,

  toTopic: ({ targets, rate, durationMs }) =>
    pace({
      rate,
      durationMs,
      send: (seq, t) => {
        const [companyId, topic] = targets[seq % targets.length];
        io.to(topicRoom(companyId, topic)).emit("project:updated", projectUpdate(t, seq, companyId));
      },
    }),

  // Bench user ids are unique across companies, so the hand-written inbox keys by user id alone.
  async toUser({ users, rate, durationMs }) {
    const tracker = new SendTracker();
    const paced = await pace({
      rate,
      durationMs,
      send: (seq, t) => tracker.track(inbox.send(users[seq % users.length].userId, "expense:approved", expenseApproved(t, seq))),
    });
    return { ...paced, ...(await tracker.settle()) };
  },

  async enqueue({ users, perUser, concurrency = 200 }) {
    const startedAt = performance.now();
    const failed = await runBounded(users.length, concurrency, async (index) => {
      for (let seq = 0; seq < perUser; seq++) await inbox.send(users[index].userId, "expense:approved", expenseApproved(0, seq));
    });
    return { failed, elapsedMs: Math.round(performance.now() - startedAt) };
  },

  async seedDocuments({ companyId, docs, fields }) {
    const data = Object.fromEntries(fields.map((field) => [field, 0]));
    for (const id of docs) await documents.update({ companyId, type: "project", id }, { baseVersion: 0, changes: data }, null);
    return { seeded: docs.length };
  },

  memory: async () => ({ ...(await memoryReport()), sockets: io.engine.clientsCount }),
});
