/**
 * What a bench device keeps to get the broadcasts it missed while it was
 * away, and how it gets them after it reconnects, for each of the two ways
 * under test. Both observe live broadcasts cheaply (`indexOf`) and, while
 * recovering, parse and hand over every missed message in order, as
 * `@truss/client` and `socket.io-client` do.
 *
 * - {@link TrussStreamPosition}: the company stream's `{ epoch, offset }`
 *   from each broadcast's third argument; after a new connection,
 *   `stream:read` from that position, a page at a time up to the `top` the
 *   answers name.
 * - {@link SocketIoSession}: Socket.IO's connection state recovery. The
 *   `pid` of the CONNECT answer and the offset each broadcast carries as its
 *   last argument; the reconnection's CONNECT carries both, and the server
 *   sends the missed packets on its own (`socket.recovered`).
 */
import { numberField, stringField } from "./wire-client.mjs";

const COMPANY_STREAM = "company";

/** A device's position in its company's Truss stream. */
export class TrussStreamPosition {
  constructor() {
    this.epoch = null;
    this.offset = 0;
  }

  /** A live `project:updated`: `42["project:updated",{…},{"stream":"company","epoch":"…","offset":N}]`. */
  observe(packet) {
    const epoch = stringField(packet, '"epoch":"');
    if (epoch === undefined) return;
    this.epoch = epoch;
    this.offset = numberField(packet, '"offset":');
  }

  get holdsPosition() {
    return this.epoch !== null;
  }

  /**
   * Connects again and reads what was missed: `stream:read` after the last
   * offset handed over, page after page until the `top` of the first answer.
   * Resolves with what was handed over; rejects on a resync or a refused read.
   */
  async recover(client, { onConnected }) {
    await client.connect();
    onConnected();
    const outcome = { handedOver: 0, outOfOrder: 0, pages: 0, lastSeq: -1 };
    let target = null;
    for (;;) {
      const answer = await client.request("stream:read", { stream: COMPANY_STREAM, epoch: this.epoch, after: this.offset });
      outcome.pages += 1;
      if (!answer?.ok) throw new Error(`stream:read refused: ${answer?.error?.code ?? "no answer"}`);
      if (answer.resync) throw new Error(`resync: ${answer.resync.reason}`);
      const before = this.offset;
      for (const entry of answer.entries) {
        if (entry.offset !== this.offset + 1) {
          outcome.outOfOrder += 1;
          continue;
        }
        this.offset = entry.offset;
        outcome.handedOver += 1;
        outcome.lastSeq = entry.data.seq;
      }
      target ??= answer.top;
      if (this.offset >= target || this.offset === before) return outcome;
    }
  }
}

/** A device's Socket.IO session: the `pid` to resume and the offset of the last packet it got. */
export class SocketIoSession {
  constructor() {
    this.sid = null;
    this.pid = null;
    this.lastOffset = null;
    /** While recovering: what the missed packets are counted into. */
    this.recovering = null;
  }

  /** Called once connected: the session id and, with recovery on, its `pid`. */
  connected(client) {
    const answer = JSON.parse(client.connectAnswer);
    this.sid = answer.sid;
    this.pid = answer.pid ?? null;
  }

  /** A `project:updated`, live (`indexOf` only) or, while recovering, parsed and handed over in order. */
  observe(packet) {
    const recovering = this.recovering;
    if (!recovering) {
      const end = packet.length - 2;
      this.lastOffset = packet.slice(packet.lastIndexOf('"', end - 1) + 1, end);
      return;
    }
    const [, data, offset] = JSON.parse(packet.slice(2));
    this.lastOffset = offset;
    if (data.seq <= recovering.outcome.lastSeq) recovering.outcome.outOfOrder += 1;
    else {
      recovering.outcome.lastSeq = data.seq;
      recovering.outcome.handedOver += 1;
    }
    if (recovering.outcome.handedOver === recovering.expected) recovering.done();
  }

  get holdsPosition() {
    return this.pid !== null && this.lastOffset !== null;
  }

  /**
   * Connects again with `{ pid, offset }` in the CONNECT payload, as
   * socket.io-client does after a transport close, and waits for the
   * `expected` missed packets. Rejects when the server did not recover the
   * session (a new sid), since the missed packets then never come.
   */
  async recover(client, { expected, onConnected }) {
    const outcome = { handedOver: 0, outOfOrder: 0, pages: 0, lastSeq: -1 };
    const all = new Promise((resolve) => {
      this.recovering = { expected, outcome, done: resolve };
    });
    const previousSid = this.sid;
    client.auth = { ...client.auth, pid: this.pid, offset: this.lastOffset };
    try {
      await client.connect();
      onConnected();
      this.connected(client);
      if (this.sid !== previousSid) throw new Error("session not recovered");
      if (outcome.handedOver < expected) await all;
      return outcome;
    } finally {
      this.recovering = null;
    }
  }
}
