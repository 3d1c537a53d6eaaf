import { afterEach, expect, test } from "vitest";
import { defineEvents } from "@truss/protocol";
import { sleep, waitFor, type TestServer } from "@truss/test-utils";
import type { TrussClientError } from "@truss/client";
import { alice, bob, closeAll, objectSchema, openClient, startServer, waitForStatus } from "./helpers.js";

const events = defineEvents({
  server: {
    "project:updated": objectSchema<{ id: string; name: string }>({ id: "string", name: "string" }),
    "user:typing": objectSchema<{ documentId: string; userId: string }>({ documentId: "string", userId: "string" }),
  },
  client: {
    "user:typing": objectSchema<{ documentId: string }>({ documentId: "string" }),
    "expense:submit": objectSchema<{ amount: number }>({ amount: "number" }),
  },
});
type Events = typeof events;

let server: TestServer<Events> | undefined;
afterEach(closeAll);

test("company broadcasts reach typed handlers until they unsubscribe", async () => {
  server = await startServer<Events>({ events });
  const client = openClient<Events>(server.url, alice);
  const names: string[] = [];
  const unsubscribe = client.on("project:updated", (project) => {
    // The payload is typed from the catalog's schema.
    const name: string = project.name;
    names.push(name);
  });
  // @ts-expect-error not an event of the catalog
  client.on("project:deleted", () => {});
  await waitForStatus(client, "connected");
  server.engine.toCompany("acme").emit("project:updated", { id: "p1", name: "Tower B" });
  server.engine.toCompany("globex").emit("project:updated", { id: "p9", name: "Not ours" });
  await waitFor(() => names.length === 1);

  unsubscribe();
  server.engine.toCompany("acme").emit("project:updated", { id: "p1", name: "Tower B, phase 2" });
  await sleep(100);
  expect(names).toEqual(["Tower B"]);
});

test("emit resolves with the server handler's result and others hear its broadcast", async () => {
  server = await startServer<Events>({ events });
  server.engine.handle("user:typing", ({ documentId }, { principal, broadcast }) => {
    broadcast("user:typing", { documentId, userId: principal.userId });
    return { seenBy: principal.userId };
  });
  const typist = openClient<Events>(server.url, alice);
  const watcher = openClient<Events>(server.url, bob);
  const heard: Array<{ documentId: string; userId: string }> = [];
  watcher.on("user:typing", (data) => void heard.push(data));
  await Promise.all([waitForStatus(typist, "connected"), waitForStatus(watcher, "connected")]);

  const result = await typist.emit<"user:typing", { seenBy: string }>("user:typing", { documentId: "tower-b" });
  expect(result).toEqual({ seenBy: "alice" });
  await waitFor(() => heard.length === 1);
  expect(heard).toEqual([{ documentId: "tower-b", userId: "alice" }]);
});

test("refusals reject with a TrussClientError carrying the server's code", async () => {
  server = await startServer<Events>({ events });
  server.engine.handle("expense:submit", () => {
    throw new Error("ledger offline");
  });
  const client = openClient<Events>(server.url, alice);
  await waitForStatus(client, "connected");

  // @ts-expect-error amount must be a number
  const invalid = await client.emit("expense:submit", { amount: "120" }).catch((error: TrussClientError) => error);
  expect(invalid).toMatchObject({ name: "TrussClientError", code: "INVALID_PAYLOAD" });
  expect((invalid as TrussClientError).message).toContain("amount");

  await expect(client.emit("user:typing", { documentId: "d1" })).rejects.toMatchObject({ code: "UNKNOWN_EVENT" });
  await expect(client.emit("expense:submit", { amount: 120 })).rejects.toMatchObject({ code: "HANDLER_ERROR" });
});

test("Truss's own event names are refused: they have their own API", async () => {
  server = await startServer<Events>({ events });
  const client = openClient(server.url, alice);
  expect(() => client.on("document:updated", () => {})).toThrow(TypeError);
  await expect(client.emit("inbox:ack", { ids: [] })).rejects.toThrow(TypeError);
});
