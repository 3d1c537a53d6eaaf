import { afterEach, expect, test } from "vitest";
import { memoryDocumentStore, type DocumentStore } from "@truss/core";
import type { DocumentVersion } from "@truss/protocol";
import { sleep, waitFor, type TcpProxy, type TestServer } from "@truss/test-utils";
import {
  localStorageOutboxStore,
  memoryOutboxStore,
  type DocumentUpdateOutcome,
  type PendingWrite,
  type SettledWrite,
  type SyncState,
  type TrussClientError,
} from "@truss/client";
import { alice, bob, closeAll, openClient, reconnection, startProxy, startServer, waitForStatus } from "./helpers.js";
import { fakeStorage } from "./stream-helpers.js";

let server: TestServer | undefined;
let proxy: TcpProxy | undefined;
afterEach(closeAll);

const REPORT = { type: "site-report", id: "r-7" };

async function start(options: Parameters<typeof startServer>[0] = {}) {
  server = await startServer(options);
  await server.engine.documents.update("acme", REPORT.type, REPORT.id, { baseVersion: 0, changes: { weather: "dry", crew: 4 } });
  proxy = await startProxy(server.port);
  return { server, proxy };
}

const history = () => server!.engine.documents.history("acme", REPORT.type, REPORT.id, 100);

/** Takes the network away: open connections drop and new ones hang unanswered, as in a basement. */
function goOffline(network: TcpProxy) {
  network.hold();
  network.cut();
}

test("updates made while the server is unreachable are committed once, in order, when it returns", async () => {
  const { proxy } = await start();
  // A short ack timeout: the writes must outlive many of them while offline.
  const client = openClient(proxy.url, alice, { ackTimeoutMs: 300 });
  await waitForStatus(client, "connected");
  await client.documents.get(REPORT.type, REPORT.id);

  const states: SyncState[] = [];
  client.onSync((state) => states.push(state));
  goOffline(proxy);
  await waitForStatus(client, "reconnecting");
  const writes = [
    client.documents.update(REPORT.type, REPORT.id, { crew: 5 }),
    client.documents.update(REPORT.type, REPORT.id, { weather: "rain" }),
    client.documents.update(REPORT.type, REPORT.id, { crew: 6, notes: "pump failed" }),
  ];
  await waitFor(() => client.outbox.size === 3);
  expect(client.sync).toMatchObject({ status: "reconnecting", pendingWrites: 3, inSync: false });
  expect(client.outbox.pending.map((write) => write.kind === "document" && write.changes)).toEqual([{ crew: 5 }, { weather: "rain" }, { crew: 6, notes: "pump failed" }]);
  // Several ack timeouts pass offline; nothing is given up.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  expect(client.outbox.size).toBe(3);

  proxy.release();
  const outcomes = await Promise.all(writes);
  expect(outcomes.map((outcome) => [outcome.status, outcome.document?.version])).toEqual([
    ["applied", 2],
    ["applied", 3],
    ["applied", 4],
  ]);
  const versions = await history();
  expect(versions.map((version) => version.version)).toEqual([4, 3, 2, 1]);
  expect(versions[0]!.data).toEqual({ weather: "rain", crew: 6, notes: "pump failed" });
  expect(client.outbox.size).toBe(0);
  await waitFor(() => client.sync.inSync);
  expect(states.at(-1)).toMatchObject({ status: "connected", pendingWrites: 0, inSync: true });
  expect(states.some((state) => state.status === "reconnecting" && state.pendingWrites === 3)).toBe(true);
});

