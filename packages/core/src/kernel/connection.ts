import type { TrussSocket } from "./context.js";
import type { Principal } from "./principal.js";
import { Groups } from "./groups.js";
import { userKeyOf } from "./rooms.js";

/**
 * Who is on one live socket of this node: the verified principal (replaced
 * by `auth:refresh`), whose expiry the handshake keeps on its own clock.
 * Every other service keeps its own per-socket state beside its code (the
 * dispatcher its event budget, the inbox its replay position, presence its
 * device counts). Held in {@link LocalConnections} rather than in
 * `socket.data`, which the Redis adapter would serialise across nodes.
 */
export class Connection {
  /**
   * The user's key (`userKeyOf`) and the device's (`deviceKey`), made once:
   * every per-user and per-device index of the node keys this connection by
   * these same strings instead of each building its own copy. A refreshed
   * principal is always the same user on the same device.
   */
  readonly userKey: string;
  readonly deviceKey: string;

  constructor(
    readonly socket: TrussSocket,
    public principal: Principal,
  ) {
    this.userKey = userKeyOf(principal);
    this.deviceKey = deviceKey(principal);
  }
}

/** A key for one device of one user, for local reference counts. */
export function deviceKey(principal: Pick<Principal, "companyId" | "userId" | "deviceId">): string {
  return JSON.stringify([principal.companyId, principal.userId, principal.deviceId]);
}

/**
 * This node's live connections, grouped by user: what a revocation looks up
 * (the user's sockets here) and what the slow-consumer guard and `close()`
 * walk. One index instead of a Map by socket id plus a room per user: at
 * tens of thousands of connections, each index entry is memory per socket.
 */
export class LocalConnections implements Iterable<Connection> {
  private readonly byUser = new Groups<string, Connection>();
  private count = 0;

  /** How many connections are open here. */
  get size(): number {
    return this.count;
  }

  add(connection: Connection): void {
    this.byUser.add(connection.userKey, connection);
    this.count += 1;
  }

  delete(connection: Connection): void {
    if (!this.byUser.has(connection.userKey, connection)) return;
    this.byUser.delete(connection.userKey, connection);
    this.count -= 1;
  }

  /**
   * The connection of `socket`: looked up among those of the user it was
   * admitted as (`socket.data.principal`), else, should the application have
   * replaced `socket.data`, found by a walk over every connection.
   */
  ofSocket(socket: TrussSocket): Connection | undefined {
    const principal = (socket.data as Partial<typeof socket.data> | undefined)?.principal;
    let found: Connection | undefined;
    if (principal) this.byUser.forEach(userKeyOf(principal), (connection) => connection.socket === socket && (found = connection));
    if (found) return found;
    for (const connection of this) if (connection.socket === socket) return connection;
    return undefined;
  }

  /** Calls `visit` with each connection of the user of `userKey` (`userKeyOf`). */
  forEachOf(userKey: string, visit: (connection: Connection) => void): void {
    this.byUser.forEach(userKey, visit);
  }

  /** Calls `visit` with every connection: the walk without an iterator, for what runs several times a second. */
  forEach(visit: (connection: Connection) => void): void {
    this.byUser.forEachMember(visit);
  }

  [Symbol.iterator](): Iterator<Connection> {
    return this.byUser.all();
  }
}
