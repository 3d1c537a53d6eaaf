import "reflect-metadata";
import type { AddressInfo } from "node:net";
import { Body, Controller, HttpCode, Inject, Injectable, Module, Param, Patch, Post, type DynamicModule, type INestApplication } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import { ConnectedSocket, MessageBody, SubscribeMessage, WebSocketGateway, WebSocketServer } from "@nestjs/websockets";
import { RealtimeService, TrussIoAdapter, type RealtimeEngine } from "@truss/nestjs";
import { inject } from "vitest";

declare module "vitest" {
  export interface ProvidedContext {
    /** The Nest HTTP platform the suite runs on (vitest.config.ts provides it per project); Express when unset. */
    nestPlatform?: "express" | "fastify";
  }
}

/** The HTTP platform of this run: the same tests run on `@nestjs/platform-express` and `@nestjs/platform-fastify`. */
export const nestPlatform = inject("nestPlatform") ?? "express";

type Namespace = ReturnType<NonNullable<RealtimeEngine["io"]>["of"]>;

// Nest classes of an ERP-like test app. Every constructor parameter names its
// token with @Inject, so nothing depends on the compiler emitting decorator
// metadata.

@Injectable()
export class ExpensesService {
  constructor(@Inject(RealtimeService) private readonly realtime: RealtimeService) {}

  /** Approving an expense tells its submitter on every device, durably. */
  async approve(companyId: string, id: string, submittedBy: string): Promise<{ messageId: string }> {
    const message = await this.realtime.toUser(companyId, submittedBy).emit("expense:approved", { id });
    return { messageId: message.id };
  }
}

@Controller()
export class ErpController {
  constructor(
    @Inject(RealtimeService) private readonly realtime: RealtimeService,
    @Inject(ExpensesService) private readonly expenses: ExpensesService,
  ) {}

  @Patch("companies/:companyId/projects/:id")
  updateProject(@Param("companyId") companyId: string, @Param("id") id: string, @Body() body: { name: string }) {
    const project = { id, name: body.name };
    this.realtime.toCompany(companyId).emit("project:updated", project);
    return project;
  }

  @Post("companies/:companyId/expenses/:id/approve")
  @HttpCode(202)
  approveExpense(@Param("companyId") companyId: string, @Param("id") id: string, @Body() body: { submittedBy: string }) {
    return this.expenses.approve(companyId, id, body.submittedBy);
  }
}

/** A chat gateway of the app's own, on `/chat`, beside Truss on `/`. */
@WebSocketGateway({ namespace: "/chat" })
export class ChatGateway {
  @WebSocketServer() namespace!: Namespace;

  @SubscribeMessage("chat:ping")
  ping(@MessageBody() text: string, @ConnectedSocket() socket: { id: string }) {
    return { reply: `pong: ${text}`, socketId: socket.id };
  }
}

/** A gateway on a Socket.IO path of its own, as an app migrating from an older client might keep. */
@WebSocketGateway({ path: "/legacy-socket" })
export class LegacyGateway {
  @WebSocketServer() server!: NonNullable<RealtimeEngine["io"]>;

  @SubscribeMessage("legacy:ping")
  ping() {
    return "legacy pong";
  }
}

/** Builds a root module around a configured RealtimeModule. */
export function appModule(realtime: DynamicModule, options: { gateway?: boolean; legacyGateway?: boolean } = {}): new () => unknown {
  @Module({
    imports: [realtime],
    controllers: [ErpController],
    providers: [ExpensesService, ...(options.gateway ? [ChatGateway] : []), ...(options.legacyGateway ? [LegacyGateway] : [])],
  })
  class AppModule {}
  return AppModule;
}

/** A running Nest app on a free loopback port. */
export interface RunningApp {
  app: INestApplication;
  url: string;
}

/** Creates the app on this run's platform, optionally with TrussIoAdapter, and listens on 127.0.0.1:0. */
export async function startNest(module: new () => unknown, options: { trussAdapter?: boolean } = {}): Promise<RunningApp> {
  const app =
    nestPlatform === "fastify"
      ? await NestFactory.create(module, new (await import("@nestjs/platform-fastify")).FastifyAdapter(), { logger: false })
      : await NestFactory.create(module, { logger: false });
  if (options.trussAdapter ?? true) app.useWebSocketAdapter(new TrussIoAdapter(app));
  await app.listen(0, "127.0.0.1");
  const { port } = app.getHttpServer().address() as AddressInfo;
  return { app, url: `http://127.0.0.1:${port}` };
}
