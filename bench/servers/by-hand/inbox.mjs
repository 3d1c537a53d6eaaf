/**
 * A durable per-user inbox written by hand on plain Socket.IO, as the
 * baseline of the `toUser` scenarios: append with an id, push to the user's
 * room, replay after the device's cursor on connect, move the cursor on
 * `inbox:ack`. Same ids, events and payloads as Truss. It does what any
 * server must to offer this safely (checks.mjs): the data is kept as the JSON
 * it was when sent, within a byte cap, and an ack's ids are checked. None of
 * Truss's extras: no replay/live ordering guard, no TTL, no quota per
 * company, no idempotency keys, no metrics or rate limits.
 */
import { jsonOf, MAX_MESSAGE_BYTES, newestAckedId } from "./checks.mjs";

const MAX_LENGTH = 1000;
const REPLAY_PAGE = 200;

function compareIds(a, b) {
  const [aMs, aSeq] = a.split("-").map(Number);
  const [bMs, bSeq] = b.split("-").map(Number);
  return aMs - bMs || aSeq - bSeq;
}

/** Messages (their data as JSON text) in a Map of arrays, cursors in a Map. */
export function memoryInbox(io) {
  const inboxes = new Map();
  const cursors = new Map();
  const inboxOf = (userId) => {
    let box = inboxes.get(userId);
    if (!box) inboxes.set(userId, (box = { messages: [], lastMs: 0, seq: -1 }));
    return box;
  };
  return {
    async send(userId, event, data) {
      const json = jsonOf(data, MAX_MESSAGE_BYTES, `The data of "${event}"`);
      const box = inboxOf(userId);
      const ms = Math.max(Date.now(), box.lastMs);
      box.seq = ms === box.lastMs ? box.seq + 1 : 0;
      box.lastMs = ms;
      const id = `${ms}-${box.seq}`;
      box.messages.push({ id, event, json, ts: ms });
      if (box.messages.length > MAX_LENGTH) box.messages.shift();
      // Encoded by Socket.IO now, before the caller can change `data`.
      const message = { id, event, data, ts: ms };
      io.to(`user:${userId}`).emit("inbox:message", message);
      return message;
    },
    onConnection(socket) {
      const { userId, deviceId } = socket.data.user;
      socket.join(`user:${userId}`);
      const cursor = cursors.get(`${userId}\u0000${deviceId}`);
      for (const { id, event, json, ts } of inboxes.get(userId)?.messages ?? []) {
        if (cursor === undefined || compareIds(id, cursor) > 0) socket.emit("inbox:message", { id, event, data: json === undefined ? undefined : JSON.parse(json), ts });
      }
      socket.on("inbox:ack", (request, ack) => {
        const newest = newestAckedId(request, compareIds);
        if (newest === null) return ack?.({ ok: false, error: { code: "INVALID_PAYLOAD", message: "ids" } });
        cursors.set(`${userId}\u0000${deviceId}`, newest);
        ack?.({ ok: true });
      });
    },
  };
}

/** Messages in a Redis stream per user (`XADD … MAXLEN ~`), cursors in a hash per user. */
export function redisInbox(io, redis, prefix) {
  const stream = (userId) => `${prefix}:inbox:${userId}`;
  const cursorsKey = (userId) => `${prefix}:inbox:${userId}:cursors`;
  const toMessage = ([id, fields]) => {
    const { event, data } = JSON.parse(fields[1]);
    return { id, event, data, ts: Number(id.slice(0, id.indexOf("-"))) };
  };
  return {
    async send(userId, event, data) {
      const json = jsonOf(data, MAX_MESSAGE_BYTES, `The data of "${event}"`);
      const id = await redis.xadd(stream(userId), "MAXLEN", "~", String(MAX_LENGTH), "*", "m", `{"event":${JSON.stringify(event)}${json === undefined ? "" : `,"data":${json}`}}`);
      const message = { id, event, data, ts: Number(id.slice(0, id.indexOf("-"))) };
      io.to(`user:${userId}`).emit("inbox:message", message);
      return message;
    },
    onConnection(socket) {
      const { userId, deviceId } = socket.data.user;
      socket.join(`user:${userId}`);
      socket.on("inbox:ack", async (request, ack) => {
        const newest = newestAckedId(request, compareIds);
        if (newest === null) return ack?.({ ok: false, error: { code: "INVALID_PAYLOAD", message: "ids" } });
        await redis.hset(cursorsKey(userId), deviceId, newest);
        ack?.({ ok: true });
      });
      void (async () => {
        let after = (await redis.hget(cursorsKey(userId), deviceId)) ?? "0-0";
        for (;;) {
          const page = await redis.xrange(stream(userId), `(${after}`, "+", "COUNT", REPLAY_PAGE);
          for (const entry of page) socket.emit("inbox:message", toMessage(entry));
          if (page.length > 0) after = page[page.length - 1][0];
          if (page.length < REPLAY_PAGE || !socket.connected) return;
        }
      })().catch(() => socket.emit("error", { code: "STORE_UNAVAILABLE", message: "replay failed" }));
    },
  };
}