test("a reload while offline loses nothing: the next page sends what the last one queued", async () => {
  const { proxy } = await start();
  const storage = fakeStorage();
  const store = () => localStorageOutboxStore("truss:outbox:acme:alice", storage);
  const firstPage = openClient(proxy.url, alice, { outbox: { store: store() } });
  await waitForStatus(firstPage, "connected");
  await firstPage.documents.get(REPORT.type, REPORT.id);
  goOffline(proxy);
  await waitForStatus(firstPage, "reconnecting");
  const lost = [firstPage.documents.update(REPORT.type, REPORT.id, { crew: 7 }), firstPage.documents.update(REPORT.type, REPORT.id, { notes: "rebar delivered" })];
  await waitFor(() => firstPage.outbox.size === 2);
  const rejections = lost.map((write) => write.catch((error: TrussClientError) => error.code));
  // The page goes away while offline: its promises end, its writes stay in storage.
  firstPage.close();
  expect(await Promise.all(rejections)).toEqual(["CLIENT_CLOSED", "CLIENT_CLOSED"]);

  proxy.release();
  const settled: SettledWrite[] = [];
  const nextPage = openClient(proxy.url, alice, { outbox: { store: store() } });
  nextPage.outbox.onSettled((write) => settled.push(write));
  await nextPage.outbox.ready;
  expect(nextPage.outbox.pending.map((write) => write.kind === "document" && write.changes)).toEqual([{ crew: 7 }, { notes: "rebar delivered" }]);
  await waitFor(() => settled.length === 2, { message: "both restored writes settled" });
  expect(settled.map(({ result }) => (result as DocumentUpdateOutcome).document?.version)).toEqual([2, 3]);
  expect((await history())[0]!.data).toEqual({ weather: "dry", crew: 7, notes: "rebar delivered" });
  expect(store().load()).toEqual([]);
});

test("an ack lost after the commit: the resend yields the same version and history shows one commit", async () => {
  const { server, proxy } = await start();
  const client = openClient(proxy.url, alice);
  await waitForStatus(client, "connected");
  await client.documents.get(REPORT.type, REPORT.id);

  // The server's answers stop reaching the client; its requests still arrive.
  proxy.stallDownstream();
  const write = client.documents.update(REPORT.type, REPORT.id, { crew: 9 });
  await waitFor(async () => (await server.engine.documents.get("acme", REPORT.type, REPORT.id)).version === 2, { message: "the commit" });
  const back = reconnection(client);
  proxy.cut();
  proxy.resumeDownstream();
  await back;

  const outcome = await write;
  expect(outcome).toMatchObject({ status: "applied", duplicate: true, document: { version: 2, data: { crew: 9 } } });
  expect((await history()).map((version) => version.version)).toEqual([2, 1]);
  expect(await server.engine.metrics()).toMatch(/truss_document_mutations_total\{outcome="duplicate"\} 1/);
});

test("a final refusal rejects the write and lets the next ones through", async () => {
  const policy = (_: unknown, request: { action: string; id?: string }) => request.action !== "document:write" || request.id !== "locked";
  const { proxy } = await start({ authorize: policy as never });
  const client = openClient(proxy.url, alice);
  await waitForStatus(client, "connected");
  const refused = client.documents.update(REPORT.type, "locked", { crew: 1 }).catch((error: TrussClientError) => error.code);
  const next = client.documents.update(REPORT.type, REPORT.id, { crew: 2 }, { baseVersion: 1 });
  expect(await refused).toBe("FORBIDDEN");
  expect(await next).toMatchObject({ status: "applied", document: { version: 2 } });
  expect(client.outbox.size).toBe(0);
});

/**
 * A document store that fails, as a bug does (a `TypeError`, answered
 * `INTERNAL_ERROR`), on every commit of data with a `photos` field. The
 * failure numbered `stallAt` waits for `release()` first.
 */
function storeFailingOnPhotos(stallAt = 0) {
  const documents = memoryDocumentStore();
  const failed: Array<string | undefined> = [];
  let release = () => {};
  const stalled = new Promise<void>((resolve) => (release = resolve));
  const store = {
    ...documents,
    async compareAndSet(...args: Parameters<typeof documents.compareAndSet>) {
      const [, , data, , mutation] = args;
      if ("photos" in data) {
        failed.push(mutation?.id);
        if (failed.length === stallAt) await stalled;
        throw new TypeError("Cannot read properties of undefined (reading 'trim')");
      }
      return documents.compareAndSet(...args);
    },
  };
  return { store, failed, release };
}

