import { StrictMode } from "react";
import { render, renderHook, screen, waitFor as waitForDom } from "@testing-library/react";
import { afterEach, expect, test, vi } from "vitest";
import { sleep, waitFor } from "@truss/test-utils";
import { TrussProvider, useStatus, useTopic, useTrussClient } from "@truss/react";
import { alice, clientOptions, closeAll, startServer, topicRooms, type Server } from "./helpers.js";

afterEach(closeAll);

function sockets(server: Server): number {
  return server.engine.io!.of("/").sockets.size;
}

function Status() {
  const status = useStatus();
  const feed = useTopic("project:tower-b");
  return (
    <p data-testid="status">
      {status} {feed.status}
    </p>
  );
}

test("a provider given options connects after its first render and closes its client on unmount", async () => {
  const server = await startServer();
  const options = clientOptions(alice);
  const view = render(
    <StrictMode>
      <TrussProvider url={server.url} options={options}>
        <Status />
      </TrussProvider>
    </StrictMode>,
  );
  expect(screen.getByTestId("status").textContent).toBe("connecting pending");
  await waitForDom(() => expect(screen.getByTestId("status").textContent).toBe("connected active"));
  // StrictMode made and closed one client before the one that stays: one socket is left on the server.
  await waitFor(() => sockets(server) === 1, { message: "one socket" });
  expect(topicRooms(server)).toEqual(["project:tower-b"]);

  view.unmount();
  await waitFor(() => sockets(server) === 0, { message: "the provider's client to close" });
  expect(topicRooms(server)).toEqual([]);
});

test("a provider given a client leaves it open on unmount", async () => {
  const server = await startServer();
  const { connect } = await import("@truss/client");
  const client = connect(server.url, clientOptions(alice));
  try {
    const view = render(
      <TrussProvider client={client}>
        <Status />
      </TrussProvider>,
    );
    await waitForDom(() => expect(screen.getByTestId("status").textContent).toBe("connected active"));
    view.unmount();
    await sleep(30);
    expect(client.status).toBe("connected");
    await waitFor(() => topicRooms(server).length === 0, { message: "the topic to be let go" });
  } finally {
    client.close();
  }
});

test("a hook outside a provider says what it needs", () => {
  // React logs the error it rethrows; the assertion is on the error itself.
  const logged = vi.spyOn(console, "error").mockImplementation(() => undefined);
  try {
    expect(() => renderHook(() => useTrussClient())).toThrow(/TrussProvider/);
  } finally {
    logged.mockRestore();
  }
});
