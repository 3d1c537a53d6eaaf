import type { PresenceScope, ScopedPresenceChanges, ScopedPresenceListing } from "@truss/protocol";
import type { Socket as ClientSocket } from "socket.io-client";
import { request, sleep } from "./engine.js";

/** What one raw socket in a scope has heard: each `presence:changes` frame, and the members' states as they stand after them. */
export interface ScopeView {
  readonly socket: ClientSocket;
  /** When each `presence:changes` frame arrived, epoch ms. */
  readonly frames: number[];
  /** Every batch heard, in order. */
  readonly batches: ScopedPresenceChanges[];
  /** Member id → state, from the join's listing and every batch since (a `left` removes). */
  readonly states: Map<string, unknown>;
}

/**
 * Joins every socket to `scope`'s presence (the sockets hold it already),
 * one after another, and follows what each one hears from then on, as a
 * client would apply it.
 */
export async function joinScope(sockets: readonly ClientSocket[], scope: PresenceScope, state: (index: number) => unknown = () => null): Promise<ScopeView[]> {
  const views: ScopeView[] = [];
  for (const [index, socket] of sockets.entries()) {
    const view: ScopeView = { socket, frames: [], batches: [], states: new Map() };
    socket.on("presence:changes", (batch: ScopedPresenceChanges) => {
      view.frames.push(Date.now());
      view.batches.push(batch);
      for (const { change, member } of batch.changes) {
        if (change === "left") view.states.delete(member.memberId);
        else view.states.set(member.memberId, member.state);
      }
    });
    const answer = await request<{ ok: boolean } & ScopedPresenceListing>(socket, "presence:join", { scope, state: state(index) });
    if (!answer.ok) throw new Error(`presence:join refused: ${JSON.stringify(answer)}`);
    // What the listing says is older than any batch heard since the join was sent.
    for (const member of answer.members) if (!view.states.has(member.memberId)) view.states.set(member.memberId, member.state);
    views.push(view);
  }
  return views;
}

/**
 * Has every socket send `presence:set` `perSecond` times a second for
 * `durationMs` (state `{ n }`, counting up per socket), and resolves with
 * each socket's last state by its id.
 */
export async function changeStates(sockets: readonly ClientSocket[], scope: PresenceScope, { perSecond, durationMs }: { perSecond: number; durationMs: number }): Promise<Map<string, unknown>> {
  const last = new Map<string, unknown>();
  const startedAt = Date.now();
  let n = 0;
  while (Date.now() - startedAt < durationMs) {
    n += 1;
    for (const socket of sockets) {
      const state = { n };
      socket.emit("presence:set", { scope, state });
      last.set(socket.id!, state);
    }
    await sleep(1000 / perSecond);
  }
  return last;
}

/** The most frames that arrived within any `spanMs` (1 s by default). */
export function mostFramesWithin(frames: readonly number[], spanMs = 1000): number {
  let most = 0;
  let first = 0;
  for (let index = 0; index < frames.length; index++) {
    while (frames[index]! - frames[first]! >= spanMs) first += 1;
    most = Math.max(most, index - first + 1);
  }
  return most;
}
