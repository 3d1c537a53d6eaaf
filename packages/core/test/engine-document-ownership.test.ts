import { afterEach, describe, expect, test } from "vitest";
import { collect, connectAs, request, startTestServer, waitFor, type TestServer } from "@truss/test-utils";
import type { ConflictResolver, ResolveInput } from "@truss/core";
import { errorAction, type DocumentUpdatedPayload } from "@truss/protocol";

/*
 * The update path reads the versions the store keeps decoded for it instead
 * of a fresh copy each time. Whatever an application gets back,
 * and whatever a custom resolver is handed, must therefore be its own copy:
 * changing it must never change what the store holds or what the next commit
 * is merged against.
 */

let server: TestServer;
afterEach(() => server?.close());

const seeded = { name: "Tower B", budget: { amount: 1_000_000, currency: "EUR" }, tags: ["north"] };

async function seed() {
  return server.engine.documents.update("acme", "project", "tower-b", { baseVersion: 0, changes: structuredClone(seeded) });
}

/** Changes everything reachable in `data`, top level and nested. */
function tamper(data: Record<string, unknown>) {
  (data.budget as { amount: number }).amount = -1;
  (data.tags as string[]).push("tampered");
  data.name = "tampered";
  data.extra = "tampered";
}

/** Commits a change of one other field on the latest version and returns what the commit holds. */
async function nextCommit(version: number, changes: Record<string, unknown> = { status: "active" }) {
  const result = await server.engine.documents.update("acme", "project", "tower-b", { baseVersion: version, changes });
  if (result.status === "conflict") throw new Error("unexpected conflict");
  return result.document.data;
}

test("changing the data engine.documents.update answered with changes neither the store nor the next commit", async () => {
  server = await startTestServer();
  const created = await seed();
  if (created.status === "conflict") throw new Error("unexpected conflict");
  tamper(created.document.data);
  expect(await nextCommit(1)).toEqual({ ...seeded, status: "active" });
  expect((await server.engine.documents.get("acme", "project", "tower-b")).data).toEqual({ ...seeded, status: "active" });
});

test("changing a merged answer, a conflict's current version or a rollback's answer changes nothing stored", async () => {
  server = await startTestServer();
  await seed();
  await nextCommit(1, { status: "active" });
  // Stale, on another field: merged on top of version 2.
  const merged = await server.engine.documents.update("acme", "project", "tower-b", { baseVersion: 1, changes: { phase: 1 } });
  expect(merged.status).toBe("merged");
  if (merged.status === "conflict") return;
  tamper(merged.document.data);
  // Stale, on a field changed since: a conflict carrying the latest version and the values in conflict.
  const conflict = await server.engine.documents.update("acme", "project", "tower-b", { baseVersion: 1, changes: { status: "closed" } });
  expect(conflict.status).toBe("conflict");
  if (conflict.status !== "conflict") return;
  tamper(conflict.current.data);
  const expected = { ...seeded, status: "active", phase: 1 };
  expect(await nextCommit(3, { phase: 2 })).toEqual({ ...expected, phase: 2 });
  const rolledBack = await server.engine.documents.rollback("acme", "project", "tower-b", 3);
  tamper(rolledBack.data);
  expect(await nextCommit(5, { phase: 3 })).toEqual({ ...expected, phase: 3 });
});

test("a custom resolver that changes its input or keeps its output cannot change what the store holds", async () => {
  let kept: Record<string, unknown> | null = null;
  const careless: ConflictResolver = {
    name: "careless",
    resolve({ base, current, changes }: ResolveInput) {
      const data = { ...current, ...changes };
      kept = data;
      tamper(current);
      if (base) tamper(base);
      return { outcome: "merged", data };
    },
  };
  server = await startTestServer({ resolver: careless });
  await seed();
  await nextCommit(1, { status: "active" });
  const merged = await server.engine.documents.update("acme", "project", "tower-b", { baseVersion: 1, changes: { phase: 1 } });
  expect(merged.status).toBe("merged");
  // What the resolver returned was committed as it was then (with the input it had tampered with).
  const committed = merged.status === "conflict" ? null : structuredClone(merged.document.data);
  tamper(kept!);
  expect(await nextCommit(3, { phase: 2 })).toEqual({ ...committed, phase: 2 });
  // Version 2, read by the resolver as its current version, is as it was committed.
  expect((await server.engine.documents.history("acme", "project", "tower-b", 10)).find((version) => version.version === 2)?.data).toEqual({
    ...seeded,
    status: "active",
  });
});

