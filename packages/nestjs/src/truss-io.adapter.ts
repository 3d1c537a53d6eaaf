import type { INestApplicationContext } from "@nestjs/common";
import { IoAdapter } from "@nestjs/platform-socket.io";
import type { RealtimeEngine } from "@truss/core";
import { REALTIME_ENGINE } from "./tokens.js";

/**
 * `IoAdapter.createIOServer`'s own parameter and return types, so the override
 * matches NestJS 11 (`any`) and NestJS 12 (socket.io's `ServerOptions` and
 * `Server`, from the socket.io copy `@nestjs/platform-socket.io` pins).
 */
type IoServerOptions = Parameters<IoAdapter["createIOServer"]>[1];
type IoServer = ReturnType<IoAdapter["createIOServer"]>;

/**
 * Makes your `@WebSocketGateway`s share Truss's Socket.IO server, so one
 * port serves REST, Truss (on `/` by default) and the gateways' namespaces.
 * Without it, a gateway would start a second Socket.IO server on the same
 * path and the two would fight over every connection.
 *
 * Gateways on the app's port and Socket.IO path share the server, and with
 * it the module's `socketIo` options (a gateway decorator's own `cors` or
 * `transports` do not apply there); a gateway with its own port or path gets
 * its own server, as with Nest's `IoAdapter`.
 *
 * @example
 * ```ts
 * const app = await NestFactory.create(AppModule);
 * app.useWebSocketAdapter(new TrussIoAdapter(app));
 * await app.listen(3000);
 * ```
 */
export class TrussIoAdapter extends IoAdapter {
  constructor(private readonly app: INestApplicationContext) {
    super(app);
  }

  /** Returns Truss's Socket.IO server (attaching it on first use) for gateways on the app's own server. */
  override createIOServer(port: number, options?: IoServerOptions): IoServer {
    if (port === 0 && this.httpServer) {
      const engine = this.app.get<RealtimeEngine>(REALTIME_ENGINE, { strict: false });
      const io = engine.io ?? engine.attach(this.httpServer);
      // The same socket.io 4 `Server`, typed from `@truss/core`'s copy of socket.io rather than Nest's.
      if ((options?.path ?? "/socket.io") === io.path()) return io as unknown as IoServer;
    }
    return super.createIOServer(port, options);
  }
}