test("a write the server refuses with the same passing code every time is given up after maxRefusedAttempts (default 5), each refusal reported; the writes behind it commit once", async () => {
  const { store, failed } = storeFailingOnPhotos();
  const { server, proxy } = await start({ documents: store });
  const expenses: Array<string | undefined> = [];
  // A careless handler: it stores the expense through the engine, whose store fails on it the same way every time.
  server.engine.handle("expense:submit", async (data, { mutationId }) => {
    expenses.push(mutationId);
    await server.engine.documents.update("acme", "expense", String(mutationId), { baseVersion: 0, changes: data as Record<string, unknown> });
    return { stored: true };
  });
  const client = openClient(proxy.url, alice, { outbox: { events: ["expense:submit"] } });
  const reported: TrussClientError[] = [];
  client.onError((error) => reported.push(error));
  const settled: SettledWrite[] = [];
  client.outbox.onSettled((write) => settled.push(write));
  await waitForStatus(client, "connected");

  const poison = client.emit("expense:submit", { amount: 12, photos: [{ name: "no url" }] }).catch((error: TrussClientError) => error);
  const update = client.documents.update(REPORT.type, REPORT.id, { crew: 5 }, { baseVersion: 1 });
  const expense = client.emit("expense:submit", { amount: 30 });
  const refusal = await poison;
  expect(refusal).toMatchObject({ code: "INTERNAL_ERROR", message: expect.stringContaining("5 times in a row") });
  expect(await update).toMatchObject({ status: "applied", document: { version: 2, data: { crew: 5 } } });
  expect(await expense).toEqual({ stored: true });

  // The poison event ran 5 times, all with one mutation id; each write behind it once.
  const poisonId = settled[0]!.write.mutationId;
  expect(expenses.filter((id) => id === poisonId)).toHaveLength(5);
  expect(failed).toHaveLength(5);
  expect(expenses).toHaveLength(6);
  expect((await history()).map((version) => version.version)).toEqual([2, 1]);
  expect(reported.map((error) => error.code)).toEqual(Array(5).fill("INTERNAL_ERROR"));
  expect(reported.at(-1)).toBe(refusal);
  expect(reported[0]!.message).toContain(`event "expense:submit" (mutation ${poisonId})`);
  expect(settled.map(({ write, error }) => [write.kind, error?.code])).toEqual([
    ["event", "INTERNAL_ERROR"],
    ["document", undefined],
    ["event", undefined],
  ]);
  expect(client.outbox.size).toBe(0);
});

test("the count of a write's failures on the server is kept with the write: a page load goes on from it rather than starting again", async () => {
  const { store: documents, failed } = storeFailingOnPhotos();
  const { proxy } = await start({ documents });
  const storage = fakeStorage();
  const outboxStore = () => localStorageOutboxStore("truss:outbox:acme:alice", storage);
  const firstPage = openClient(proxy.url, alice, { outbox: { store: outboxStore() } });
  const firstReports: string[] = [];
  firstPage.onError((error) => firstReports.push(error.code));
  await waitForStatus(firstPage, "connected");
  void firstPage.documents.update(REPORT.type, REPORT.id, { photos: ["no url"] }, { baseVersion: 1 }).catch(() => undefined);
  // Three failures answered and counted with the write (the third answer may still be on its way when the store failed).
  // localStorage answers at once.
  const counted = () => (outboxStore().load() as Array<{ suspectRefusals?: { count: number } }>)[0]?.suspectRefusals?.count;
  await waitFor(() => counted() === 3, { timeoutMs: 10_000, message: "three failures counted on the first page" });
  firstPage.close();
  expect(outboxStore().load()).toMatchObject([{ suspectRefusals: { code: "INTERNAL_ERROR", count: 3 } }]);
  // A fourth send may have been on its way when the page closed: its failure reached no store. What the server saw
  // of the first page is counted once its packets have all landed.
  await sleep(300);
  const failedOnFirstPage = failed.length;
  expect(failedOnFirstPage).toBeGreaterThanOrEqual(3);

  const nextPage = openClient(proxy.url, alice, { outbox: { store: outboxStore() } });
  const settled: SettledWrite[] = [];
  nextPage.outbox.onSettled((write) => settled.push(write));
  await waitFor(() => settled.length === 1, { timeoutMs: 10_000, message: "the write given up on the next page" });
  // Two more, not five: five in a row counted in all.
  expect(failed.length - failedOnFirstPage).toBe(2);
  expect(settled[0]!.error).toMatchObject({ code: "INTERNAL_ERROR", message: expect.stringContaining("5 times in a row") });
  expect(outboxStore().load()).toEqual([]);
});

