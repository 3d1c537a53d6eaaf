/**
 * A durable per-user inbox written by hand on plain Socket.IO, as the
 * baseline of the `toUser` scenarios: append with an id, push to the user's
 * room, replay after the device's cursor on connect, move the cursor on
 * `inbox:ack`. Same ids, events and payloads as Truss, none of its extras
 * (no replay/live ordering guard, no TTL accounting, no data cloning).
 */
const MAX_LENGTH = 1000;
const REPLAY_PAGE = 200;

function compareIds(a, b) {
  const [aMs, aSeq] = a.split("-").map(Number);
  const [bMs, bSeq] = b.split("-").map(Number);
  return aMs - bMs || aSeq - bSeq;
}

function newestOf(ids) {
  if (!Array.isArray(ids) || ids.length === 0) return null;
  return ids.reduce((a, b) => (compareIds(a, b) >= 0 ? a : b));
}

/** Messages in a Map of arrays, cursors in a Map. */
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
      const box = inboxOf(userId);
      const ms = Math.max(Date.now(), box.lastMs);
      box.seq = ms === box.lastMs ? box.seq + 1 : 0;
      box.lastMs = ms;
      const message = { id: `${ms}-${box.seq}`, event, data, ts: ms };
      box.messages.push(message);
      if (box.messages.length > MAX_LENGTH) box.messages.shift();
      io.to(`user:${userId}`).emit("inbox:message", message);
      return message;
    },
    onConnection(socket) {
      const { userId, deviceId } = socket.data.user;
      socket.join(`user:${userId}`);
      const cursor = cursors.get(`${userId}\u0000${deviceId}`);
      for (const message of inboxes.get(userId)?.messages ?? []) {
        if (cursor === undefined || compareIds(message.id, cursor) > 0) socket.emit("inbox:message", message);
      }
      socket.on("inbox:ack", (request, ack) => {
        const newest = newestOf(request?.ids);
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
      const id = await redis.xadd(stream(userId), "MAXLEN", "~", String(MAX_LENGTH), "*", "m", JSON.stringify({ event, data }));
      const message = { id, event, data, ts: Number(id.slice(0, id.indexOf("-"))) };
      io.to(`user:${userId}`).emit("inbox:message", message);
      return message;
    },
    onConnection(socket) {
      const { userId, deviceId } = socket.data.user;
      socket.join(`user:${userId}`);
      socket.on("inbox:ack", async (request, ack) => {
        const newest = newestOf(request?.ids);
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
