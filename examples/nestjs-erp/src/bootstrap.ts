import "reflect-metadata";
import { NestFactory } from "@nestjs/core";
import type { INestApplication } from "@nestjs/common";
import { TrussIoAdapter } from "@truss/nestjs";
import { AppModule } from "./app.module.js";
import type { ErpConfig } from "./config.js";

/**
 * Creates the Nest app, not listening yet. `TrussIoAdapter` makes any
 * `@WebSocketGateway` you add share Truss's Socket.IO server instead of
 * starting a second one on the same port.
 */
export async function createNestErp(config: ErpConfig, options: { logger?: false } = {}): Promise<INestApplication> {
  const app = await NestFactory.create(AppModule.forRoot(config), { logger: options.logger ?? ["error", "warn"] });
  app.useWebSocketAdapter(new TrussIoAdapter(app));
  return app;
}