test("a document write refused with a passing code is given up after the configured maxRefusedAttempts; a transport failure does not count", async () => {
  // The third send reaches the store and is stalled there while the connection drops: it gets no answer.
  const { store, failed, release } = storeFailingOnPhotos(3);
  const { proxy } = await start({ documents: store });
  const client = openClient(proxy.url, alice, { ackTimeoutMs: 1000, outbox: { maxRefusedAttempts: 3 } });
  const reported: TrussClientError[] = [];
  client.onError((error) => reported.push(error));
  await waitForStatus(client, "connected");

  const poison = client.documents.update(REPORT.type, REPORT.id, { photos: [{ name: "no url" }] }, { baseVersion: 1 }).catch((error: TrussClientError) => error);
  // The next edit was made on the same base: it waits for the poison write, then goes on its own.
  const next = client.documents.update(REPORT.type, REPORT.id, { crew: 5 }, { baseVersion: 1 });
  await waitFor(() => failed.length === 3);
  const back = reconnection(client);
  proxy.cut();
  await back;
  release();
  expect(await poison).toMatchObject({ code: "INTERNAL_ERROR", message: expect.stringContaining(`update of ${REPORT.type}/${REPORT.id}`) });
  // Four sends reached the store; three were answered, and those three gave the write up.
  expect(failed).toHaveLength(4);
  expect(new Set(failed).size).toBe(1);
  expect(reported.filter((error) => error.code === "INTERNAL_ERROR")).toHaveLength(3);
  expect(await next).toMatchObject({ status: "applied", document: { version: 2, data: { weather: "dry", crew: 5 } } });
  expect((await history()).map((version) => version.version)).toEqual([2, 1]);
  expect(() => openClient(proxy.url, alice, { outbox: { maxRefusedAttempts: 0 } })).toThrow(/maxRefusedAttempts/);
});

test("a store that stays down past maxRefusedAttempts is waited out: STORE_UNAVAILABLE never gives a write up, and each refusal is reported", async () => {
  const documents = memoryDocumentStore();
  let down = false;
  let refusals = 0;
  const store = {
    ...documents,
    async compareAndSet(...args: Parameters<typeof documents.compareAndSet>) {
      if (down) {
        refusals += 1;
        // A driver's failure, not a bug: the engine answers STORE_UNAVAILABLE.
        throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6379"), { code: "ECONNREFUSED" });
      }
      return documents.compareAndSet(...args);
    },
  };
  const { proxy } = await start({ documents: store });
  const client = openClient(proxy.url, alice, { outbox: { maxRefusedAttempts: 2 } });
  const reported: TrussClientError[] = [];
  client.onError((error) => reported.push(error));
  await waitForStatus(client, "connected");
  down = true;
  const update = client.documents.update(REPORT.type, REPORT.id, { crew: 7 }, { baseVersion: 1 });
  await waitFor(() => refusals >= 4, { timeoutMs: 10_000, message: "twice the bound of refusals" });
  down = false;
  expect(await update).toMatchObject({ status: "applied", document: { version: 2, data: { crew: 7 } } });
  expect(reported.length).toBeGreaterThanOrEqual(4);
  expect(new Set(reported.map((error) => error.code))).toEqual(new Set(["STORE_UNAVAILABLE"]));
  expect(reported[0]!.message).toMatch(/it will be sent again/);
});

