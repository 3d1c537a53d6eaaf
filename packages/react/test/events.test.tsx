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

test("useTopic's handlers hear the topic's broadcasts while mounted", async () => {
  const server = await startServer();
  const client = openClient(server.url, alice);
  const filed: unknown[] = [];

  function Feed() {
    const { status } = useTopic("project:tower-b", { "site-report:filed": (report) => void filed.push(report) });
    return <p data-testid="feed">{status}</p>;
  }
  const view = renderWith(client, <Feed />);
  await waitForDom(() => expect(screen.getByTestId("feed").textContent).toBe("active"));
  await server.engine.toTopic("acme", "project:tower-b").emit("site-report:filed", { id: "r-1" });
  await waitForDom(() => expect(filed).toEqual([{ id: "r-1" }]));

  view.unmount();
  await server.engine.toCompany("acme").emit("site-report:filed", { id: "r-2" });
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(filed).toEqual([{ id: "r-1" }]);
});
