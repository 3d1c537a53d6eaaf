import { useState } from "react";
import { act, screen } from "@testing-library/react";
import { afterEach, expect, test } from "vitest";
import { sleep, waitFor } from "@truss/test-utils";
import { useTopic } from "@truss/react";
import { alice, closeAll, connected, openClient, renderWith, startServer, topicRooms } from "./helpers.js";

afterEach(closeAll);

function Feed({ topic, label = topic }: { topic: string; label?: string }) {
  const { status, error } = useTopic(topic);
  return (
    <p data-testid={label}>
      {status}
      {error ? ` ${error.code}` : ""}
    </p>
  );
}

function Switch({ topics }: { topics: string[] }) {
  const [shown, setShown] = useState(true);
  return (
    <>
      <button onClick={() => setShown((value) => !value)}>toggle</button>
      {shown && topics.map((topic, index) => <Feed key={index} topic={topic} label={`feed-${index}`} />)}
    </>
  );
}

function Feeds({ count }: { count: number }) {
  return (
    <>
      {Array.from({ length: count }, (_, index) => (
        <Feed key={index} topic="project:tower-b" label={`feed-${index}`} />
      ))}
    </>
  );
}

test("ten components on one topic make one subscription on the wire, kept until the last one unmounts", async () => {
  const server = await startServer();
  const client = openClient(server.url, alice);
  await connected(client);
  const view = renderWith(client, <Feeds count={10} />);

  await waitFor(() => screen.queryAllByText("active").length === 10, { message: "ten active feeds" });
  expect(server.topicRequests).toEqual(["project:tower-b"]);
  expect(topicRooms(server)).toEqual(["project:tower-b"]);

  view.rerender(<Feeds count={1} />);
  await sleep(50);
  expect(topicRooms(server)).toEqual(["project:tower-b"]);
  expect(screen.getByTestId("feed-0").textContent).toBe("active");

  view.rerender(<Feeds count={0} />);
  await waitFor(() => topicRooms(server).length === 0, { message: "the topic's room to empty" });
  expect(client.subscriptions.size).toBe(0);
  expect(server.topicRequests).toEqual(["project:tower-b"]);
});

test("mount and unmount loops leave no subscription on the server", async () => {
  const server = await startServer();
  const client = openClient(server.url, alice);
  await connected(client);
  renderWith(client, <Switch topics={["project:a", "project:b", "project:a"]} />);
  for (let round = 0; round < 8; round++) {
    act(() => screen.getByText("toggle").click());
    // Some rounds let the requests reach the server, some unmount while they are on their way.
    if (round % 3 === 0) await sleep(15);
  }
  // An even number of toggles: mounted again at the end, then unmounted for good.
  await waitFor(() => screen.queryAllByText("active").length === 3, { message: "the feeds mounted last to be active" });
  expect(topicRooms(server).sort()).toEqual(["project:a", "project:b"]);
  act(() => screen.getByText("toggle").click());
  await waitFor(() => topicRooms(server).length === 0, { message: "every topic room to empty" });
  await sleep(50);
  expect(topicRooms(server)).toEqual([]);
  expect(client.subscriptions.size).toBe(0);
});

test("StrictMode's double mount subscribes once, and unsubscribes nothing", async () => {
  const server = await startServer();
  const client = openClient(server.url, alice);
  await connected(client);
  const sent: string[] = [];
  client.socket.onAnyOutgoing((event: string) => {
    if (event.startsWith("topic:")) sent.push(event);
  });
  renderWith(client, <Feed topic="project:tower-b" />);
  await screen.findByText("active");
  await sleep(30);
  expect(server.topicRequests).toEqual(["project:tower-b"]);
  expect(sent).toEqual(["topic:subscribe"]);
});

test("a refused topic and a dropped one are states, not exceptions", async () => {
  const server = await startServer();
  server.closedTopics.add("project:secret");
  const client = openClient(server.url, alice);
  renderWith(
    client,
    <>
      <Feed topic="project:secret" />
      <Feed topic="project:tower-b" />
      <Feed topic="not a topic" />
    </>,
  );
  expect(screen.getByTestId("project:secret").textContent).toBe("pending");
  await waitFor(() => screen.getByTestId("project:secret").textContent === "refused FORBIDDEN", { message: "the refusal" });
  expect(screen.getByTestId("not a topic").textContent).toBe("refused INVALID_PAYLOAD");
  await waitFor(() => screen.getByTestId("project:tower-b").textContent === "active", { message: "the allowed topic" });

  const reached = await server.engine.unsubscribeUser("acme", "alice", "project:tower-b");
  expect(reached).toMatchObject({ sockets: 1 });
  await waitFor(() => screen.getByTestId("project:tower-b").textContent === "dropped ACCESS_REVOKED", { message: "the drop" });
  expect(topicRooms(server)).toEqual([]);
});