test("a queued event whose handler answers what cannot be sent, and a write a custom resolver throws on, are refused at once; the edits behind them commit", async () => {
  const throwsOnPhotos = {
    name: "photos",
    resolve: ({ current, changes }: { current: Record<string, unknown>; changes: Record<string, unknown> }) => {
      const photos = (changes.photos as Array<{ url?: string }> | undefined)?.map((photo) => photo.url!.trim());
      return { outcome: "merged" as const, data: { ...current, ...changes, ...(photos ? { photos } : {}) } };
    },
  };
  const { server, proxy } = await start({ resolver: throwsOnPhotos });
  let runs = 0;
  server.engine.handle("expense:submit", (data) => {
    runs++;
    return { amountCents: BigInt((data as { amount: number }).amount * 100) };
  });
  const client = openClient(proxy.url, alice, { outbox: { events: ["expense:submit"] } });
  await waitForStatus(client, "connected");
  await client.documents.get(REPORT.type, REPORT.id);
  await server.engine.documents.update("acme", REPORT.type, REPORT.id, { baseVersion: 1, changes: { weather: "rain" } });

  const expense = client.emit("expense:submit", { amount: 12 }).catch((error: TrussClientError) => error.code);
  const stale = client.documents.update(REPORT.type, REPORT.id, { photos: [{ name: "no url" }] }).catch((error: TrussClientError) => error.code);
  const next = client.documents.update(REPORT.type, REPORT.id, { crew: 5 });
  expect(await expense).toBe("HANDLER_ERROR");
  expect(await stale).toBe("HANDLER_ERROR");
  expect(await next).toMatchObject({ status: "merged", document: { version: 3, data: { weather: "rain", crew: 5 } } });
  expect(runs).toBe(1);
});

test("a discarded write rejects DISCARDED and is never sent", async () => {
  const { proxy } = await start();
  const client = openClient(proxy.url, alice);
  await waitForStatus(client, "connected");
  goOffline(proxy);
  await waitForStatus(client, "reconnecting");
  const kept = client.documents.update(REPORT.type, REPORT.id, { crew: 11 }, { baseVersion: 1 });
  const dropped = client.documents.update(REPORT.type, REPORT.id, { crew: 12 }, { baseVersion: 1 }).catch((error: TrussClientError) => error.code);
  await waitFor(() => client.outbox.size === 2);
  const [, second] = client.outbox.pending as PendingWrite[];
  expect(await client.outbox.discard(second!.mutationId)).toBe(true);
  expect(await client.outbox.discard(second!.mutationId)).toBe(false);
  expect(await dropped).toBe("DISCARDED");
  proxy.release();
  expect(await kept).toMatchObject({ document: { version: 2, data: { crew: 11 } } });
  expect((await history()).map((version) => version.version)).toEqual([2, 1]);
});

