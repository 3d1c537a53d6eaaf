import { memo } from "react";
import { act, render, screen, waitFor as waitForDom } from "@testing-library/react";
import { afterEach, expect, test, vi } from "vitest";
import { sleep, startTcpProxy, waitFor } from "@truss/test-utils";
import type { TrussClient, TrussClientError } from "@truss/client";
import { TrussProvider, useDocument, useSync, type DocumentState } from "@truss/react";
import { alice, bob, closeAll, connected, documentRooms, openClient, renderWith, startServer } from "./helpers.js";

afterEach(closeAll);

interface SiteReport {
  weather?: string;
  crew?: number;
  [field: string]: unknown;
}

const renders: Record<string, number> = {};
const count = (name: string) => (renders[name] = (renders[name] ?? 0) + 1);
let latest: DocumentState<SiteReport> | undefined;

const Report = memo(function Report({ id }: { id: string }) {
  count(`report:${id}`);
  const state = useDocument<SiteReport>("site-report", id);
  if (id === "r-1") latest = state;
  return (
    <p data-testid={id}>
      {state.status} v{state.version ?? "-"} {state.document?.weather ?? ""}
      {state.conflicts.map((conflict) => ` conflict:${conflict.field}`).join("")}
    </p>
  );
});

const Banner = memo(function Banner() {
  count("banner");
  const { inSync, pendingWrites } = useSync();
  return <p data-testid="banner">{inSync ? "in sync" : `waiting ${pendingWrites}`}</p>;
});

const Static = memo(function Static() {
  count("static");
  return <p>title</p>;
});

function Page() {
  count("page");
  return (
    <>
      <Static />
      <Banner />
      <Report id="r-1" />
      <Report id="r-2" />
    </>
  );
}

test("a document edited by another client re-renders the hook with the new version, and nothing else", async () => {
  const server = await startServer();
  await server.engine.documents.update("acme", "site-report", "r-1", { baseVersion: 0, changes: { weather: "rain" } });
  await server.engine.documents.update("acme", "site-report", "r-2", { baseVersion: 0, changes: { weather: "fog" } });
  const [phone, office] = [openClient(server.url, alice), openClient(server.url, bob)];
  await Promise.all([connected(phone), connected(office)]);
  for (const name of Object.keys(renders)) delete renders[name];
  renderWith(phone, <Page />, { strict: false });
  await waitForDom(() => expect(screen.getByTestId("r-1").textContent).toBe("ready v1 rain"));
  await waitForDom(() => expect(screen.getByTestId("r-2").textContent).toBe("ready v1 fog"));
  await waitFor(() => screen.getByTestId("banner").textContent === "in sync", { message: "the banner" });
  const before = { ...renders };

  await office.documents.update("site-report", "r-1", { weather: "sun", crew: 6 }, { baseVersion: 1 });
  await waitForDom(() => expect(screen.getByTestId("r-1").textContent).toBe("ready v2 sun"));
  await sleep(50);
  expect(latest!.document).toEqual({ weather: "sun", crew: 6 });
  expect(renders["report:r-1"]).toBe(before["report:r-1"]! + 1);
  expect({ ...renders, "report:r-1": 0 }).toEqual({ ...before, "report:r-1": 0 });
  // One source of truth: what the hook shows is the client's own object.
  expect(latest!.document).toBe(phone.documents.snapshot("site-report", "r-1")!.data);
});

test("two components on one document share one watch; the last unmount ends it on the server", async () => {
  const server = await startServer();
  const client = openClient(server.url, alice);
  await connected(client);
  const view = renderWith(
    client,
    <>
      <Report id="r-1" />
      <Report id="r-1" />
    </>,
  );
  await waitForDom(() => expect(screen.getAllByText("missing v-")).toHaveLength(2));
  expect(documentRooms(server)).toHaveLength(1);
  view.unmount();
  await waitFor(() => documentRooms(server).length === 0, { message: "the document's room to empty" });
});

test("update goes through the outbox: made offline it waits, then commits once and the hook shows it", async () => {
  const server = await startServer();
  await server.engine.documents.update("acme", "site-report", "r-1", { baseVersion: 0, changes: { weather: "rain" } });
  const proxy = await startTcpProxy(server.port);
  try {
    const phone = openClient(proxy.url, alice);
    renderWith(
      phone,
      <>
        <Banner />
        <Report id="r-1" />
      </>,
    );
    await waitForDom(() => expect(screen.getByTestId("r-1").textContent).toBe("ready v1 rain"));

    proxy.hold();
    proxy.cut();
    await waitFor(() => phone.status === "reconnecting", { message: "the phone to lose its connection" });
    let outcome: Promise<unknown> | undefined;
    act(() => {
      outcome = latest!.update({ weather: "hail" });
    });
    await waitForDom(() => expect(screen.getByTestId("banner").textContent).toBe("waiting 1"));
    expect(screen.getByTestId("r-1").textContent).toBe("ready v1 rain");

    proxy.release();
    await expect(outcome).resolves.toMatchObject({ status: "applied", document: { version: 2 } });
    await waitForDom(() => expect(screen.getByTestId("r-1").textContent).toBe("ready v2 hail"));
    await waitForDom(() => expect(screen.getByTestId("banner").textContent).toBe("in sync"));
    expect((await server.engine.documents.history("acme", "site-report", "r-1")).map((version) => version.version)).toEqual([2, 1]);
  } finally {
    await proxy.close();
  }
});

