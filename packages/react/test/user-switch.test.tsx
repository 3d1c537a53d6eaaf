import { render, screen, waitFor as waitForDom } from "@testing-library/react";
import { afterEach, expect, test, vi } from "vitest";
import { signToken, startTcpProxy, waitFor, type TcpProxy, type TestClaims } from "@truss/test-utils";
import { localStorageOutboxStore, type DocumentUpdateOutcome, type TrussClient } from "@truss/client";
import { TrussProvider, useDocument, useOutbox, usePresence, useStatus, useTopic, useTrussClient } from "@truss/react";
import { alice, closeAll, startServer, type Server } from "./helpers.js";

const proxies: TcpProxy[] = [];
afterEach(async () => {
  await closeAll();
  for (const proxy of proxies.splice(0)) await proxy.close();
  localStorage.clear();
});

/** Globex's accountant, signing in on the tab Alice just left. */
const globexBob = { userId: "bob", companyId: "globex" } satisfies TestClaims;

/** The browser's session, as the app's `getToken` reads it: whoever is signed in now. */
const session = { token: "" };
let shown: { client: TrussClient<any> | null; update: (changes: { notes: string }) => Promise<DocumentUpdateOutcome> } | undefined;

function Report() {
  const client = useTrussClient();
  const status = useStatus();
  const report = useDocument<{ notes?: string }>("site-report", "r-1");
  const feed = useTopic("project:tower-b");
  const { users } = usePresence();
  const { pending } = useOutbox();
  shown = { client, update: report.update };
  return (
    <p data-testid="report">
      {status} | {report.status} {report.error?.code ?? ""} {report.document?.notes ?? ""} | topic {feed.status} | online{" "}
      {users?.map((user) => user.userId).join(",")} | {pending.length} waiting
    </p>
  );
}

/** docs/react.md's `Root`, with the provider keyed by the signed-in user or not. */
function Root({ user, url, keyed }: { user: TestClaims; url: string; keyed: boolean }) {
  const { userId, companyId } = user;
  return (
    <TrussProvider
      key={keyed ? `${companyId}:${userId}` : undefined}
      url={url}
      options={{
        getToken: () => session.token,
        deviceId: "browser-1",
        reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
        socketOptions: { transports: ["websocket"] },
        outbox: { store: localStorageOutboxStore(`truss:outbox:${companyId}:${userId}`) },
      }}
    >
      <Report />
    </TrussProvider>
  );
}

const report = () => screen.getByTestId("report").textContent ?? "";

/** Acme's report at version 3, globex's at version 5, behind a proxy the test can take away. */
async function start(): Promise<{ server: Server; proxy: TcpProxy }> {
  const server = await startServer();
  for (const [version, notes] of ["a1", "a2", "acme's bid: 4.2M"].entries()) {
    await server.engine.documents.update("acme", "site-report", "r-1", { baseVersion: version, changes: { notes } });
  }
  for (let version = 0; version < 5; version++) {
    await server.engine.documents.update("globex", "site-report", "r-1", { baseVersion: version, changes: { notes: `globex ${version + 1}` } });
  }
  const proxy = await startTcpProxy(server.port);
  proxies.push(proxy);
  return { server, proxy };
}

/**
 * Alice edits offline; she signs out and Bob of globex signs in on the same
 * tab before the network is back. The client's attempt that waits for the
 * network asked for the session's token: Bob's.
 */
async function aliceEditsOfflineThenBobSignsIn(proxy: TcpProxy, rerender: (ui: React.ReactNode) => void, keyed: boolean): Promise<Promise<unknown>> {
  await waitForDom(() => expect(report()).toMatch(/^connected \| ready\s+acme's bid: 4\.2M \| topic active \| online alice \| 0 waiting/));
  session.token = signToken(globexBob);
  proxy.hold();
  proxy.cut();
  await waitFor(() => shown?.client?.status === "reconnecting");
  const edit = shown!.update({ notes: "alice's offline edit" }).catch((error: { code: string }) => error.code);
  await waitForDom(() => expect(report()).toMatch(/1 waiting$/));
  rerender(<Root user={globexBob} url={proxy.url} keyed={keyed} />);
  proxy.release();
  return edit;
}

test("a provider without a key, kept across a sign-out and another company's sign-in, ends with AUTH_PRINCIPAL_MISMATCH and shows nothing of the first user", async () => {
  const { server, proxy } = await start();
  const warned = vi.spyOn(console, "warn").mockImplementation(() => undefined);
  try {
    session.token = signToken(alice);
    const view = render(<Root user={alice} url={proxy.url} keyed={false} />);
    const edit = await aliceEditsOfflineThenBobSignsIn(proxy, view.rerender, false);

    await waitForDom(() => expect(report()).toMatch(/^closed \|/));
    expect(report()).toBe("closed | dropped AUTH_PRINCIPAL_MISMATCH  | topic dropped | online  | 0 waiting");
    expect(await edit).toBe("CLIENT_CLOSED");
    expect(warned).toHaveBeenCalledWith(expect.stringMatching(/AUTH_PRINCIPAL_MISMATCH.*key=\{`\$\{companyId\}:\$\{userId\}`\}/));
    // Nothing went out under Bob's name, and Alice's edit waits in her own store.
    expect(await server.engine.isOnline("globex", "bob")).toBe(false);
    expect(server.topicRequests).toEqual(["project:tower-b"]);
    expect((await server.engine.documents.get("globex", "site-report", "r-1")).version).toBe(5);
    expect(localStorageOutboxStore("truss:outbox:acme:alice").load()).toMatchObject([{ changes: { notes: "alice's offline edit" }, baseVersion: 3 }]);
  } finally {
    warned.mockRestore();
  }
});

test("a provider keyed by the user starts Bob's own client, and Alice's edit commits when she signs in again", async () => {
  const { server, proxy } = await start();
  session.token = signToken(alice);
  const view = render(<Root user={alice} url={proxy.url} keyed />);
  const edit = await aliceEditsOfflineThenBobSignsIn(proxy, view.rerender, true);

  await waitForDom(() => expect(report()).toBe("connected | ready  globex 5 | topic active | online bob | 0 waiting"));
  expect(await edit).toBe("CLIENT_CLOSED");
  expect(localStorageOutboxStore("truss:outbox:acme:alice").load()).toHaveLength(1);

  session.token = signToken(alice);
  view.rerender(<Root user={alice} url={proxy.url} keyed />);
  await waitForDom(() => expect(report()).toMatch(/^connected \| ready\s+alice's offline edit \| topic active \| online alice \| 0 waiting/));
  expect(await server.engine.documents.get("acme", "site-report", "r-1")).toMatchObject({ version: 4, updatedBy: "alice" });
  expect((await server.engine.documents.get("globex", "site-report", "r-1")).version).toBe(5);
  expect(localStorageOutboxStore("truss:outbox:acme:alice").load()).toEqual([]);
});
