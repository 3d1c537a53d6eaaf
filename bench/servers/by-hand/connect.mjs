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
 *
 * And what Truss guarantees of every session, which a server offering the
 * same must do too: a revoked user's token issued before the revocation is
 * refused at the handshake; a user has at most 20 devices and a device 16
 * sockets on this node (Truss's default caps); and a socket is warned
 * (`auth:expiring`) a minute before its token expires and disconnected with
 * `AUTH_TOKEN_EXPIRED` when it does, on a timer of its own (the way a server
 * written by hand does it; Truss keeps one clock for all of them).
 */
const PRESENCE_WINDOW_MS = 1000;
const MAX_DEVICES_PER_USER = 20;
const MAX_SOCKETS_PER_DEVICE = 16;
const WARN_BEFORE_MS = 60_000;

/** A refused handshake, coded as Truss codes it. */
function refusal(code) {
  return Object.assign(new Error(code), { data: { code, message: code } });
}

/** @param {import("socket.io").Server} io @param {{ onConnection(socket): void }} inbox */
export function connectJob(io, inbox) {
  /** companyId → userId → sockets open */
  const online = new Map();
  /** companyId → updates queued while the company's window is open */
  const windows = new Map();
  /** companyId → { epoch, top } of the company's stream */
  const streams = new Map();
  /** `companyId\0userId` → when the user was revoked (ms); a token issued before it is refused. */
  const revoked = new Map();
  /** `companyId\0userId` → deviceId → sockets open on this node. */
  const devices = new Map();

  // After the JWT middleware, which left the verified claims in socket.data.user.
  io.use((socket, next) => {
    const { companyId, userId, deviceId, issuedAt } = socket.data.user;
    const userKey = `${companyId}\u0000${userId}`;
    const revokedAt = revoked.get(userKey);
    if (revokedAt !== undefined && issuedAt <= revokedAt) return next(refusal("ACCESS_REVOKED"));
    const open = devices.get(userKey);
    const sockets = open?.get(deviceId) ?? 0;
    if (sockets === 0 && open !== undefined && open.size >= MAX_DEVICES_PER_USER) return next(refusal("TOO_MANY_DEVICES"));
    if (sockets >= MAX_SOCKETS_PER_DEVICE) return next(refusal("TOO_MANY_CONNECTIONS"));
    next();
  });

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
    /** Refuses the user's tokens issued up to now and disconnects their sockets here, as `disconnectUser` does. */
    revoke(companyId, userId) {
      revoked.set(`${companyId}\u0000${userId}`, Math.floor(Date.now() / 1000) * 1000);
      io.in(`user:${userId}`).disconnectSockets(true);
    },
    onConnection(socket) {
      const { companyId, userId, deviceId, expiresAt } = socket.data.user;
      const userKey = `${companyId}\u0000${userId}`;
      let open = devices.get(userKey);
      if (!open) devices.set(userKey, (open = new Map()));
      open.set(deviceId, (open.get(deviceId) ?? 0) + 1);
      const expire = () => {
        socket.emit("error", { code: "AUTH_TOKEN_EXPIRED", message: "The token expired; reconnect with a new token." });
        socket.disconnect(true);
      };
      let expiry = setTimeout(() => {
        socket.emit("auth:expiring", { expiresAt, expiresInMs: Math.max(0, expiresAt - Date.now()) });
        expiry = setTimeout(expire, Math.max(0, expiresAt - Date.now()));
      }, Math.max(0, expiresAt - WARN_BEFORE_MS - Date.now()));
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
        clearTimeout(expiry);
        const sockets = open.get(deviceId) - 1;
        if (sockets > 0) open.set(deviceId, sockets);
        else if (open.delete(deviceId) && open.size === 0) devices.delete(userKey);
        const left = users.get(userId) - 1;
        if (left > 0) return void users.set(userId, left);
        users.delete(userId);
        announce(companyId, { userId, online: false });
      });
    },
  };
}