test("a queued write whose base went stale goes through the resolver: merged, or a conflict for onConflict", async () => {
  const { server, proxy } = await start();
  const asked: unknown[] = [];
  const client = openClient(proxy.url, alice, {
    onConflict: (conflict) => {
      asked.push(conflict.conflicts);
      return "mine";
    },
  });
  await waitForStatus(client, "connected");
  await client.documents.get(REPORT.type, REPORT.id);
  goOffline(proxy);
  await waitForStatus(client, "reconnecting");
  const merged = client.documents.update(REPORT.type, REPORT.id, { notes: "scaffold up" });
  const conflicting = client.documents.update(REPORT.type, REPORT.id, { weather: "storm" });
  await waitFor(() => client.outbox.size === 2);
  // Meanwhile in the office: someone changes the weather (and only that).
  await server.engine.documents.update("acme", REPORT.type, REPORT.id, { baseVersion: 1, changes: { weather: "fog" } }, "bob");
  proxy.release();
  expect(await merged).toMatchObject({ status: "merged", document: { version: 3 } });
  const settled = await conflicting;
  expect(settled).toMatchObject({ status: "applied", resolution: "mine", document: { version: 4, data: { weather: "storm", notes: "scaffold up" } } });
  expect(asked).toEqual([[{ field: "weather", base: "dry", current: "fog", incoming: "storm" }]]);
});

test("an outbox's own queued edits of one field never conflict with each other, even merged with others' edits", async () => {
  const { server, proxy } = await start();
  const client = openClient(proxy.url, alice);
  await waitForStatus(client, "connected");
  await client.documents.get(REPORT.type, REPORT.id);
  goOffline(proxy);
  await waitForStatus(client, "reconnecting");
  const edits = [1, 2, 3].map((crew) => client.documents.update(REPORT.type, REPORT.id, { crew }));
  await waitFor(() => client.outbox.size === 3);
  await server.engine.documents.update("acme", REPORT.type, REPORT.id, { baseVersion: 1, changes: { notes: "from the office" } }, "bob");
  proxy.release();
  const outcomes = await Promise.all(edits);
  expect(outcomes.map((outcome) => outcome.status)).toEqual(["merged", "merged", "merged"]);
  expect((await history())[0]!.data).toEqual({ weather: "dry", crew: 3, notes: "from the office" });
});

test("online, each edit of one field typed before the last one's answer, with others' edits landing between: none conflicts with the user's own, and the last one is kept", async () => {
  // The phone's slow compare-and-sets stand for its slow link; with a policy the phone hears no broadcasts, so only its own answers move its known version.
  const documents = memoryDocumentStore();
  const slow: DocumentStore = Object.assign(Object.create(documents) as DocumentStore, {
    compareAndSet: async (...args: Parameters<DocumentStore["compareAndSet"]>) => {
      if (args[3] === alice.userId) await sleep(300);
      return documents.compareAndSet(...args);
    },
  });
  const server = await startServer({ documents: slow, authorize: () => true });
  const phone = openClient(server.url, alice);
  const office = openClient(server.url, bob);
  await Promise.all([waitForStatus(phone, "connected"), waitForStatus(office, "connected")]);
  await office.documents.update("site-report", "r-9", { notes: "", weather: "sun" });
  await phone.documents.get("site-report", "r-9");

  const first = phone.documents.update("site-report", "r-9", { notes: "crack" });
  await sleep(100);
  await office.documents.update("site-report", "r-9", { weather: "rain" });
  const second = phone.documents.update("site-report", "r-9", { notes: "crack in slab" });
  await first;
  // Typed after the first answer moved the phone's known version, while the second is still on its way.
  const third = phone.documents.update("site-report", "r-9", { notes: "crack in slab, 2 m" });
  await sleep(100);
  await office.documents.update("site-report", "r-9", { weather: "storm" });
  const outcomes = await Promise.all([second, third]);
  expect(outcomes.map((outcome) => outcome.status)).toEqual(["merged", "merged"]);
  expect((await office.documents.get("site-report", "r-9")).data).toEqual({ notes: "crack in slab, 2 m", weather: "storm" });
});

