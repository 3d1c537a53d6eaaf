import type { TrussSocket } from "./context.js";
import type { Principal } from "./principal.js";

/**
 * Who is on one live socket of this node: the verified principal (replaced
 * by `auth:refresh`), whose expiry the handshake keeps on its own clock.
 * Every other service keeps its own per-socket state beside its code (the
 * dispatcher its event budget, the inbox its replay position, presence its
 * device counts). Held in a Map by socket id rather than in `socket.data`,
 * which the Redis adapter would serialise across nodes.
 */
export class Connection {
  constructor(
    readonly socket: TrussSocket,
    public principal: Principal,
  ) {}
}

/** A key for one device of one user, for local reference counts. */
export function deviceKey(principal: Pick<Principal, "companyId" | "userId" | "deviceId">): string {
  return JSON.stringify([principal.companyId, principal.userId, principal.deviceId]);
}
