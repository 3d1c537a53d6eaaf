/**
 * What a hand-written server in production adds around the jobs of this
 * folder, written the plain way such a server would, for the bench's
 * "by hand, with limits and metrics" rows. Nothing here is needed to do a
 * job (that is in checks.mjs); it is what keeps a multi-tenant server up and
 * observable, and what Truss does on every event:
 *
 * - rate limits: a token bucket of events per socket, and of events and of
 *   bytes per user across their sockets, checked and spent in a Socket.IO
 *   middleware before any handler runs (Truss's dispatcher budgets; the same
 *   rates as the bench gives Truss, so neither ever refuses);
 * - prom-client metrics: events received by name, each acknowledged
 *   event's time to its answer, and each Redis command's time (ioredis has
 *   no metrics of its own; instrumentations wrap `sendCommand`, as here).
 *   Label children are looked up once and kept, the careful way.
 *
 * Truss also keeps per-company quotas, idempotency, ordering across nodes
 * and tracing hooks, which these rows still leave out.
 */
import { Counter, Histogram, Registry } from "prom-client";

const EVENTS_PER_SECOND = 1_000_000;
const USER_EVENTS_PER_SECOND = 3 * EVENTS_PER_SECOND;
const USER_BYTES_PER_SECOND = 16 * 64 * 1024;
const SECONDS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

class TokenBucket {
  constructor(perSecond) {
    this.perSecond = perSecond;
    this.tokens = perSecond;
    this.updatedAt = Date.now();
  }

  take(cost, now) {
    const elapsed = now - this.updatedAt;
    if (elapsed > 0) {
      this.tokens = Math.min(this.perSecond, this.tokens + (elapsed * this.perSecond) / 1000);
      this.updatedAt = now;
    }
    if (this.tokens < cost) return false;
    this.tokens -= cost;
    return true;
  }
}

/** Adds the limits and metrics to `io` (before its `connection` handlers run) and, when given, times `redis`'s commands. */
export function productionLimitsAndMetrics(io, redis) {
  const registry = new Registry();
  const events = new Counter({ name: "app_events_total", help: "Client events received.", labelNames: ["event"], registers: [registry] });
  const answered = new Histogram({ name: "app_event_duration_seconds", help: "Time to each event's answer.", labelNames: ["event"], buckets: SECONDS, registers: [registry] });
  const commands = new Histogram({ name: "app_redis_command_duration_seconds", help: "Redis command time.", labelNames: ["command"], buckets: SECONDS, registers: [registry] });
  const children = (metric) => {
    const cache = new Map();
    return (label) => {
      let child = cache.get(label);
      if (!child) cache.set(label, (child = metric.labels(label)));
      return child;
    };
  };
  const eventCount = children(events);
  const eventTime = children(answered);
  const commandTime = children(commands);

  if (redis) {
    const send = redis.sendCommand.bind(redis);
    redis.sendCommand = (command, ...rest) => {
      const started = performance.now();
      const observe = () => commandTime(command.name).observe((performance.now() - started) / 1000);
      command.promise.then(observe, observe);
      return send(command, ...rest);
    };
  }

  /** userId → the user's event and byte buckets, shared by their sockets. */
  const users = new Map();
  return {
    registry,
    onConnection(socket) {
      const { userId } = socket.data.user;
      let user = users.get(userId);
      if (!user) users.set(userId, (user = { events: new TokenBucket(USER_EVENTS_PER_SECOND), bytes: new TokenBucket(USER_BYTES_PER_SECOND), sockets: 0 }));
      user.sockets += 1;
      const own = new TokenBucket(EVENTS_PER_SECOND);
      let lastBytes = 0;
      // Engine.IO hands over each message before Socket.IO decodes it: its size is what the byte budget spends.
      socket.conn.on("data", (data) => void (lastBytes = typeof data === "string" ? data.length : data.byteLength));
      socket.use((packet, next) => {
        const [event] = packet;
        const now = Date.now();
        if (!own.take(1, now) || !user.events.take(1, now) || !user.bytes.take(lastBytes, now)) {
          const ack = packet[packet.length - 1];
          if (typeof ack === "function") ack({ ok: false, error: { code: "RATE_LIMITED", message: "Too many events." } });
          return;
        }
        eventCount(event).inc();
        const ack = packet[packet.length - 1];
        if (typeof ack === "function") {
          const started = performance.now();
          packet[packet.length - 1] = (...answer) => {
            eventTime(event).observe((performance.now() - started) / 1000);
            return ack(...answer);
          };
        }
        next();
      });
      socket.on("disconnect", () => {
        user.sockets -= 1;
        if (user.sockets === 0) users.delete(userId);
      });
    },
  };
}
