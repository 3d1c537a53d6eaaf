import type { DocumentUpdated, DocumentVersion, FieldConflict } from "@truss/protocol";
import { collect, request, requireRedisOrSkip, sleep, waitFor } from "@truss/test-utils";
import type { Socket as ClientSocket } from "socket.io-client";
import { describe, expect, test } from "vitest";
import { company, user, type EngineNode } from "./support/nodes.js";
import { redisNodes } from "./support/redis-nodes.js";

const WRITERS = 50;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, index) => from + index);

/** What a `document:update` ack carries. */
type UpdateAck =
  | { ok: true; status: "applied" | "merged"; document: DocumentVersion }
  | { ok: true; status: "conflict"; current: DocumentVersion; conflicts: FieldConflict[] }
  | { ok: false; error: { code: string; message: string } };

/**
 * Fifty writers spread over two nodes update one document through the socket
 * protocol at the same moment. The compare-and-set in Redis is the only
 * thing that orders them, so a lost update or a skipped version would show.
 */
describe.runIf(requireRedisOrSkip("@truss/redis multi-node document tests"))("fifty concurrent writers on two nodes", () => {
  const redis = redisNodes();

  /** Two nodes, a project at version 1, fifty writers alternating between the nodes and a watcher on each node. */
  const setUp = async () => {
    const group = redis.group({ engine: { limits: { eventsPerSecond: 2000 } } });
    const nodes: [EngineNode, EngineNode] = [await group.start("A"), await group.start("B")];
    await group.adaptersReady();
    const companyId = company();
    const doc = { type: "project", id: `tower-${user("doc")}` };
    await nodes[0].engine.documents.update(companyId, doc.type, doc.id, { baseVersion: 0, changes: { name: "Tower B", status: "planned" } });
    const writers: ClientSocket[] = await Promise.all(
      range(1, WRITERS).map((index) => group.connect(nodes[index % 2]!, { userId: `writer-${index}`, companyId })),
    );
    const watchers = await Promise.all(nodes.map((node) => group.connect(node, { userId: user("watcher"), companyId })));
    const heard = watchers.map((socket) => collect<DocumentUpdated>(socket, "document:updated"));
    return { group, nodes, companyId, doc, writers, heard };
  };

  const versionsOf = (history: DocumentVersion[]) => history.map((version) => version.version).reverse();

  test("disjoint fields on one base version: one applies, the rest merge, nothing is lost, versions run 1..51", async () => {
    const { nodes, companyId, doc, writers, heard } = await setUp();
    const acks = await Promise.all(
      writers.map(
        (socket, index) =>
          request(socket, "document:update", { ...doc, baseVersion: 1, changes: { [`crew${index}`]: index }, clientTs: Date.now() }, 15_000) as Promise<UpdateAck>,
      ),
    );
    expect(acks.every((ack) => ack.ok)).toBe(true);
    const statuses = acks.map((ack) => (ack.ok ? ack.status : "error"));
    // One writer found version 1 current; every other one was stale and merged.
    expect(statuses.filter((status) => status === "applied")).toHaveLength(1);
    expect(statuses.filter((status) => status === "merged")).toHaveLength(WRITERS - 1);
    const committed = acks.map((ack) => (ack.ok && ack.status !== "conflict" ? ack.document.version : 0)).sort((a, b) => a - b);
    expect(committed).toEqual(range(2, WRITERS + 1));

    const latest = await nodes[1].engine.documents.get(companyId, doc.type, doc.id);
    expect(latest.version).toBe(WRITERS + 1);
    expect(latest.data).toEqual({
      name: "Tower B",
      status: "planned",
      ...Object.fromEntries(range(0, WRITERS - 1).map((index) => [`crew${index}`, index])),
    });
    const history = await nodes[0].engine.documents.history(companyId, doc.type, doc.id, 100);
    expect(versionsOf(history)).toEqual(range(1, WRITERS + 1));
    // No version drops a field an earlier one had.
    for (let index = 1; index < history.length; index += 1) {
      expect(Object.keys(history[index - 1]!.data).length).toBe(Object.keys(history[index]!.data).length + 1);
    }
    await waitFor(() => heard.every((updates) => updates.length === WRITERS), { message: "every version on both watchers" });
    await sleep(200);
    for (const updates of heard) expect(updates.map((update) => update.version).sort((a, b) => a - b)).toEqual(range(2, WRITERS + 1));
  });

  test("the same field: each version is won by exactly one writer, every stale base is answered with a conflict", async () => {
    const { nodes, companyId, doc, writers, heard } = await setUp();
    const conflicts: { base: number; ack: Extract<UpdateAck, { status: "conflict" }> }[] = [];
    const applied: { writer: number; base: number; document: DocumentVersion }[] = [];

    // Each writer retries from the version its conflict names until its value is in.
    await Promise.all(
      writers.map(async (socket, writer) => {
        let base = 1;
        for (let attempt = 0; attempt <= WRITERS; attempt += 1) {
          const ack = (await request(socket, "document:update", { ...doc, baseVersion: base, changes: { status: `crew-${writer}` } }, 15_000)) as UpdateAck;
          if (!ack.ok) throw new Error(`writer ${writer}: ${ack.error.code} ${ack.error.message}`);
          if (ack.status === "conflict") {
            conflicts.push({ base, ack });
            base = ack.current.version;
            continue;
          }
          applied.push({ writer, base, document: ack.document });
          return;
        }
        throw new Error(`writer ${writer} never got its update in`);
      }),
    );

    expect(applied.map((entry) => entry.writer).sort((a, b) => a - b)).toEqual(range(0, WRITERS - 1));
    expect(applied.map((entry) => entry.document.version).sort((a, b) => a - b)).toEqual(range(2, WRITERS + 1));
    // Nothing merged over someone else's value: a write lands only on the version it saw.
    for (const entry of applied) expect(entry.document.version).toBe(entry.base + 1);
    expect(conflicts.length).toBeGreaterThan(0);
    for (const { base, ack } of conflicts) {
      expect(ack.current.version).toBeGreaterThan(base);
      expect(ack.conflicts.map((conflict) => conflict.field)).toEqual(["status"]);
    }

    const history = await nodes[1].engine.documents.history(companyId, doc.type, doc.id, 100);
    expect(versionsOf(history)).toEqual(range(1, WRITERS + 1));
    const byVersion = new Map(applied.map((entry) => [entry.document.version, `crew-${entry.writer}`]));
    for (const version of history.slice(0, -1)) expect(version.data.status).toBe(byVersion.get(version.version));
    const latest = await nodes[0].engine.documents.get(companyId, doc.type, doc.id);
    expect(latest.data.status).toBe(byVersion.get(WRITERS + 1));
    await waitFor(() => heard.every((updates) => updates.length === WRITERS), { message: "every version on both watchers" });
  });

  test("one mutation sent through both nodes at once, by many sockets of the user: one commit, every answer names it and announces it", async () => {
    const { group, nodes, companyId, doc, heard } = await setUp();
    // One user's tabs and phones, half on each node, all resending the same queued write.
    const devices = await Promise.all(range(1, 20).map((index) => group.connect(nodes[index % 2]!, { userId: "site-engineer", companyId })));
    const update = { ...doc, baseVersion: 1, changes: { status: "poured" }, mutationId: "3f1c9a7e5b2d4c6a8e0f1a2b3c4d5e6f", mutationAgeMs: 2_000 };
    const acks = (await Promise.all(devices.map((socket) => request(socket, "document:update", update, 15_000)))) as UpdateAck[];
    expect(acks.every((ack) => ack.ok && ack.status === "applied")).toBe(true);
    const versions = new Set(acks.map((ack) => (ack.ok && ack.status !== "conflict" ? ack.document.version : null)));
    expect([...versions]).toEqual([2]);
    expect(acks.filter((ack) => (ack as { duplicate?: boolean }).duplicate)).toHaveLength(19);
    const history = await nodes[1].engine.documents.history(companyId, doc.type, doc.id, 100);
    expect(versionsOf(history)).toEqual([1, 2]);
    // The committing node announces the commit; the other node does too, once, at its first repeat (for all it
    // knows, the commit was never announced): one version twice, which a client that holds it drops.
    await waitFor(() => heard.every((updates) => updates.length === 2), { message: "the one commit on both watchers, from each node" });
    await sleep(100);
    expect(heard.map((updates) => updates.length)).toEqual([2, 2]);
    expect(new Set(heard.flat().map((update) => update.version))).toEqual(new Set([2]));
  });
});
