/**
 * What Truss does for every new connection, written by hand on plain
 * Socket.IO, as the "same job" baseline of the `connect` scenario: announce
 * the user online to the company's sockets that follow its presence (those
 * that sent `presence:list { follow: true }`; the first change at once, the
 * rest of a burst together a second later, as Truss does), tell the socket where the
 * company's stream stands (`stream:start`), and replay the user's inbox
 * after the device's cursor (the hand-written inbox of `inbox.mjs`). On
 * disconnect the user goes offline once their last socket has gone. Same
 * events and payload shapes as Truss.
 */
const PRESENCE_WINDOW_MS = 1000;

/** @param {import("socket.io").Server} io @param {{ onConnection(socket): void }} inbox */
export function connectJob(io, inbox) {
  /** companyId → userId → sockets open */
  const online = new Map();
  /** companyId → updates queued while the company's window is open */
  const windows = new Map();
  /** companyId → { epoch, top } of the company's stream */
  const streams = new Map();

  const announce = (companyId, update) => {
    const queued = windows.get(companyId);
    if (queued) return void queued.push(update);
    io.to(`company-presence:${companyId}`).emit("presence:update", update);
    openWindow(companyId);
  };
  const openWindow = (companyId) => {
    windows.set(companyId, []);
    setTimeout(() => {
      const queued = windows.get(companyId);
      windows.delete(companyId);
      if (queued.length === 0) return;
      io.to(`company-presence:${companyId}`).emit("presence:updates", { updates: queued });
      openWindow(companyId);
    }, PRESENCE_WINDOW_MS).unref();
  };
  const streamOf = (companyId) => {
    let stream = streams.get(companyId);
    if (!stream) streams.set(companyId, (stream = { epoch: `${Date.now().toString(36)}-${companyId}`, top: 0 }));
    return stream;
  };

  return {
    onConnection(socket) {
      const { companyId, userId } = socket.data.user;
      let users = online.get(companyId);
      if (!users) online.set(companyId, (users = new Map()));
      const sockets = (users.get(userId) ?? 0) + 1;
      users.set(userId, sockets);
      if (sockets === 1) announce(companyId, { userId, online: true });
      const { epoch, top } = streamOf(companyId);
      socket.emit("stream:start", { stream: "company", epoch, top });
      socket.on("presence:list", (request, ack) => {
        if (request?.follow === true) socket.join(`company-presence:${companyId}`);
        else if (request?.follow === false) socket.leave(`company-presence:${companyId}`);
        if (typeof ack === "function") ack({ ok: true, users: [...users.keys()].map((id) => ({ userId: id, devices: [] })) });
      });
      inbox.onConnection(socket);
      socket.on("disconnect", () => {
        const left = users.get(userId) - 1;
        if (left > 0) return void users.set(userId, left);
        users.delete(userId);
        announce(companyId, { userId, online: false });
      });
    },
  };
}
