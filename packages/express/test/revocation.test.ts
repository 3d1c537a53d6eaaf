import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { RealtimeEngine } from "@truss/core";
import { attachRealtime, realtimeHandler } from "@truss/express";
import { ProjectCrews, revocationScenarios, testAuth } from "@truss/test-utils";
import express from "express";
import { afterEach, describe, test } from "vitest";

interface TestApp {
  server: Server;
  /** What `attachRealtime` returned. */
  realtime: RealtimeEngine;
  /** The policy reads them. */
  crews: ProjectCrews;
  url: string;
  close(): Promise<void>;
}

let running: TestApp | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

/**
 * An ERP-like app whose project crews decide who hears a project's topic:
 * the policy reads the crews, and the routes tell the engine through
 * `req.realtime`.
 */
async function startApp(): Promise<TestApp> {
  const crews = new ProjectCrews();
  const app = express();
  const server = createServer(app);
  const realtime = attachRealtime(server, { auth: testAuth(), logger: false, ...revocationScenarios.options(crews) });
  app.use(express.json());
  app.use(realtimeHandler(realtime));
  app.post("/companies/:companyId/users/:userId/revoke", async (req, res) => {
    res.json(await req.realtime.disconnectUser(req.params.companyId, req.params.userId));
  });
  app.post("/companies/:companyId/projects/:id/site-reports", (req, res) => {
    const report = { projectId: req.params.id, summary: (req.body as { summary: string }).summary };
    req.realtime.toTopic(req.params.companyId, `project:${req.params.id}`).emit("site-report:filed", report);
    res.status(201).json(report);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  running = {
    server,
    realtime,
    crews,
    url: `http://127.0.0.1:${port}`,
    async close() {
      await realtime.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return running;
}

describe("revoking from route handlers (req.realtime)", () => {
  test("disconnectUser closes every device of the user with ACCESS_REVOKED and answers how many", async () => {
    const { url } = await startApp();
    await revocationScenarios.disconnectUserFromRouteClosesEveryDevice(url);
  });

  test("toTopic reaches the topic's subscribers in that company, not the same topic in another company", async () => {
    const { url } = await startApp();
    await revocationScenarios.toTopicFromRouteReachesOnlyItsCompany(url);
  });
});

describe("revoking outside a request (the engine attachRealtime returned)", () => {
  test("unsubscribeUser ends the user's subscription on every device, and the policy keeps it ended", async () => {
    const { url, realtime, crews } = await startApp();
    // A crew change made by a background job: the policy's data first, then the live sockets.
    await revocationScenarios.unsubscribeUserEndsEveryDevice(url, async () => {
      crews.remove("acme", "p1", "alice");
      return realtime.unsubscribeUser("acme", "alice", "project:p1");
    });
  });
});