test("a conflict nobody settled is shown by the component that made the update", async () => {
  const server = await startServer();
  await server.engine.documents.update("acme", "site-report", "r-1", { baseVersion: 0, changes: { weather: "rain" } });
  const client = openClient(server.url, alice);
  renderWith(client, <Report id="r-1" />);
  await waitForDom(() => expect(screen.getByTestId("r-1").textContent).toBe("ready v1 rain"));
  await server.engine.documents.update("acme", "site-report", "r-1", { baseVersion: 1, changes: { weather: "snow" } });
  await waitForDom(() => expect(screen.getByTestId("r-1").textContent).toBe("ready v2 snow"));

  await act(async () => {
    await latest!.update({ weather: "sun" }, { baseVersion: 1 });
  });
  expect(screen.getByTestId("r-1").textContent).toBe("ready v2 snow conflict:weather");
});

test("unmounting while an update and a watch are on their way leaves no error and no watch", async () => {
  const server = await startServer();
  await server.engine.documents.update("acme", "site-report", "r-1", { baseVersion: 0, changes: { weather: "rain" } });
  const client = openClient(server.url, alice);
  const errors: unknown[] = [];
  client.onError((error) => errors.push(error));
  const logged = vi.spyOn(console, "error");
  try {
    const view = renderWith(client, <Report id="r-1" />);
    await waitForDom(() => expect(screen.getByTestId("r-1").textContent).toBe("ready v1 rain"));
    let outcome: Promise<unknown> | undefined;
    act(() => {
      outcome = latest!.update({ weather: "sun" });
    });
    view.unmount();
    // The write still commits, and the component that made it is gone without a complaint.
    await expect(outcome).resolves.toMatchObject({ status: "applied", document: { version: 2 } });
    await waitFor(() => documentRooms(server).length === 0, { message: "the watch to end" });

    // Mounted and unmounted before its watch is answered.
    renderWith(client, <Report id="r-2" />).unmount();
    await sleep(50);
    expect(documentRooms(server)).toEqual([]);
    expect(errors).toEqual([]);
    expect(logged).not.toHaveBeenCalled();
  } finally {
    logged.mockRestore();
  }
});


let shown: DocumentState<SiteReport> | undefined;

/** A page that shows one report, whichever: the same component instance when `id` changes. */
function ReportPage({ id }: { id: string }) {
  const state = useDocument<SiteReport>("site-report", id);
  shown = state;
  return (
    <p data-testid="report">
      {state.status} v{state.version ?? "-"} {state.document?.weather ?? ""}
      {state.conflicts.map((conflict) => ` conflict:${conflict.field}`).join("")}
      {state.error ? ` error:${state.error.code}` : ""}
    </p>
  );
}

test("the conflicts shown belong to the document and the client they came from: another document, or another user's client, shows none", async () => {
  const server = await startServer();
  await server.engine.documents.update("acme", "site-report", "r-1", { baseVersion: 0, changes: { weather: "rain" } });
  await server.engine.documents.update("acme", "site-report", "r-1", { baseVersion: 1, changes: { weather: "snow" } });
  await server.engine.documents.update("acme", "site-report", "r-2", { baseVersion: 0, changes: { weather: "fog" } });
  await server.engine.documents.update("globex", "site-report", "r-1", { baseVersion: 0, changes: { weather: "sun" } });
  const phone = openClient(server.url, alice);
  const other = openClient(server.url, { userId: "gina", companyId: "globex", deviceId: "gina-phone" });
  const page = (client: TrussClient<any>, id: string) => (
    <TrussProvider client={client}>
      <ReportPage id={id} />
    </TrussProvider>
  );
  const view = render(page(phone, "r-1"));
  const conflicted = async () => {
    await waitForDom(() => expect(screen.getByTestId("report").textContent).toBe("ready v2 snow"));
    await act(async () => {
      await shown!.update({ weather: "hail" }, { baseVersion: 1 });
    });
    expect(screen.getByTestId("report").textContent).toBe("ready v2 snow conflict:weather");
  };

  await conflicted();
  view.rerender(page(phone, "r-2"));
  await waitForDom(() => expect(screen.getByTestId("report").textContent).toBe("ready v1 fog"));

  view.rerender(page(phone, "r-1"));
  await conflicted();
  // The app signs another user in by handing the provider her client: alice's conflict is none of hers.
  view.rerender(page(other, "r-1"));
  await waitForDom(() => expect(screen.getByTestId("report").textContent).toBe("ready v1 sun"));
});

test("an update the server refuses is the hook's error, with no conflicts left from before, until an update is accepted", async () => {
  let refuseWrites = false;
  const server = await startServer({ authorize: (_principal, request) => !(refuseWrites && request.action === "document:write") });
  await server.engine.documents.update("acme", "site-report", "r-1", { baseVersion: 0, changes: { weather: "rain" } });
  await server.engine.documents.update("acme", "site-report", "r-1", { baseVersion: 1, changes: { weather: "snow" } });
  const client = openClient(server.url, alice);
  renderWith(client, <ReportPage id="r-1" />);
  await waitForDom(() => expect(screen.getByTestId("report").textContent).toBe("ready v2 snow"));
  await act(async () => {
    await shown!.update({ weather: "hail" }, { baseVersion: 1 });
  });
  expect(screen.getByTestId("report").textContent).toBe("ready v2 snow conflict:weather");

  refuseWrites = true;
  let refusal: unknown;
  await act(async () => {
    refusal = await shown!.update({ crew: 4 }).catch((error: TrussClientError) => error.code);
  });
  expect(refusal).toBe("FORBIDDEN");
  expect(screen.getByTestId("report").textContent).toBe("ready v2 snow error:FORBIDDEN");

  refuseWrites = false;
  await act(async () => {
    await shown!.update({ crew: 4 });
  });
  expect(screen.getByTestId("report").textContent).toBe("ready v3 snow");
});
