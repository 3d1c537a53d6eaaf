// @vitest-environment node
import { StrictMode } from "react";
import { renderToString } from "react-dom/server";
import { afterEach, expect, test } from "vitest";
import { sleep } from "@truss/test-utils";
import { TrussProvider, useDocument, useEvent, useOutbox, usePresence, useSync, useTopic } from "@truss/react";
import { alice, clientOptions, closeAll, startServer } from "./helpers.js";

afterEach(closeAll);

function Everything() {
  const sync = useSync();
  const feed = useTopic("project:tower-b", { "site-report:filed": () => undefined });
  const report = useDocument("site-report", "r-1");
  const { users } = usePresence();
  const { others } = usePresence({ topic: "project:tower-b" }, { field: "weather" });
  const { pending } = useOutbox();
  useEvent("project:updated", () => undefined);
  return (
    <p>
      {sync.status}/{String(sync.inSync)} {feed.status} {report.status} {String(users)} {others.length} {pending.length}
    </p>
  );
}

test("renderToString renders every hook's initial state without opening a socket", async () => {
  const server = await startServer();
  let connections = 0;
  server.http.on("connection", () => (connections += 1));
  server.http.on("upgrade", () => (connections += 1));

  const html = renderToString(
    <StrictMode>
      <TrussProvider url={server.url} options={clientOptions(alice)}>
        <Everything />
      </TrussProvider>
    </StrictMode>,
  );
  expect(html.replace(/<!-- -->/g, "")).toBe("<p>connecting/false pending loading null 0 0</p>");
  await sleep(100);
  expect(connections).toBe(0);
});