test("a queued write the policy could not decide on for a moment (it threw) is sent again and committed, not discarded", async () => {
  // What the policy reads (the app's database) is down for its first two answers.
  let failures = 2;
  const server = await startServer({
    authorize: () => {
      if (failures > 0) {
        failures -= 1;
        throw new Error("database down");
      }
      return true;
    },
  });
  const phone = openClient(server.url, alice);
  const errors: string[] = [];
  phone.onError((error) => errors.push(error.code));
  await waitForStatus(phone, "connected");
  const outcome = await phone.documents.update("site-report", "r-7", { notes: "rebar delivered" });
  expect(outcome.status).toBe("applied");
  expect(errors).toEqual(["INTERNAL_ERROR", "INTERNAL_ERROR"]);
  expect((await server.engine.documents.get("acme", "site-report", "r-7")).data).toEqual({ notes: "rebar delivered" });
});

test("20 devices each queue 10 offline edits to one document and reconnect together: each applied or a conflict, none twice, none lost", async () => {
  const documents = memoryDocumentStore({ maxHistory: 1000 });
  const { server, proxy } = await start({ documents });
  const devices = Array.from({ length: 20 }, (_, index) =>
    openClient(proxy.url, { userId: `crew-${index % 5}`, companyId: "acme", deviceId: `phone-${index}` }, { ackTimeoutMs: 2000 }),
  );
  await Promise.all(devices.map((device) => waitForStatus(device, "connected")));
  await Promise.all(devices.map((device) => device.documents.get(REPORT.type, REPORT.id)));
  goOffline(proxy);
  await Promise.all(devices.map((device) => waitForStatus(device, "reconnecting")));

  // Each device edits its own field ten times, and every fifth edit also the shared `notes`.
  const writes = devices.flatMap((device, index) =>
    Array.from({ length: 10 }, (_, edit) => {
      const changes: Record<string, unknown> = { [`count-${index}`]: edit };
      if (edit % 5 === 4) changes.notes = `phone-${index} edit ${edit}`;
      return { device: index, edit, changes, outcome: device.documents.update(REPORT.type, REPORT.id, changes) };
    }),
  );
  await waitFor(() => devices.every((device) => device.outbox.size === 10));
  proxy.release();
  const outcomes = await Promise.all(writes.map((write) => write.outcome));

  const committed = outcomes.filter((outcome): outcome is DocumentUpdateOutcome & { document: DocumentVersion } => outcome.status !== "conflict");
  const conflicts = outcomes.filter((outcome) => outcome.status === "conflict");
  expect(committed.length + conflicts.length).toBe(200);
  // None twice: no write was answered as a repeat, and no two writes share a committed version.
  expect(committed.filter((outcome) => outcome.duplicate)).toHaveLength(0);
  const versions = committed.map((outcome) => outcome.document.version).sort((a, b) => a - b);
  expect(new Set(versions).size).toBe(versions.length);
  // None lost: history holds exactly the seed and those commits.
  const stored = (await documents.history({ companyId: "acme", ...REPORT }, 1000)).map((version) => version.version).sort((a, b) => a - b);
  expect(stored).toEqual([1, ...versions]);
  // A device's own field never conflicts with itself; only `notes`, edited by all, can.
  for (const outcome of conflicts) {
    expect(outcome.conflicts!.map((conflict) => conflict.field)).toEqual(["notes"]);
  }
  const latest = await server.engine.documents.get("acme", REPORT.type, REPORT.id);
  // Each device's own field holds its last committed edit: its writes went out in order.
  for (let index = 0; index < devices.length; index++) {
    const lastCommitted = Math.max(...writes.filter((write, at) => write.device === index && outcomes[at]!.status !== "conflict").map((write) => write.edit));
    expect(latest.data[`count-${index}`]).toBe(lastCommitted);
  }
  expect(devices.every((device) => device.outbox.size === 0)).toBe(true);
});

