import { connectAs, request, requireRedisOrSkip, startRedisServer, type RedisServer } from "@truss/test-utils";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { memoryBackend, redisBackend, type Backend, type Topology } from "./support/backends.js";
import { ackOutcome } from "./support/contract.js";
import { mib } from "./support/figures.js";
import { gcAvailable, settledHeapUsed } from "./support/memory.js";
import { chaosFile } from "./support/chaos-file.js";

/**
 * Documents at their edges, as a hostile user would meet them: a company
 * filling the default in-memory store (it grew the heap without bound),
 * one user's 1,001 commits on a shared document (they expired another
 * user's offline edit) and a forged `baseChanges` (it overwrote another
 * user's edit silently). Each once found, each kept found here.
 */

const MIB = 1024 * 1024;
const ANN = { userId: "ann", companyId: "edges-co", deviceId: "ann-laptop" };
const BOB = { userId: "bob", companyId: "edges-co", deviceId: "bob-phone" };
const DOC = { type: "site-report", id: "r-1" };

const { figures, crashes } = chaosFile("document-edges");

function edgeCases(backend: () => Backend): void {
  let topology: Topology | undefined;
  const sockets: Array<{ close(): void }> = [];
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.close();
    await topology?.close();
    topology = undefined;
    expect(crashes.describe()).toEqual([]);
  });

  test("one user's 1,001 commits on a shared document leave another user's offline edit to commit", async () => {
    const section = `${backend().name}: 1,001 commits`;
    topology = await backend().start();
    const { a, b } = topology;
    const madeAt = Date.now();
    await a.engine.documents.update(ANN.companyId, DOC.type, DOC.id, { baseVersion: 0, changes: { notes: "dry", crew: 0 } }, "ann");
    for (let commit = 1; commit <= 1_001; commit++) {
      await a.engine.documents.update(ANN.companyId, DOC.type, DOC.id, { baseVersion: commit, changes: { crew: commit }, mutationId: `ann-${commit}` }, "ann");
    }
    const bob = await connectAs(b.url, BOB);
    sockets.push(bob);
    const send = (baseVersion: number) =>
      request(bob, "document:update", { ...DOC, baseVersion, changes: { notes: "fog until ten" }, mutationId: "bob-offline", mutationAgeMs: Date.now() - madeAt });
    const offline = await send(1);
    figures.outcome(section, ackOutcome(offline) ?? "outside the protocol");
    // Its base has left the history, so the resolver cannot prove notes untouched: a conflict for the user, never MUTATION_EXPIRED.
    expect(offline).toMatchObject({ ok: true, status: "conflict", conflicts: [{ field: "notes", current: "dry", incoming: "fog until ten" }] });
    // Kept ("mine"), the same mutation is sent on the current version, as @truss/client does.
    const kept = await send(offline.current.version);
    figures.outcome(section, `kept: ${ackOutcome(kept) ?? "outside the protocol"}`);
    expect(kept).toMatchObject({ ok: true, status: "applied", document: { version: 1_003, data: { notes: "fog until ten", crew: 1_001 } } });
  }, 60_000);

  test("a forged baseChanges is a conflict, and the edit it claims is kept", async () => {
    const section = `${backend().name}: forged baseChanges`;
    topology = await backend().start();
    const { a, b } = topology;
    await a.engine.documents.update(ANN.companyId, DOC.type, DOC.id, { baseVersion: 0, changes: { notes: "dry" } });
    const [ann, bob] = [await connectAs(b.url, ANN), await connectAs(b.url, BOB)];
    sockets.push(ann, bob);
    expect(await request(bob, "document:update", { ...DOC, baseVersion: 1, changes: { notes: "Bob: crane down" } })).toMatchObject({ status: "applied" });
    const forged = await request(ann, "document:update", { ...DOC, baseVersion: 1, baseChanges: { notes: "Bob: crane down" }, changes: { notes: "Ann" } });
    figures.outcome(section, forged.status ?? ackOutcome(forged) ?? "outside the protocol");
    expect(forged).toMatchObject({ ok: true, status: "conflict", conflicts: [{ field: "notes", current: "Bob: crane down", incoming: "Ann" }] });
    expect((await a.engine.documents.get(ANN.companyId, DOC.type, DOC.id)).data.notes).toBe("Bob: crane down");
  }, 30_000);
}

describe("on the in-memory stores", () => {
  edgeCases(() => memoryBackend);

  test("a company filling the default memory document store is refused QUOTA_EXCEEDED, and the heap stays bounded", async () => {
    const section = "memory: company fills the store";
    const topology = await memoryBackend.start();
    try {
      const heapBefore = await settledHeapUsed();
      const body = "f".repeat(60_000);
      let created = 0;
      let refusal: unknown;
      while (refusal === undefined && created < 5_000) {
        try {
          await topology.a.engine.documents.update("flood-co", "dump", `d-${created}`, { baseVersion: 0, changes: { body } }, "script");
          created += 1;
        } catch (error) {
          refusal = error;
        }
      }
      const script = await connectAs(topology.b.url, { userId: "script", companyId: "flood-co" });
      const colleague = await connectAs(topology.b.url, { userId: "colleague", companyId: "other-co" });
      const overSocket = await request(script, "document:update", { type: "dump", id: "one-more", baseVersion: 0, changes: { body } });
      const elsewhere = await request(colleague, "document:update", { type: "dump", id: "d-0", baseVersion: 0, changes: { body } });
      script.close();
      colleague.close();
      const heapGrowth = (await settledHeapUsed()) - heapBefore;
      figures.set(section, "documents created", created);
      figures.set(section, "MiB created", mib(created * body.length));
      figures.set(section, "heap growth MiB", mib(heapGrowth));
      figures.outcome(section, ackOutcome(overSocket) ?? "outside the protocol");

      expect(refusal).toMatchObject({ name: "TrussError", code: "QUOTA_EXCEEDED" });
      expect(created * body.length).toBeLessThanOrEqual(64 * MIB);
      expect(overSocket).toMatchObject({ ok: false, error: { code: "QUOTA_EXCEEDED" } });
      expect(elsewhere).toMatchObject({ ok: true, status: "applied" });
      // The quota's 64 MiB and the engine; without a collection the bound is looser.
      expect(heapGrowth).toBeLessThan((gcAvailable ? 96 : 256) * MIB);
    } finally {
      await topology.close();
    }
    expect(crashes.describe()).toEqual([]);
  }, 60_000);
});

describe.runIf(requireRedisOrSkip("chaos document edge cases on Redis"))("on Redis, two nodes", () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  edgeCases(() => redisBackend(() => redis));
});
