/**
 * Every callback an app hands `@truss/client`, misbehaving every way one can:
 * nothing goes unhandled, every request the app makes resolves or rejects
 * with a coded `TrussClientError`, no inbox message is lost (each is offered
 * to the app at least once), and once the callback behaves again the client
 * serves as before. The callbacks: `getToken`, the dedup, position and outbox
 * stores (method by method), `onConflict`, and every listener at once.
 *
 * A real Truss server on a real HTTP server; the client over a WebSocket.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from "vitest";
import { memoryDedupStore, memoryOutboxStore, memoryPositionStore, type ConnectOptions, type TrussClient } from "@truss/client";
import { CLIENT_ERROR_CODES, ERROR_CODES, isTrussClientError } from "@truss/client";
import { eachMisbehaviour, misbehave, MISBEHAVIOURS, recordUnhandled, signToken, sleep, waitFor, type Misbehaviour, type UnhandledRecord } from "@truss/test-utils";
import { closeAll, openClient, startServer } from "./helpers.js";

const fault: { callback: string | null; mode: Misbehaviour | null; hits: number } = { callback: null, mode: null, hits: 0 };

/** Misbehaves as `fault` says, counting the hit (a case whose callback was never called proves nothing). */
function hit(where: string): any {
  fault.hits += 1;
  return misbehave(fault.mode!, where);
}
const KNOWN_CODES = new Set<string>([...ERROR_CODES, ...CLIENT_ERROR_CODES]);
const alice = { userId: "alice", companyId: "acme", deviceId: "alice-phone" };
const report = { type: "site-report", id: "r-1" };

/** `store` with each method misbehaving when `fault` names `${name}.${method}`. */
function hostile<T extends object>(name: string, store: T): T {
  const wrapped: Record<string, unknown> = {};
  for (const [method, value] of Object.entries(store)) {
    wrapped[method] =
      typeof value !== "function"
        ? value
        : (...args: unknown[]) => (fault.callback === `${name}.${method}` ? hit(`${name}.${method}`) : (value as (...a: unknown[]) => unknown).apply(store, args));
  }
  return wrapped as T;
}

/** A callback that misbehaves when `fault` names it, else answers `ok()`. */
const callback =
  <A extends unknown[]>(name: string, ok: (...args: A) => any) =>
  (...args: A) =>
    fault.callback === name ? hit(name) : ok(...args);

const CALLBACKS = [
  "getToken",
  "dedup.has",
  "dedup.add",
  "positions.get",
  "positions.set",
  "positions.delete",
  "outbox.load",
  "outbox.put",
  "outbox.delete",
  "onConflict",
  "listeners",
] as const;

let url: string;
let server: Awaited<ReturnType<typeof startServer>>;
let unhandled: UnhandledRecord;

beforeAll(async () => {
  // The client writes a throwing onError listener's failure to the console: hundreds of lines here, asserted by what follows instead.
  vi.spyOn(console, "error").mockImplementation(() => undefined);
  unhandled = recordUnhandled();
  server = await startServer({ topics: { patterns: ["project:{projectId}"] }, authorize: () => true });
  url = server.url;
  server.engine.handle("site:note", () => ({ noted: true }));
  await server.engine.documents.update("acme", report.type, report.id, { baseVersion: 0, changes: { crew: 1, weather: "dry" } });
});

afterEach(async () => {
  fault.callback = fault.mode = null;
});

afterAll(async () => {
  vi.restoreAllMocks();
  await closeAll();
  unhandled.stop();
});