test("a queued application event is sent once the connection is back, with the same mutation id on every send", async () => {
  server = await startServer();
  proxy = await startProxy(server.port);
  const seen: Array<string | undefined> = [];
  server.engine.handle("expense:submit", (data, { mutationId }) => {
    seen.push(mutationId);
    return { stored: (data as { amount: number }).amount };
  });
  const client = openClient(proxy.url, bob, { outbox: { events: ["expense:submit"], store: memoryOutboxStore() } });
  await waitForStatus(client, "connected");
  goOffline(proxy);
  await waitForStatus(client, "reconnecting");
  const submitted = client.emit("expense:submit", { amount: 120 });
  await waitFor(() => client.sync.pendingWrites === 1);
  proxy.release();
  expect(await submitted).toEqual({ stored: 120 });
  expect(seen).toHaveLength(1);
  expect(seen[0]).toMatch(/^[0-9a-f]{32}$/);
  // An event not listed is not queued: it is a plain request.
  server.engine.handle("ping", () => "pong");
  expect(await client.emit("ping", {})).toBe("pong");
  expect(seen).toHaveLength(1);
});

test("a write the outbox store cannot keep is refused STORAGE_FAILED, not silently kept in memory only", async () => {
  const { proxy } = await start();
  const full = localStorageOutboxStore("truss:outbox", {
    getItem: () => null,
    setItem: () => {
      throw new Error("QuotaExceededError");
    },
  });
  const client = openClient(proxy.url, alice, { outbox: { store: full } });
  await waitForStatus(client, "connected");
  await expect(client.documents.update(REPORT.type, REPORT.id, { crew: 1 }, { baseVersion: 1 })).rejects.toMatchObject({ code: "STORAGE_FAILED" });
  expect(client.outbox.size).toBe(0);
  expect((await history()).map((version) => version.version)).toEqual([1]);
});

test("a caller's own mutation id names the write in the outbox; a second write with it is refused while the first waits", async () => {
  const { proxy } = await start();
  const client = openClient(proxy.url, alice);
  await waitForStatus(client, "connected");
  goOffline(proxy);
  await waitForStatus(client, "reconnecting");
  const settled: SettledWrite[] = [];
  client.outbox.onSettled((write) => settled.push(write));
  const write = client.documents.update(REPORT.type, REPORT.id, { crew: 3 }, { baseVersion: 1, mutationId: "report-r-7-save-1" });
  await waitFor(() => client.outbox.size === 1);
  expect(client.outbox.pending[0]).toMatchObject({ mutationId: "report-r-7-save-1", kind: "document", changes: { crew: 3 } });
  await expect(client.documents.update(REPORT.type, REPORT.id, { crew: 4 }, { mutationId: "report-r-7-save-1" })).rejects.toThrow("already waiting");
  await expect(client.documents.update(REPORT.type, REPORT.id, { crew: 4 }, { mutationId: "" })).rejects.toThrow(TypeError);
  proxy.release();
  expect(await write).toMatchObject({ document: { version: 2 } });
  expect(settled.map(({ write: settledWrite }) => settledWrite.mutationId)).toEqual(["report-r-7-save-1"]);
});

test("a commit the store made but could not confirm (STORE_UNAVAILABLE) is resent while connected and answered as the same version", async () => {
  const documents = memoryDocumentStore();
  let unconfirmed = 0;
  const flaky = {
    ...documents,
    async compareAndSet(...args: Parameters<typeof documents.compareAndSet>) {
      const result = await documents.compareAndSet(...args);
      // The write landed, then the connection to the store died before its answer came back.
      if (unconfirmed-- > 0) throw new Error("Connection is closed.");
      return result;
    },
  };
  const { proxy } = await start({ documents: flaky });
  const client = openClient(proxy.url, alice);
  await waitForStatus(client, "connected");
  unconfirmed = 2;
  const outcome = await client.documents.update(REPORT.type, REPORT.id, { crew: 8 }, { baseVersion: 1 });
  expect(unconfirmed).toBeLessThan(0);
  expect(outcome).toMatchObject({ status: "applied", duplicate: true, document: { version: 2, data: { crew: 8 } } });
  expect((await history()).map((version) => version.version)).toEqual([2, 1]);
  expect(client.status).toBe("connected");
});
