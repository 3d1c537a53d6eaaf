import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterEach, expect, test } from "vitest";
import type { TrussClient } from "@truss/client";
import { alice, bob, closeAll, openClient, startServer, waitForStatus } from "./helpers.js";

afterEach(closeAll);

/** The heap in use after a full collection, so what the client still holds can be told from garbage. */
async function heapUsedAfterGc(): Promise<number> {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  // Each pass also frees what the finalizers run after the one before let go of.
  for (let pass = 0; pass < 3; pass += 1) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return process.memoryUsage().heapUsed;
}

/** Joins a document's presence with a listener, as a page showing who else is on it does, then leaves it; returns a weak reference to the scope's object. */
async function visit(client: TrussClient, id: string): Promise<WeakRef<object>> {
  await client.documents.watch("site-report", id);
  const here = client.presence.in({ type: "site-report", id });
  const stop = here.subscribe(() => undefined);
  await here.join({ viewing: true });
  stop();
  await here.leave();
  await client.documents.unwatch("site-report", id);
  return new WeakRef(here);
}

test("a presence scope the app left and stopped listening to is not kept by the client; one in use stays the same object", async () => {
  const server = await startServer({ authorize: () => true });
  const phone = openClient(server.url, alice);
  const laptop = openClient(server.url, bob);
  await Promise.all([waitForStatus(phone, "connected"), waitForStatus(laptop, "connected")]);

  const visited = [await visit(phone, "r-1"), await visit(phone, "r-2")];
  await laptop.documents.watch("site-report", "r-3");
  await laptop.presence.in({ type: "site-report", id: "r-3" }).join({});
  const inUse = new WeakRef(laptop.presence.in({ type: "site-report", id: "r-3" }));
  await heapUsedAfterGc();
  expect(visited.map((scope) => scope.deref())).toEqual([undefined, undefined]);
  expect(laptop.presence.in({ type: "site-report", id: "r-3" })).toBe(inUse.deref());
  expect(laptop.presence.in({ type: "site-report", id: "r-3" }).joined).toBe(true);

  // Visited again, a scope works as the first time.
  await phone.documents.watch("site-report", "r-3");
  const again = phone.presence.in({ type: "site-report", id: "r-3" });
  await again.join({});
  expect(again.others.map((member) => member.userId)).toEqual(["bob"]);
});

test("handlers of ever new events, each removed again, and listeners of ever new scopes leave the client's memory where it was", async () => {
  const server = await startServer();
  const client = openClient(server.url, alice);
  await waitForStatus(client, "connected");
  const cycle = (index: number) => {
    client.on(`report:${index}:filed`, () => undefined)();
    client.presence.in({ topic: `project:p-${index}` }).subscribe(() => undefined)();
  };
  // Warm up, so what stays is the client's, not the code's first run.
  for (let index = 0; index < 1000; index += 1) cycle(index);
  const before = await heapUsedAfterGc();
  for (let index = 1000; index < 21_000; index += 1) cycle(index);
  const grown = (await heapUsedAfterGc()) - before;
  // 20,000 kept entries would hold several megabytes.
  expect(grown).toBeLessThan(1_000_000);
});