/** Runs an app request: it must resolve, or reject with a TrussClientError of a known code. */
async function settle(what: string, run: () => Promise<unknown>, problems: string[], withinMs = 4000): Promise<void> {
  try {
    await Promise.race([run(), sleep(withinMs).then(() => Promise.reject(new Error(`no answer within ${withinMs} ms`)))]);
  } catch (error) {
    if (!isTrussClientError(error) || !KNOWN_CODES.has(error.code)) problems.push(`${what}: rejected with ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
  }
}

/** One client with every callback able to misbehave, through a case: the fault, then the callback behaving again. */
async function runCase(name: string, mode: Misbehaviour): Promise<string[]> {
  const problems: string[] = [];
  const offered = new Set<string>();
  const sent: string[] = [];
  const options: Partial<ConnectOptions> = {
    getToken: callback("getToken", () => signToken({ userId: alice.userId, companyId: alice.companyId })),
    dedupStore: hostile("dedup", memoryDedupStore()),
    positionStore: hostile("positions", memoryPositionStore()),
    outbox: { store: hostile("outbox", memoryOutboxStore()), events: ["site:note"] },
    onConflict: callback("onConflict", () => "mine"),
    // A request made while the client cannot connect (getToken failing) ends as TIMEOUT after this.
    ackTimeoutMs: 1000,
    // A callback that hangs counts as failed after this.
    callbackTimeoutMs: 300,
  };
  Object.assign(fault, { callback: name, mode, hits: 0 });
  const client: TrussClient<any> = openClient(url, alice, options);
  const listening = (what: string) => callback("listeners", () => undefined) as (...args: any[]) => any;
  client.onInbox((message) => {
    offered.add(message.id);
    return listening("onInbox")();
  });
  client.on("stock:updated", listening("on"));
  client.onTopic("project:p1", "project:updated", listening("onTopic"));
  client.onStatus(listening("onStatus"));
  client.onError(listening("onError"));
  client.onSync(listening("onSync"));
  client.onDropped(listening("onDropped"));
  client.onResync(listening("onResync"));
  client.onRecovering(listening("onRecovering"));
  client.documents.onUpdated(listening("documents.onUpdated"));

  // The fault: connect, messages, broadcasts, a topic, documents (one of them stale), an event through the outbox.
  await waitFor(() => client.status === "connected", { timeoutMs: 1000 }).catch(() => undefined);
  sent.push((await server.engine.toUser("acme", "alice").emit("expense:approved", { n: 1 })).id);
  await server.engine.toCompany("acme").emit("stock:updated", { sku: "s-1" });
  // What the client keeps until it is connected (a subscription, queued writes) settles once it is; the rest within ackTimeoutMs.
  const kept: Array<Promise<void>> = [];
  const keep = (what: string, run: () => Promise<unknown>) => void kept.push(settle(what, run, problems, 8000));
  keep("subscribe", () => client.subscribe("project:p1"));
  await server.engine.toTopic("acme", "project:p1").emit("project:updated", { id: "p1" });
  await settle("documents.get", () => client.documents.get(report.type, report.id), problems);
  keep("documents.update", () => client.documents.update(report.type, report.id, { crew: 2 }));
  await server.engine.documents.update("acme", report.type, report.id, { baseVersion: 1, changes: { weather: "rain", crew: 9 } }).catch(() => undefined);
  keep("documents.update (stale)", () => client.documents.update(report.type, report.id, { crew: 3 }, { baseVersion: 1 }));
  keep("emit through the outbox", () => client.emit("site:note", { text: "pump failed" }));
  await settle("presence", () => client.presence.list(), problems);
  await sleep(50);
  keep("unsubscribe", () => client.unsubscribe("project:p1"));
  await sleep(50);

  // The callback behaves again: the same client serves, what it kept settles, and every message sent was offered to the app.
  if (fault.hits === 0) problems.push("the callback was never called during the fault");
  fault.callback = fault.mode = null;
  await waitFor(() => client.status === "connected", { timeoutMs: 3000 }).catch(() => problems.push(`not connected once the callback behaved again (status ${client.status})`));
  await Promise.all(kept);
  sent.push((await server.engine.toUser("acme", "alice").emit("expense:approved", { n: 2 })).id);
  await waitFor(() => sent.every((id) => offered.has(id)), { timeoutMs: 3000 }).catch(() => problems.push(`messages never offered to the app: ${sent.filter((id) => !offered.has(id)).join(", ")}`));
  const last = await client.documents.update(report.type, report.id, { crew: 4 }).catch((error: unknown) => error);
  if ((last as { status?: unknown })?.status !== "applied") problems.push(`a document update once the callback behaved again: ${String((last as Error)?.message ?? JSON.stringify(last))}`);
  client.close();
  await sleep(20);
  return problems;
}

describe("a client callback misbehaving", () => {
  test.each(CALLBACKS)("%s, every way: coded answers, nothing unhandled or lost, served again after", async (name) => {
    const failures = await eachMisbehaviour([...MISBEHAVIOURS, "hangs"], unhandled, async (mode, problems) => void problems.push(...(await runCase(name, mode))));
    expect(failures).toEqual([]);
    // getToken's eight cases each wait out the requests a client that cannot connect makes (ackTimeoutMs): about 26 s.
  }, 90_000);
});
