import { screen } from "@testing-library/react";
import { afterEach, expect, test } from "vitest";
import type { AuthorizePolicy } from "@truss/core";
import { sleep, waitFor } from "@truss/test-utils";
import { useDocument, usePresence, useTopic } from "@truss/react";
import { alice, closeAll, openClient, renderWith, startServer } from "./helpers.js";

afterEach(closeAll);

/** Every status each hook showed, in order, without repeats. */
const shown: Record<string, string[]> = {};

function note(name: string, status: string, code: string | undefined): string {
  const text = code ? `${status} ${code}` : status;
  const seen = (shown[name] ??= []);
  if (seen.at(-1) !== text) seen.push(text);
  return text;
}

function Page() {
  const feed = useTopic("project:tower-b");
  const report = useDocument("site-report", "r-1");
  const crew = usePresence({ topic: "project:tower-b" }, { field: "notes" });
  return (
    <p data-testid="page">
      {note("topic", feed.status, feed.error?.code)}|{note("document", report.status, report.error?.code)}|{note("presence", crew.status, crew.error?.code)}
    </p>
  );
}

test("an answer lost once (a policy slower than ackTimeoutMs) leaves the hooks pending until the server accepts, never refused", async () => {
  for (const name of Object.keys(shown)) delete shown[name];
  // The first question of each kind waits on a slow database; the next ones are answered at once.
  const asked = new Set<string>();
  const authorize: AuthorizePolicy = async (_principal, request) => {
    if (!asked.has(request.action)) {
      asked.add(request.action);
      await sleep(700);
    }
    return true;
  };
  const server = await startServer({ authorize });
  await server.engine.documents.update("acme", "site-report", "r-1", { baseVersion: 0, changes: { weather: "rain" } });
  const client = openClient(server.url, alice, { ackTimeoutMs: 300 });
  renderWith(client, <Page />);

  // Waited for, then compared: a hook that ended elsewhere shows in the statuses it went through.
  await waitFor(() => screen.getByTestId("page").textContent === "active|ready|active", { timeoutMs: 10_000 }).catch(() => undefined);
  expect(shown).toEqual({ topic: ["pending", "active"], document: ["loading", "ready"], presence: ["pending", "active"] });
});
