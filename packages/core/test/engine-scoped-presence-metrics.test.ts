import { afterEach, expect, test } from "vitest";
import { collectScopedPresence, connectAs, request, sleep, startTestServer, type TestServer, waitFor } from "@truss/test-utils";
import type { Socket } from "socket.io-client";

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const topic = { topic: "project:p-17" };
const report = { type: "site-report", id: "r-1" };
const openPolicy = () => true;

/** The value of one sample of the engine's registry (`name{labels}`, labels as rendered), or 0 when it has none yet. */
async function sample(name: string, labels = ""): Promise<number> {
  const text = await server!.engine.metrics();
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${name}${labels} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
}

const members = () => sample("truss_scoped_presence_members");
const updates = (outcome: "sent" | "coalesced") => sample("truss_scoped_presence_updates_total", `{outcome="${outcome}"}`);
const refused = (code: string) => sample("truss_scoped_presence_refused_total", `{code="${code}"}`);

async function watching(userId: string): Promise<Socket> {
  const socket = await connectAs(server!.url, { userId, companyId: "acme", deviceId: `${userId}-phone` });
  expect((await request(socket, "document:watch", report)).ok).toBe(true);
  return socket;
}

test("truss_scoped_presence_members follows joins, leaves, ended watches and disconnects on this node", async () => {
  server = await startTestServer({ authorize: openPolicy });
  expect(await members()).toBe(0);
  const ann = await watching("ann");
  const ben = await watching("ben");
  expect((await request(ann, "topic:subscribe", topic)).ok).toBe(true);
  expect((await request(ann, "presence:join", { scope: report, state: {} })).ok).toBe(true);
  expect((await request(ann, "presence:join", { scope: topic, state: {} })).ok).toBe(true);
  expect((await request(ben, "presence:join", { scope: report, state: {} })).ok).toBe(true);
  expect(await members()).toBe(3);
  // Joining again only replaces the state.
  expect((await request(ben, "presence:join", { scope: report, state: { field: "notes" } })).ok).toBe(true);
  expect(await members()).toBe(3);

  expect((await request(ann, "presence:leave", { scope: topic })).ok).toBe(true);
  expect(await members()).toBe(2);
  expect((await request(ben, "document:unwatch", report)).ok).toBe(true);
  await waitFor(async () => (await members()) === 1, { message: "unwatch leaves the presence" });
  ann.close();
  await waitFor(async () => (await members()) === 0, { message: "a disconnect leaves the presence" });
  ben.close();
});

test("truss_scoped_presence_updates_total counts updates sent to the scope and those coalesced away", async () => {
  server = await startTestServer({ authorize: openPolicy });
  const ann = await watching("ann");
  const ben = await watching("ben");
  const annHeard = collectScopedPresence(ann);
  await request(ann, "presence:join", { scope: report, state: {} });
  await request(ben, "presence:join", { scope: report, state: { n: 0 } });
  await waitFor(() => annHeard.length === 1);
  expect(await updates("sent")).toBe(0);

  // 30 states in one burst, each acknowledged: the first goes out at once or after the join's interval, the rest wait and coalesce.
  const sets = 30;
  for (let n = 1; n <= sets; n++) expect((await request(ben, "presence:set", { scope: report, state: { n } })).ok).toBe(true);
  await waitFor(() => annHeard.at(-1)?.member.state !== undefined && (annHeard.at(-1)!.member.state as { n: number }).n === sets, {
    message: "the latest state reaches ann",
  });
  await sleep(250);
  const heard = annHeard.filter((change) => change.change === "updated").length;
  const sent = await updates("sent");
  const coalesced = await updates("coalesced");
  expect(sent).toBe(heard);
  expect(sent + coalesced).toBe(sets);
  expect(coalesced).toBeGreaterThan(0);
  ann.close();
  ben.close();
});

test("truss_scoped_presence_refused_total counts refused joins and updates by code; listing refusals are not counted", async () => {
  server = await startTestServer({ authorize: openPolicy, scopedPresenceLimits: { maxStateBytes: 64, maxScopesPerConnection: 1 } });
  const ann = await connectAs(server.url, { userId: "ann", companyId: "acme" });
  expect(await request(ann, "presence:join", { scope: report, state: {} })).toMatchObject({ ok: false, error: { code: "FORBIDDEN" } });
  expect(await request(ann, "presence:members", { scope: report })).toMatchObject({ ok: false, error: { code: "FORBIDDEN" } });
  expect(await request(ann, "presence:join", { scope: { topic: "not a topic" }, state: {} })).toMatchObject({ ok: false, error: { code: "INVALID_PAYLOAD" } });
  expect((await request(ann, "document:watch", report)).ok).toBe(true);
  expect(await request(ann, "presence:set", { scope: report, state: {} })).toMatchObject({ ok: false, error: { code: "NOT_FOUND" } });
  expect(await request(ann, "presence:join", { scope: report, state: { note: "x".repeat(100) } })).toMatchObject({
    ok: false,
    error: { code: "PRESENCE_STATE_TOO_LARGE" },
  });
  expect((await request(ann, "presence:join", { scope: report, state: {} })).ok).toBe(true);
  expect(await request(ann, "presence:set", { scope: report, state: { note: "y".repeat(100) } })).toMatchObject({
    ok: false,
    error: { code: "PRESENCE_STATE_TOO_LARGE" },
  });
  expect((await request(ann, "topic:subscribe", topic)).ok).toBe(true);
  expect(await request(ann, "presence:join", { scope: topic, state: {} })).toMatchObject({ ok: false, error: { code: "TOO_MANY_PRESENCE_SCOPES" } });

  expect(await refused("FORBIDDEN")).toBe(1);
  expect(await refused("INVALID_PAYLOAD")).toBe(1);
  expect(await refused("NOT_FOUND")).toBe(1);
  expect(await refused("PRESENCE_STATE_TOO_LARGE")).toBe(2);
  expect(await refused("TOO_MANY_PRESENCE_SCOPES")).toBe(1);
  expect(await members()).toBe(1);
  ann.close();
});
