import { trussFastify } from "@truss/fastify";
import { ProjectCrews, revocationScenarios, testAuth } from "@truss/test-utils";
import Fastify, { type FastifyInstance } from "fastify";
import { afterEach, describe, test } from "vitest";

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

/**
 * An ERP-like app whose project crews decide who hears a project's topic:
 * the policy reads the crews, and the routes change them and tell the engine
 * through `app.realtime`.
 */
async function startApp(): Promise<{ app: FastifyInstance; url: string }> {
  const crews = new ProjectCrews();
  const instance = Fastify();
  await instance.register(trussFastify, { auth: testAuth(), logger: false, ...revocationScenarios.options(crews) });
  instance.post<{ Params: { companyId: string; userId: string } }>("/companies/:companyId/users/:userId/revoke", (request) =>
    instance.realtime.disconnectUser(request.params.companyId, request.params.userId),
  );
  instance.post<{ Params: { companyId: string; id: string }; Body: { summary: string } }>(
    "/companies/:companyId/projects/:id/site-reports",
    async (request, reply) => {
      const report = { projectId: request.params.id, summary: request.body.summary };
      instance.realtime.toTopic(request.params.companyId, `project:${request.params.id}`).emit("site-report:filed", report);
      return reply.code(201).send(report);
    },
  );
  instance.delete<{ Params: { companyId: string; id: string; userId: string } }>("/companies/:companyId/projects/:id/crew/:userId", (request) => {
    const { companyId, id, userId } = request.params;
    crews.remove(companyId, id, userId);
    return instance.realtime.unsubscribeUser(companyId, userId, `project:${id}`);
  });
  const url = await instance.listen({ port: 0, host: "127.0.0.1" });
  app = instance;
  return { app: instance, url };
}

describe("revoking from route handlers", () => {
  test("disconnectUser closes every device of the user with ACCESS_REVOKED and answers how many", async () => {
    const { url } = await startApp();
    await revocationScenarios.disconnectUserFromRouteClosesEveryDevice(url);
  });

  test("toTopic reaches the topic's subscribers in that company, not the same topic in another company", async () => {
    const { url } = await startApp();
    await revocationScenarios.toTopicFromRouteReachesOnlyItsCompany(url);
  });

  test("unsubscribeUser ends the user's subscription on every device, and the policy keeps it ended", async () => {
    const { url } = await startApp();
    await revocationScenarios.unsubscribeUserEndsEveryDevice(url, () => revocationScenarios.removeAliceFromCrewByRoute(url));
  });
});
