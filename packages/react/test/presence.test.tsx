import { screen, waitFor as waitForDom } from "@testing-library/react";
import { afterEach, expect, test } from "vitest";
import { waitFor } from "@truss/test-utils";
import { usePresence, useOutbox } from "@truss/react";
import { alice, bob, closeAll, connected, openClient, renderWith, startServer, topicRooms } from "./helpers.js";

afterEach(closeAll);

function Online() {
  const { users } = usePresence();
  return <p data-testid="online">{users === null ? "…" : users.map((user) => user.userId).sort().join(",")}</p>;
}

function OnSite({ field }: { field: string }) {
  const { others, status } = usePresence({ topic: "project:tower-b" }, { field });
  return (
    <p data-testid="on-site">
      {status}: {others.map((member) => `${member.userId}@${(member.state as { field: string }).field}`).join(",")}
    </p>
  );
}

test("usePresence() lists who is online in the company and follows them", async () => {
  const server = await startServer();
  const phone = openClient(server.url, alice);
  renderWith(phone, <Online />);
  await waitForDom(() => expect(screen.getByTestId("online").textContent).toBe("alice"));
  const office = openClient(server.url, bob);
  await waitForDom(() => expect(screen.getByTestId("online").textContent).toBe("alice,bob"), { timeout: 3000 });
  office.close();
  await waitForDom(() => expect(screen.getByTestId("online").textContent).toBe("alice"), { timeout: 3000 });
});

test("usePresence(scope, state) joins the topic with the state, sends new states, and leaves and unsubscribes on unmount", async () => {
  const server = await startServer();
  const office = openClient(server.url, bob);
  await office.subscribe("project:tower-b");
  const bobOnSite = office.presence.in({ topic: "project:tower-b" });
  await bobOnSite.join({ field: "crew" });

  const phone = openClient(server.url, alice);
  const view = renderWith(phone, <OnSite field="weather" />);
  await waitForDom(() => expect(screen.getByTestId("on-site").textContent).toBe("active: bob@crew"));
  await waitFor(() => bobOnSite.others.some((member) => member.userId === "alice" && (member.state as { field: string }).field === "weather"), { message: "bob to see alice" });
  expect(server.topicRequests.filter((topic) => topic === "project:tower-b")).toHaveLength(2);

  view.rerender(<OnSite field="notes" />);
  await waitFor(() => bobOnSite.others.some((member) => (member.state as { field: string }).field === "notes"), { message: "alice's new state" });

  view.unmount();
  await waitFor(() => bobOnSite.others.length === 0, { message: "alice to leave" });
  await waitFor(() => phone.subscriptions.size === 0, { message: "alice's topic to be let go" });
  expect(topicRooms(server)).toEqual(["project:tower-b"]);
});

test("usePresence on a topic the policy refuses reports it", async () => {
  const server = await startServer();
  server.closedTopics.add("project:tower-b");
  const phone = openClient(server.url, alice);
  renderWith(phone, <OnSite field="weather" />);
  await waitForDom(() => expect(screen.getByTestId("on-site").textContent).toBe("refused: "));
});

test("usePresence on a malformed scope reports it instead of throwing", async () => {
  const server = await startServer();
  const phone = openClient(server.url, alice);
  function Broken() {
    const { status, error } = usePresence({ type: "", id: "r-1" }, { field: "weather" });
    return <p data-testid="broken">{`${status} ${error?.code ?? ""}`}</p>;
  }
  renderWith(phone, <Broken />);
  await waitForDom(() => expect(screen.getByTestId("broken").textContent).toBe("refused INVALID_PAYLOAD"));
});

test("useOutbox lists the writes waiting and can discard one", async () => {
  const server = await startServer();
  const phone = openClient(server.url, alice, { socketOptions: { transports: ["websocket"], path: "/nowhere" } });
  let discard: ((mutationId: string) => Promise<boolean>) | undefined;
  function Waiting() {
    const outbox = useOutbox();
    discard = outbox.discard;
    return <p data-testid="waiting">{outbox.pending.map((write) => (write.kind === "document" ? `${write.id}:${JSON.stringify(write.changes)}` : write.event)).join(" ")}</p>;
  }
  renderWith(phone, <Waiting />);
  const first = phone.documents.update("site-report", "r-1", { weather: "rain" }, { mutationId: "m-1" });
  const second = phone.documents.update("site-report", "r-2", { crew: 4 }, { mutationId: "m-2" });
  await waitForDom(() => expect(screen.getByTestId("waiting").textContent).toBe('r-1:{"weather":"rain"} r-2:{"crew":4}'));
  await expect(discard!("m-1")).resolves.toBe(true);
  await expect(first).rejects.toMatchObject({ code: "DISCARDED" });
  await waitForDom(() => expect(screen.getByTestId("waiting").textContent).toBe('r-2:{"crew":4}'));
  phone.close();
  await expect(second).rejects.toMatchObject({ code: "CLIENT_CLOSED" });
});
