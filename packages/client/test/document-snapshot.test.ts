import { afterEach, expect, test } from "vitest";
import { waitFor } from "@truss/test-utils";
import { alice, bob, closeAll, openClient, startServer, waitForStatus } from "./helpers.js";

afterEach(closeAll);

const TYPE = "site-report";
const ID = "r-1";

test("snapshot holds the latest version of a watched document, one object per version, and onSnapshot tells every change", async () => {
  const { url, engine } = await startServer();
  await engine.documents.update("acme", TYPE, ID, { baseVersion: 0, changes: { weather: "rain" } });
  const [reader, writer] = [openClient(url, alice), openClient(url, bob)];
  await Promise.all([waitForStatus(reader, "connected"), waitForStatus(writer, "connected")]);
  const told: string[] = [];
  reader.documents.onSnapshot(({ type, id }) => told.push(`${type}/${id}@${reader.documents.snapshot(type, id)?.version ?? "-"}`));

  expect(reader.documents.snapshot(TYPE, ID)).toBeUndefined();
  await reader.documents.watch(TYPE, ID);
  const first = reader.documents.snapshot(TYPE, ID);
  expect(first).toEqual({ version: 1, data: { weather: "rain" } });
  // Reading a version already held keeps the object, so a UI comparing by identity does not render again.
  await reader.documents.get(TYPE, ID);
  expect(reader.documents.snapshot(TYPE, ID)).toBe(first);

  await writer.documents.update(TYPE, ID, { crew: 6 }, { baseVersion: 1 });
  await waitFor(() => reader.documents.snapshot(TYPE, ID)?.version === 2, { message: "the other writer's version" });
  expect(reader.documents.snapshot(TYPE, ID)!.data).toEqual({ weather: "rain", crew: 6 });

  await reader.documents.update(TYPE, ID, { weather: "sun" });
  expect(reader.documents.snapshot(TYPE, ID)).toEqual({ version: 3, data: { weather: "sun", crew: 6 } });

  await reader.documents.unwatch(TYPE, ID);
  expect(reader.documents.snapshot(TYPE, ID)).toBeUndefined();
  expect(told).toEqual([`${TYPE}/${ID}@1`, `${TYPE}/${ID}@2`, `${TYPE}/${ID}@3`, `${TYPE}/${ID}@-`]);
});

test("a document that is not watched has no snapshot, however often it is read or written", async () => {
  const { url } = await startServer();
  const client = openClient(url, alice);
  const told: unknown[] = [];
  client.documents.onSnapshot((document) => told.push(document));
  await client.documents.update(TYPE, ID, { weather: "fog" });
  await client.documents.get(TYPE, ID);
  expect(client.documents.snapshot(TYPE, ID)).toBeUndefined();
  expect(told).toEqual([]);
});
