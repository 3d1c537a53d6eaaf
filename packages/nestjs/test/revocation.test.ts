import "reflect-metadata";
import { Body, Controller, Delete, HttpCode, Inject, Module, Param, Post } from "@nestjs/common";
import { RealtimeModule, RealtimeService } from "@truss/nestjs";
import { ProjectCrews, revocationScenarios, testAuth } from "@truss/test-utils";
import { afterEach, describe, test } from "vitest";
import { startNest, type RunningApp } from "./app.js";

/** The crews are a provider of the app's own, which the policy reads. */
@Module({ providers: [ProjectCrews], exports: [ProjectCrews] })
class CrewsModule {}

@Controller("companies/:companyId")
class AccessController {
  constructor(
    @Inject(RealtimeService) private readonly realtime: RealtimeService,
    @Inject(ProjectCrews) private readonly crews: ProjectCrews,
  ) {}

  @Post("users/:userId/revoke")
  @HttpCode(200)
  revoke(@Param("companyId") companyId: string, @Param("userId") userId: string) {
    return this.realtime.disconnectUser(companyId, userId);
  }

  @Post("projects/:id/site-reports")
  fileSiteReport(@Param("companyId") companyId: string, @Param("id") id: string, @Body() body: { summary: string }) {
    const report = { projectId: id, summary: body.summary };
    this.realtime.toTopic(companyId, `project:${id}`).emit("site-report:filed", report);
    return report;
  }

  @Delete("projects/:id/crew/:userId")
  removeFromCrew(@Param("companyId") companyId: string, @Param("id") id: string, @Param("userId") userId: string) {
    this.crews.remove(companyId, id, userId);
    return this.realtime.unsubscribeUser(companyId, userId, `project:${id}`);
  }
}

/** The policy is built from an injected provider, as an app's would be from its repositories. */
@Module({
  imports: [
    CrewsModule,
    RealtimeModule.forRootAsync({
      imports: [CrewsModule],
      inject: [ProjectCrews],
      useFactory: (crews: ProjectCrews) => ({ auth: testAuth(), logger: false, ...revocationScenarios.options(crews) }),
    }),
  ],
  controllers: [AccessController],
})
class AppModule {}

let running: RunningApp | undefined;
afterEach(async () => {
  await running?.app.close();
  running = undefined;
});

async function start(): Promise<RunningApp> {
  running = await startNest(AppModule);
  return running;
}

describe("revoking through RealtimeService", () => {
  test("disconnectUser closes every device of the user with ACCESS_REVOKED and answers how many", async () => {
    const { url } = await start();
    await revocationScenarios.disconnectUserFromRouteClosesEveryDevice(url);
  });

  test("toTopic reaches the topic's subscribers in that company, not the same topic in another company", async () => {
    const { url } = await start();
    await revocationScenarios.toTopicFromRouteReachesOnlyItsCompany(url);
  });

  test("unsubscribeUser ends the user's subscription on every device, and the policy keeps it ended", async () => {
    const { url } = await start();
    await revocationScenarios.unsubscribeUserEndsEveryDevice(url, () => revocationScenarios.removeAliceFromCrewByRoute(url));
  });
});
