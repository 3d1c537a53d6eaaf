import { createClient, requireRedisOrSkip, startRedisServer, type RedisServer } from "@truss/test-utils";
import type { Socket as ClientSocket } from "socket.io-client";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { memoryBackend, redisBackend, type Backend, type Topology } from "./support/backends.js";
import { Bystander } from "./support/bystander.js";
import { ackOutcome } from "./support/contract.js";
import { scaled } from "./support/env.js";
import { mib } from "./support/figures.js";
import { gcAvailable, settledHeapUsed } from "./support/memory.js";
import { emitForAnswer, preview } from "./support/sockets.js";
import { chaosFile } from "./support/chaos-file.js";

/**
 * One user opens many sockets on one `deviceId` and floods new 60 KB
 * documents from all of them, with the default limits. Before per-device and
 * per-user limits, every socket got in and each had its own event budget:
 * 4 sockets grew the heap by 244 MiB in 20 s. Now the device's sockets are
 * capped, the user's sockets share one budget of events and bytes, and a
 * colleague in the same company is served throughout. On Redis the flooder
 * and the colleague sit on node B, the broadcasts come from node A.
 */

const COMPANY = "flood-co";
const FLOODER = { userId: "script", companyId: COMPANY, deviceId: "script-box" };
const COLLEAGUE = { userId: "colleague", companyId: COMPANY, deviceId: "colleague-pc" };
const MIB = 1024 * 1024;
/** Sockets the flooder tries to open, against the default `limits.maxSocketsPerDevice`. */
const SOCKETS_TRIED = 30;
const MAX_SOCKETS_PER_DEVICE = 16;
/** The default `limits.userBytesPerSecond`: sixteen times the default `maxPayloadBytes`. */
const USER_BYTES_PER_SECOND = 16 * 64 * 1024;
/** Events each socket keeps in flight. */
const IN_FLIGHT = 4;
const DOCUMENT_BODY = "f".repeat(60_000);

const { figures, crashes } = chaosFile("user-flood");

/** Opens a socket and resolves with it once connected, or with the code that refused it (at the handshake or right after). */
function tryConnect(url: string): Promise<{ socket: ClientSocket; refusal: string | null }> {
  const socket = createClient(url, FLOODER);
  return new Promise((resolve) => {
    socket.once("connect_error", (error: Error & { data?: { code?: string } }) => resolve({ socket, refusal: error.data?.code ?? `uncoded: ${error.message}` }));
    socket.once("error", (error: { code?: string }) => resolve({ socket, refusal: error?.code ?? "uncoded error event" }));
    // A socket the server seats stays; one it refuses after connecting gets an `error` event first.
    socket.once("connect", () => setTimeout(() => resolve({ socket, refusal: socket.connected ? null : "disconnected" }), 200));
    socket.connect();
  });
}

function floodCases(backend: () => Backend): void {
  let topology: Topology | undefined;
  const sockets: Array<{ close(): void }> = [];
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.close();
    await topology?.close();
    topology = undefined;
    expect(crashes.describe()).toEqual([]);
  });

  test("one user's 30 sockets on one device flooding 60 KB documents: 16 admitted, the user's byte budget holds, a colleague is served", async () => {
    const section = `${backend().name}: one user floods`;
    topology = await backend().start();
    const { a, b } = topology;
    const colleague = new Bystander(b, COLLEAGUE);
    sockets.push(colleague);
    await colleague.expectServed(a);
    const heapBefore = await settledHeapUsed();

    const attempts = await Promise.all(Array.from({ length: SOCKETS_TRIED }, () => tryConnect(b.url)));
    for (const attempt of attempts) sockets.push(attempt.socket);
    const admitted = attempts.filter((attempt) => attempt.refusal === null && attempt.socket.connected).map((attempt) => attempt.socket);
    const refusals = attempts.flatMap((attempt) => (attempt.refusal === null ? [] : [attempt.refusal]));
    figures.set(section, "sockets admitted", admitted.length);
    for (const code of refusals) figures.outcome(section, `socket ${code}`);
    expect(admitted).toHaveLength(MAX_SOCKETS_PER_DEVICE);
    expect(new Set(refusals)).toEqual(new Set(["TOO_MANY_CONNECTIONS"]));

    const floodMs = scaled(3_000, 1_000);
    const startedAt = performance.now();
    const deadline = Date.now() + floodMs;
    let created = 0;
    let sent = 0;
    const outsideProtocol: string[] = [];
    const flood = admitted.map(async (socket, socketIndex) => {
      for (let round = 0; Date.now() < deadline && socket.connected; round++) {
        const answers = await Promise.all(
          Array.from({ length: IN_FLIGHT }, (_, slot) =>
            emitForAnswer(socket, "document:update", [{ type: "dump", id: `s${socketIndex}-r${round}-${slot}`, baseVersion: 0, changes: { body: DOCUMENT_BODY } }], 10_000),
          ),
        );
        for (const answer of answers) {
          sent += 1;
          const outcome = "ack" in answer ? ackOutcome(answer.ack) : null;
          if (outcome === null) outsideProtocol.push(preview(answer));
          else if (outcome === "ok") created += 1;
          figures.outcome(section, outcome ?? "outside the protocol");
        }
      }
    });
    // The colleague is served while the flood runs, not only after it.
    await colleague.expectServed(a);
    await Promise.all(flood);
    const seconds = (performance.now() - startedAt) / 1000;
    await colleague.expectServed(a);

    const heapGrowth = (await settledHeapUsed()) - heapBefore;
    const mostBytes = USER_BYTES_PER_SECOND * (seconds + 1);
    figures.set(section, "flood seconds", Math.round(seconds * 10) / 10);
    figures.set(section, "documents sent", sent);
    figures.set(section, "documents created", created);
    figures.set(section, "MiB created", mib(created * DOCUMENT_BODY.length));
    figures.set(section, "MiB the byte budget allows", mib(mostBytes));
    figures.set(section, "heap growth MiB", mib(heapGrowth));
    figures.set(section, "colleague reconnects", colleague.reconnects);

    expect(outsideProtocol).toEqual([]);
    expect(created).toBeGreaterThan(0);
    expect(created * DOCUMENT_BODY.length).toBeLessThanOrEqual(mostBytes);
    expect(colleague.reconnects).toBe(0);
    // What was created, plus the sockets and their buffers; without a collection the bound is looser.
    expect(heapGrowth).toBeLessThan((gcAvailable ? 64 : 256) * MIB);
  }, 60_000);
}

describe("on the in-memory stores", () => {
  floodCases(() => memoryBackend);
});

describe.runIf(requireRedisOrSkip("chaos flood cases on Redis"))("on Redis, two nodes", () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  floodCases(() => redisBackend(() => redis));
});