describe("what a custom resolver merges is taken as JSON carries it", () => {
  const pad = "p".repeat(2500);
  /** Merges by setting each changed field, and `notes` to `undefined` to delete it: a mistake JSON hides on the wire. */
  const deleting: ConflictResolver = {
    name: "deleting",
    resolve: ({ current, changes }: ResolveInput) => ({ outcome: "merged", data: { ...current, ...changes, notes: undefined } }),
  };

  test("a field it sets to undefined is gone for the watchers too, as in the store", async () => {
    server = await startTestServer({ resolver: deleting, authorize: () => true });
    await server.engine.documents.update("acme", "report", "r1", { baseVersion: 0, changes: { pad, notes: "old" } });
    await server.engine.documents.update("acme", "report", "r1", { baseVersion: 1, changes: { other: 1 } });
    const watcher = await connectAs(server.url, { userId: "carol", companyId: "acme" });
    const watched = await request(watcher, "document:watch", { type: "report", id: "r1" });
    const heard = collect<DocumentUpdatedPayload>(watcher, "document:updated");
    // Stale: the resolver merges it.
    expect(await server.engine.documents.update("acme", "report", "r1", { baseVersion: 1, changes: { other: 2 } })).toMatchObject({ status: "merged" });
    await waitFor(() => heard.length === 1);
    const server3 = await server.engine.documents.get("acme", "report", "r1");
    expect(Object.keys(server3.data).sort()).toEqual(["other", "pad"]);
    expect(applied(watched.document.data, heard[0]!)).toEqual(server3.data);
    watcher.close();
  });

  test.each([
    ["data nested past the depth limit", () => nested(80)],
    ["data with a cycle", () => {
      const data: Record<string, unknown> = {};
      data.self = data;
      return data;
    }],
    ["data with a BigInt", () => ({ total: 10n })],
    ["nothing, as it threw a TypeError", () => {
      throw new TypeError("Cannot read properties of undefined (reading 'trim')");
    }],
  ])("a resolver answering %s fails the write for good: HANDLER_ERROR (not a code clients retry), logged, nothing committed", async (_name, make) => {
    const logged: string[] = [];
    server = await startTestServer({
      logger: { warn() {}, error: (message: string) => logged.push(message) },
      resolver: { name: "odd", resolve: () => ({ outcome: "merged", data: make() as Record<string, unknown> }) },
    });
    await seed();
    await nextCommit(1, { status: "active" });
    const socket = await connectAs(server.url, { userId: "alice", companyId: "acme" });
    const answer = await request(socket, "document:update", { type: "project", id: "tower-b", baseVersion: 1, changes: { phase: 1 } });
    expect(answer).toMatchObject({ ok: false, error: { code: "HANDLER_ERROR" } });
    expect(errorAction(answer.error.code)).toBe("reject");
    expect(logged.join("\n")).toMatch(/conflict resolver "odd" failed/);
    expect((await server.engine.documents.get("acme", "project", "tower-b")).version).toBe(2);
    socket.close();
  });
});

/** An object `depth` levels deep. */
function nested(depth: number): Record<string, unknown> {
  let data: Record<string, unknown> = { leaf: true };
  for (let level = 1; level < depth; level++) data = { inner: data };
  return data;
}

/** What a client holds after an announcement: the whole document, or its delta applied to the version it held. */
function applied(held: Record<string, unknown>, update: DocumentUpdatedPayload): Record<string, unknown> {
  if (!("delta" in update)) return update.data;
  const next = { ...held, ...update.delta.set };
  for (const field of update.delta.unset ?? []) delete next[field];
  return next;
}
