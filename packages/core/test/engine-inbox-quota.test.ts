import { afterEach, expect, test } from "vitest";
import { collect, connectAs, createClient, open, startTestServer, waitFor, type TestServer } from "@truss/test-utils";
import { memoryInboxStore } from "@truss/core";
import type { InboxMessage } from "@truss/protocol";
import { INBOX_MESSAGE_OVERHEAD_BYTES, USER_INBOX_OVERHEAD_BYTES } from "../src/inbox/memory.js";

let server: TestServer;
afterEach(() => server?.close());

test("toUser past the company's inbox quota rejects QUOTA_EXCEEDED, stores nothing, and the next company is served", async () => {
  server = await startTestServer({ inbox: memoryInboxStore({ maxBytesPerCompany: 3_000 }) });
  const alice = await connectAs(server.url, { userId: "alice", companyId: "acme" });
  const heard = collect<InboxMessage>(alice, "inbox:message");
  const note = { text: "x".repeat(400) };
  await server.engine.toUser("acme", "alice").emit("notice", note);
  await server.engine.toUser("acme", "bob").emit("notice", note);
  await expect(server.engine.toUser("acme", "alice").emit("notice", note)).rejects.toMatchObject({ name: "TrussError", code: "QUOTA_EXCEEDED" });
  await expect(server.engine.toUser("globex", "alice").emit("notice", note)).resolves.toMatchObject({ event: "notice" });
  await waitFor(() => heard.length === 1);
  // Only the stored message reached the device, then and on a new connection.
  const again = createClient(server.url, { userId: "alice", companyId: "acme", deviceId: "tablet" });
  const replayed = collect<InboxMessage>(again, "inbox:message");
  await open(again);
  await waitFor(() => replayed.length === 1);
  expect(replayed.map((message) => message.id)).toEqual(heard.map((message) => message.id));
  alice.close();
  again.close();
});

test("toUser to many users of a company is refused once their inboxes fill the quota, however small each message", async () => {
  const perUser = USER_INBOX_OVERHEAD_BYTES + INBOX_MESSAGE_OVERHEAD_BYTES + "notice".length;
  server = await startTestServer({ inbox: memoryInboxStore({ maxBytesPerCompany: 20 * perUser }) });
  for (let index = 0; index < 20; index++) await server.engine.toUser("acme", `user-${index}`).emit("notice", undefined);
  await expect(server.engine.toUser("acme", "user-20").emit("notice", undefined)).rejects.toMatchObject({ name: "TrussError", code: "QUOTA_EXCEEDED" });
  await expect(server.engine.toUser("globex", "user-20").emit("notice", undefined)).resolves.toMatchObject({ event: "notice" });
});
