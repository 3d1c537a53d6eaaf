import { connect, type ScopedPresenceMember, type TrussClient } from "@truss/client";
import type { ScopedPresenceChanges } from "@truss/protocol";
import type { Socket } from "socket.io-client";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import type { ErpCatalog } from "../src/catalog.js";
import { login, openSocket, request, startErp, subscribe, watch, type EventLog, type RunningErp } from "./helpers.js";

const RIVERSIDE_REPORT = { type: "site-report", id: "riverside-daily" };
const HARBOR_REPORT = { type: "site-report", id: "harbor-daily" };
const TIMEOUT_MS = 5000;

/** Who else is in a scope and what they edit, as a dashboard shows it: `u-ben:notes`, `u-alice:-`. */
const shown = (others: ScopedPresenceMember[]) => others.map((member) => `${member.userId}:${(member.state as { field?: string | null } | null)?.field ?? "-"}`);

/**
 * Who has a site report or a project open, from the engine's scoped
 * presence on the report's document and the project's topic, behind the
 * ERP's policy: two colleagues see each other's field, leaving or losing the
 * connection clears it, and a subcontractor never joins, reads or hears the
 * presence of a project hidden from him.
 */
describe("who has a report or a project open", () => {
  let erp: RunningErp;
  const clients: TrussClient<ErpCatalog>[] = [];
  const sockets: Socket[] = [];

  beforeAll(async () => {
    erp = await startErp();
  });
  afterEach(() => {
    for (const client of clients.splice(0)) client.close();
    for (const socket of sockets.splice(0)) socket.disconnect();
  });
  afterAll(async () => {
    await erp?.close();
  });

  /** A dashboard's connection of `email`, resolved once connected. */
  async function device(email: string, deviceId: string): Promise<TrussClient<ErpCatalog>> {
    const { token } = await login(erp.url, email);
    const client = connect<ErpCatalog>(erp.url, { token, deviceId, socketOptions: { transports: ["websocket"] } });
    clients.push(client);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${deviceId} did not connect`)), TIMEOUT_MS);
      client.onStatus((status) => {
        if (status !== "connected") return;
        clearTimeout(timer);
        resolve();
      });
    });
    return client;
  }

  /** Opens the report as the editor does: watch it, then join its presence editing no field. */
  async function openReport(client: TrussClient<ErpCatalog>) {
    await client.documents.watch(RIVERSIDE_REPORT.type, RIVERSIDE_REPORT.id);
    const presence = client.presence.in(RIVERSIDE_REPORT);
    await presence.join({ field: null });
    return presence;
  }

  /** A plain socket of `email`, to see the engine's own answers and every event it gets. */
  async function rawDevice(email: string, deviceId: string): Promise<{ socket: Socket; log: EventLog }> {
    const { token } = await login(erp.url, email);
    const opened = await openSocket(erp.url, token, deviceId);
    sockets.push(opened.socket);
    return opened;
  }

  const until = <T>(read: () => T) => expect.poll(read, { timeout: TIMEOUT_MS });

  test("two people in one report see each other, and which field each is editing", async () => {
    const alice = await openReport(await device("alice@northwind.test", "alice-laptop"));
    const ben = await openReport(await device("ben@northwind.test", "ben-phone"));
    await until(() => shown(alice.others)).toEqual(["u-ben:-"]);
    expect(shown(ben.others)).toEqual(["u-alice:-"]);

    ben.update({ field: "notes" });
    await until(() => shown(alice.others)).toEqual(["u-ben:notes"]);
    alice.update({ field: "weather" });
    await until(() => shown(ben.others)).toEqual(["u-alice:weather"]);
    // Blurring the field: still there, editing nothing.
    ben.update({ field: null });
    await until(() => shown(alice.others)).toEqual(["u-ben:-"]);

    const members = await erp.realtime.presence.in("northwind", RIVERSIDE_REPORT).list();
    expect(members.map((member) => member.userId).sort()).toEqual(["u-alice", "u-ben"]);
  });

  test("leaving the report clears it at the others, and so does closing the connection", async () => {
    const alice = await openReport(await device("alice@northwind.test", "alice-laptop"));
    const benClient = await device("ben@northwind.test", "ben-phone");
    const ben = await openReport(benClient);
    ben.update({ field: "notes" });
    await until(() => shown(alice.others)).toEqual(["u-ben:notes"]);

    await ben.leave();
    await until(() => shown(alice.others)).toEqual([]);

    await ben.join({ field: "progress" });
    await until(() => shown(alice.others)).toEqual(["u-ben:progress"]);
    benClient.close();
    await until(() => shown(alice.others)).toEqual([]);
    await until(() => erp.realtime.presence.in("northwind", RIVERSIDE_REPORT).list().then((members) => members.map((member) => member.userId))).toEqual(["u-alice"]);
  });

  test("a project's page shows who else is viewing it", async () => {
    const topic = { topic: "project:p-harbor" };
    const view = async (email: string, deviceId: string) => {
      const client = await device(email, deviceId);
      await client.subscribe(topic.topic);
      const presence = client.presence.in(topic);
      await presence.join(null);
      return presence;
    };
    const alice = await view("alice@northwind.test", "alice-laptop");
    const ben = await view("ben@northwind.test", "ben-phone");
    await until(() => alice.others.map((member) => member.userId)).toEqual(["u-ben"]);
    expect(ben.others.map((member) => member.userId)).toEqual(["u-alice"]);
    await ben.leave();
    await until(() => alice.others).toEqual([]);
  });

  test("Sam, a subcontractor, cannot join or read the presence of a project hidden from him, and hears none of it", async () => {
    const sam = await rawDevice("sam@northwind.test", "sam-phone");
    const harborTopic = { topic: "project:p-harbor" };
    const join = (scope: unknown) => request(sam.socket, "presence:join", { scope, state: { field: "notes" } });
    const read = (scope: unknown) => request(sam.socket, "presence:members", { scope });

    // Refused Harbor Bridge's topic and report, he holds nothing its presence could stand on.
    expect((await join(HARBOR_REPORT)).error.code).toBe("FORBIDDEN");
    expect((await read(harborTopic)).error.code).toBe("FORBIDDEN");

    // Assigned to Harbor Bridge for a while: he subscribes and watches. Then the assignment is taken away.
    const db = erp.db!;
    db.prepare("INSERT INTO project_assignments (company_id, project_id, user_id) VALUES ('northwind', 'p-harbor', 'u-sam')").run();
    await subscribe(sam.socket, "project:p-harbor", "project:p-riverside");
    await watch(sam.socket, HARBOR_REPORT.type, HARBOR_REPORT.id);
    await watch(sam.socket, RIVERSIDE_REPORT.type, RIVERSIDE_REPORT.id);
    db.prepare("DELETE FROM project_assignments WHERE company_id = 'northwind' AND project_id = 'p-harbor' AND user_id = 'u-sam'").run();

    // The subscription is still his until it is checked again, but the policy answers presence itself: the project is not found.
    for (const scope of [HARBOR_REPORT, harborTopic]) {
      expect(await join(scope)).toEqual({ ok: false, error: expect.objectContaining({ code: "NOT_FOUND" }) });
      expect(await read(scope)).toEqual({ ok: false, error: expect.objectContaining({ code: "NOT_FOUND" }) });
    }
    expect((await join(HARBOR_REPORT)).error.message).toBe("No document site-report/harbor-daily in your company.");
    // His own project's report is his.
    expect((await join(RIVERSIDE_REPORT)).ok).toBe(true);

    // Alice edits Harbor Bridge's report and views its page; then Ben comes into Riverside Tower's report, which Sam hears.
    const aliceClient = await device("alice@northwind.test", "alice-laptop");
    await aliceClient.subscribe(harborTopic.topic);
    await aliceClient.presence.in(harborTopic).join(null);
    await aliceClient.documents.watch(HARBOR_REPORT.type, HARBOR_REPORT.id);
    const aliceInHarbor = aliceClient.presence.in(HARBOR_REPORT);
    await aliceInHarbor.join({ field: null });
    aliceInHarbor.update({ field: "notes" });
    await until(async () => (await erp.realtime.presence.in("northwind", HARBOR_REPORT).list()).map((member) => member.state)).toEqual([{ field: "notes" }]);
    const ben = await openReport(await device("ben@northwind.test", "ben-phone"));
    ben.update({ field: "weather" });

    // A socket receives in order: once Ben's change of Riverside's report arrives, any of Harbor's would have come first.
    await sam.log.waitFor("presence:changes", (batch) => (batch as ScopedPresenceChanges).changes.some(({ member }) => member.userId === "u-ben" && (member.state as { field?: string } | null)?.field === "weather"));
    const heard = sam.log.of("presence:changes");
    expect(heard.length).toBeGreaterThan(0);
    expect(heard.every((batch) => batch.scope.id === "riverside-daily")).toBe(true);
    expect(JSON.stringify(heard)).not.toMatch(/harbor|"u-alice"/);
  });
});
