import { createHmac } from "node:crypto";
import { request as httpRequest } from "node:http";
import jwt from "jsonwebtoken";
import { afterEach, describe, expect, test } from "vitest";
import { connectAs, connectError, createClient, open, signToken, startTestServer, TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET, waitFor, type TestServer } from "@truss/test-utils";

const alice = { userId: "alice", companyId: "acme" };
let server: TestServer;
afterEach(() => server?.close());

const base64url = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** One raw HTTP request to the engine with an Origin, as a page on another site could send it. */
function rawRequest(method: "GET" | "POST", path: string, origin: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: "127.0.0.1", port: server.port, method, path, headers: { origin, ...(body === undefined ? {} : { "content-type": "text/plain;charset=UTF-8" }) } },
      (res) => {
        let text = "";
        res.on("data", (chunk) => (text += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

describe("handshake authentication", () => {
  test("a valid token connects and the principal comes from it", async () => {
    server = await startTestServer();
    const socket = await connectAs(server.url, alice);
    expect(socket.connected).toBe(true);
    expect(await server.engine.isOnline("acme", "alice")).toBe(true);
    socket.close();
  });

  test("the Authorization: Bearer header is accepted", async () => {
    server = await startTestServer();
    const socket = await connectAs(server.url, alice, { auth: {}, extraHeaders: { authorization: `Bearer ${signToken(alice)}` } });
    expect(socket.connected).toBe(true);
    socket.close();
  });

  const refusals: Array<[string, () => Partial<import("socket.io-client").SocketOptions & import("socket.io-client").ManagerOptions>, string]> = [
    ["no token", () => ({ auth: {} }), "AUTH_MISSING_TOKEN"],
    ["a token in the query string only", () => ({ query: { token: signToken(alice) }, auth: {} }), "AUTH_MISSING_TOKEN"],
    ["a forged signature", () => ({ auth: { token: signToken(alice, { secret: "someone-elses-secret" }) } }), "AUTH_INVALID_TOKEN"],
    [
      "an unsigned alg:none token",
      () => ({
        auth: {
          token: `${base64url({ alg: "none", typ: "JWT" })}.${base64url({ sub: "alice", companyId: "acme", iss: TEST_ISSUER, aud: TEST_AUDIENCE, exp: Math.floor(Date.now() / 1000) + 60 })}.`,
        },
      }),
      "AUTH_INVALID_TOKEN",
    ],
    [
      "a token signed with another algorithm",
      () => ({
        auth: {
          token: jwt.sign({ sub: "alice", companyId: "acme" }, TEST_SECRET, { algorithm: "HS512", issuer: TEST_ISSUER, audience: TEST_AUDIENCE, expiresIn: 60 }),
        },
      }),
      "AUTH_WRONG_ALGORITHM",
    ],
    ["an expired token", () => ({ auth: { token: signToken(alice, { expiresInSec: -10 }) } }), "AUTH_TOKEN_EXPIRED"],
    ["a not-yet-valid token", () => ({ auth: { token: signToken(alice, { notBeforeSec: 600 }) } }), "AUTH_TOKEN_NOT_YET_VALID"],
    [
      "a wrong issuer",
      () => ({ auth: { token: jwt.sign({ sub: "alice", companyId: "acme" }, TEST_SECRET, { algorithm: "HS256", issuer: "evil", audience: TEST_AUDIENCE, expiresIn: 60 }) } }),
      "AUTH_WRONG_ISSUER",
    ],
    [
      "a wrong audience",
      () => ({ auth: { token: jwt.sign({ sub: "alice", companyId: "acme" }, TEST_SECRET, { algorithm: "HS256", issuer: TEST_ISSUER, audience: "other-app", expiresIn: 60 }) } }),
      "AUTH_WRONG_AUDIENCE",
    ],
    [
      "a token without a company",
      () => ({ auth: { token: jwt.sign({ sub: "alice" }, TEST_SECRET, { algorithm: "HS256", issuer: TEST_ISSUER, audience: TEST_AUDIENCE, expiresIn: 60 }) } }),
      "AUTH_MISSING_CLAIMS",
    ],
  ];

  test.each(refusals)("%s is refused with a coded connect_error", async (_name, options, code) => {
    server = await startTestServer();
    const error = await connectError(server.url, options());
    expect(error.data?.code).toBe(code);
    expect(error.data?.message.length).toBeGreaterThan(10);
    // The server is still up and serving others.
    const socket = await connectAs(server.url, alice);
    expect(socket.connected).toBe(true);
    socket.close();
    expect(await server.engine.metrics()).toContain(`truss_auth_failures_total{code="${code}"} 1`);
  });

  test("a tampered payload (company switched, signature kept) is refused", async () => {
    server = await startTestServer();
    const [header, , signature] = signToken(alice).split(".");
    const forgedPayload = base64url({ sub: "alice", companyId: "globex", iss: TEST_ISSUER, aud: TEST_AUDIENCE, exp: Math.floor(Date.now() / 1000) + 60 });
    const error = await connectError(server.url, { auth: { token: `${header}.${forgedPayload}.${signature}` } });
    expect(error.data?.code).toBe("AUTH_INVALID_TOKEN");
    // Sanity: the same payload signed correctly would have been accepted.
    const good = createHmac("sha256", TEST_SECRET).update(`${header}.${forgedPayload}`).digest("base64url");
    const socket = await connectAs(server.url, alice, { token: `${header}.${forgedPayload}.${good}` });
    socket.close();
  });
});

describe("a client's principal", () => {
  test("a connection that asks (auth.session) is told first whom the server took its token for (auth:session); one that does not is sent no such event", async () => {
    server = await startTestServer();
    const heardBy = async (auth: Record<string, unknown>) => {
      const socket = createClient(server!.url, { ...alice, deviceId: "alice-phone" }, { auth: { token: signToken(alice), deviceId: "alice-phone", ...auth } });
      const heard: unknown[][] = [];
      socket.onAny((event, payload) => heard.push([event, payload]));
      await open(socket);
      await waitFor(() => heard.some(([event]) => event === "stream:start"));
      socket.close();
      return heard;
    };
    const asked = await heardBy({ session: true });
    expect(asked[0]).toEqual(["auth:session", { userId: "alice", companyId: "acme" }]);
    expect(asked[1]).toMatchObject(["stream:start", { stream: "company" }]);
    // A reconnection names its principal instead, and a plain client asks nothing: neither costs the extra packet.
    for (const auth of [{}, { principal: { userId: "alice", companyId: "acme" } }]) {
      const heard = await heardBy(auth);
      expect(heard.map(([event]) => event)).not.toContain("auth:session");
    }
  });

  test("a handshake that names its client's principal is refused AUTH_PRINCIPAL_MISMATCH when the token names another user or company", async () => {
    server = await startTestServer();
    const belongsTo = { userId: "alice", companyId: "acme" };
    const attempts = [
      { token: signToken({ userId: "bob", companyId: "globex" }), principal: belongsTo },
      { token: signToken({ userId: "alice", companyId: "globex" }), principal: belongsTo },
      { token: signToken({ userId: "carol", companyId: "acme" }), principal: belongsTo },
      { token: signToken(alice), principal: "alice" },
      { token: signToken(alice), principal: null },
    ];
    for (const auth of attempts) {
      const error = await connectError(server.url, { auth: { ...auth, deviceId: "tab-1" } });
      expect(error.data?.code).toBe("AUTH_PRINCIPAL_MISMATCH");
      expect(error.data?.message).toMatch(/another user or company than this client's first connection/);
    }
    expect(await server.engine.metrics()).toContain(`truss_auth_failures_total{code="AUTH_PRINCIPAL_MISMATCH"} ${attempts.length}`);
    expect(await server.engine.isOnline("globex", "bob")).toBe(false);
    // The same user and company with a new token, and a first connection that names nobody, are admitted.
    const renewed = await connectAs(server.url, alice, { auth: { token: signToken(alice, { expiresInSec: 1200 }), principal: belongsTo } });
    const first = await connectAs(server.url, { userId: "bob", companyId: "globex" });
    expect([renewed.connected, first.connected]).toEqual([true, true]);
    renewed.close();
    first.close();
  });
});

describe("origin allow-list", () => {
  const allowed = "https://erp.example.com";

  test("a foreign Origin is refused on the WebSocket handshake and an allowed one connects", async () => {
    server = await startTestServer({ limits: { allowedOrigins: [allowed] } });
    const refused = await connectError(server.url, { auth: { token: signToken(alice) }, extraHeaders: { origin: "https://evil.example" } });
    expect(refused.message).toMatch(/websocket error|ORIGIN_NOT_ALLOWED/);
    const socket = await connectAs(server.url, alice, { extraHeaders: { origin: allowed } });
    expect(socket.connected).toBe(true);
    socket.close();
    expect(await server.engine.metrics()).toMatch(/truss_auth_failures_total\{code="ORIGIN_NOT_ALLOWED"\} [1-9]/);
  });

  test("a foreign Origin is refused on the polling handshake with a 403 naming the code", async () => {
    server = await startTestServer({ limits: { allowedOrigins: [allowed] } });
    const response = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        { host: "127.0.0.1", port: server.port, path: "/socket.io/?EIO=4&transport=polling", headers: { origin: "https://evil.example" } },
        (res) => {
          let body = "";
          res.on("data", (chunk) => (body += chunk));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on("error", reject);
      req.end();
    });
    expect(response.status).toBe(403);
    expect(response.body).toContain("ORIGIN_NOT_ALLOWED");
  });

  test("a session's polling request with a foreign Origin is refused however its sid is spelled, and its event never runs", async () => {
    server = await startTestServer({ limits: { allowedOrigins: [allowed] } });
    const foreign = "https://evil.example";
    const handshake = await rawRequest("GET", "/socket.io/?EIO=4&transport=polling", allowed);
    const sid = JSON.parse(handshake.body.slice(1)).sid as string;
    const session = (sidKey: string) => `/socket.io/?EIO=4&transport=polling&${sidKey}=${sid}`;
    expect((await rawRequest("POST", session("sid"), allowed, `40${JSON.stringify({ token: signToken(alice) })}`)).status).toBe(200);
    await waitFor(async () => (await rawRequest("GET", session("sid"), allowed)).body.includes("40{"), { message: "the namespace's connect packet" });
    const update = (id: string) => `42${JSON.stringify(["document:update", { type: "project", id, baseVersion: 0, changes: { name: "Tower B" } }])}`;

    // Engine.IO percent-decodes query keys: each of these names the session.
    const spellings = ["sid", "%73id", "s%69d", "%73%69%64"];
    for (const spelling of spellings) {
      expect((await rawRequest("POST", session(spelling), foreign, update(`refused-${spelling}`))).status, spelling).toBe(400);
    }
    // From the allowed Origin the same encoded spelling reaches the session and the event runs.
    expect((await rawRequest("POST", session("%73%69%64"), allowed, update("allowed"))).status).toBe(200);
    const committed = (id: string) => server.engine.documents.get("acme", "project", id).then(() => true, () => false);
    await waitFor(() => committed("allowed"), { message: "the allowed update committed" });
    for (const spelling of spellings) expect(await committed(`refused-${spelling}`), spelling).toBe(false);
    expect(await server.engine.metrics()).toMatch(/truss_auth_failures_total\{code="ORIGIN_NOT_ALLOWED"\} 4/);
  });

  test("a polling client from an allowed Origin connects", async () => {
    server = await startTestServer({ limits: { allowedOrigins: [allowed] } });
    const socket = await connectAs(server.url, alice, { transports: ["polling"], extraHeaders: { origin: allowed } });
    expect(socket.connected).toBe(true);
    socket.close();
  });
});
