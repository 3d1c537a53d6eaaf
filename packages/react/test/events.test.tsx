import { useState } from "react";
import { act, screen, waitFor as waitForDom } from "@testing-library/react";
import { afterEach, expect, test, vi } from "vitest";
import { useEvent, useTopic } from "@truss/react";
import { alice, closeAll, connected, openClient, renderWith, startServer } from "./helpers.js";

afterEach(closeAll);

test("useEvent calls the latest handler and does not subscribe again when the handler changes identity", async () => {
  const server = await startServer();
  const client = openClient(server.url, alice);
  await connected(client);
  const on = vi.spyOn(client, "on");
  const heard: string[] = [];

  function Listener() {
    const [label, setLabel] = useState("first");
    useEvent("project:updated", (project) => void heard.push(`${label}:${(project as { name: string }).name}`));
    return <button onClick={() => setLabel("second")}>{label}</button>;
  }
  renderWith(client, <Listener />, { strict: false });
  await server.engine.toCompany("acme").emit("project:updated", { name: "Tower B" });
  await waitForDom(() => expect(heard).toEqual(["first:Tower B"]));

  act(() => screen.getByText("first").click());
  expect(screen.getByText("second")).toBeTruthy();
  await server.engine.toCompany("acme").emit("project:updated", { name: "Tower C" });
  await waitForDom(() => expect(heard).toEqual(["first:Tower B", "second:Tower C"]));
  expect(on).toHaveBeenCalledTimes(1);
});

test("useTopic's handlers hear their own topic's broadcasts only, stored or volatile, while mounted", async () => {
  const server = await startServer();
  const client = openClient(server.url, alice);
  const filed: Record<string, unknown[]> = { "tower-a": [], "tower-b": [] };
  const all: unknown[] = [];
  client.on("site-report:filed", (report) => void all.push(report));

  function Feed({ project }: { project: "tower-a" | "tower-b" }) {
    const { status } = useTopic(`project:${project}`, { "site-report:filed": (report) => void filed[project]!.push(report) });
    return <p data-testid={project}>{status}</p>;
  }
  const view = renderWith(
    client,
    <>
      <Feed project="tower-a" />
      <Feed project="tower-b" />
    </>,
  );
  for (const project of ["tower-a", "tower-b"]) await waitForDom(() => expect(screen.getByTestId(project).textContent).toBe("active"));
  await server.engine.toTopic("acme", "project:tower-a").emit("site-report:filed", { id: "a-1" });
  server.engine.toTopic("acme", "project:tower-a").volatile.emit("site-report:filed", { id: "a-2" });
  await server.engine.toCompany("acme").emit("site-report:filed", { id: "company" });
  await server.engine.toTopic("acme", "project:tower-b").emit("site-report:filed", { id: "b-1" });
  // Stored and volatile broadcasts are not ordered against each other: compare the sets, once all four have come.
  await waitForDom(() => expect(all).toHaveLength(4));
  const ids = (project: string) => filed[project]!.map((report) => (report as { id: string }).id).sort();
  await waitForDom(() => expect([ids("tower-a"), ids("tower-b")]).toEqual([["a-1", "a-2"], ["b-1"]]));

  view.unmount();
  await server.engine.toTopic("acme", "project:tower-b").emit("site-report:filed", { id: "b-2" });
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(filed["tower-b"]).toEqual([{ id: "b-1" }]);
});
