import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from "@nestjs/common";
import { HttpAdapterHost } from "@nestjs/core";
import type { RealtimeEngine } from "@truss/core";
import type { EventCatalog } from "@truss/protocol";
import { REALTIME_ENGINE } from "./tokens.js";

/**
 * Every member of `RealtimeEngine`. The compiler checks the list is complete
 * (see `Unlisted` below), so the service can never fall behind the engine.
 */
const ENGINE_MEMBERS = [
  "attach",
  "bind",
  "io",
  "documents",
  "toCompany",
  "toTopic",
  "disconnectUser",
  "unsubscribeUser",
  "toUser",
  "handle",
  "isOnline",
  "presence",
  "health",
  "metrics",
  "close",
] as const satisfies ReadonlyArray<keyof RealtimeEngine>;
type Unlisted = Exclude<keyof RealtimeEngine, (typeof ENGINE_MEMBERS)[number]>;
const everyMemberListed: [Unlisted] extends [never] ? true : Unlisted = true;
void everyMemberListed;

/** The service has every member of the engine; they are forwarded, not written out one by one. */
export interface RealtimeService<C extends EventCatalog = EventCatalog> extends RealtimeEngine<C> {}

/**
 * Truss for your controllers and services: inject it and emit where data
 * changes, or revoke access where it is taken away. It is the module's
 * engine (`toCompany`, `toTopic`, `toUser`, `disconnectUser`,
 * `unsubscribeUser`, `handle`, `documents`, `presence`, `health`…), plus the
 * Nest lifecycle: it serves Truss on the app's HTTP server at bootstrap and
 * closes the engine when the module is destroyed.
 *
 * @example
 * ```ts
 * @Injectable()
 * export class ExpensesService {
 *   constructor(private readonly realtime: RealtimeService) {}
 *   async approve(expense: Expense) {
 *     await this.realtime.toUser(expense.companyId, expense.submittedBy).emit("expense:approved", expense);
 *   }
 * }
 * ```
 */
@Injectable()
export class RealtimeService<C extends EventCatalog = EventCatalog> implements OnApplicationBootstrap, OnModuleDestroy {
  constructor(
    /** The engine itself (the same object as the `REALTIME_ENGINE` provider). */
    @Inject(REALTIME_ENGINE) readonly engine: RealtimeEngine<C>,
    @Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost,
  ) {
    for (const name of ENGINE_MEMBERS) {
      Object.defineProperty(this, name, {
        get: () => {
          const value: unknown = engine[name];
          // A member that is a function with members of its own (`presence` and `presence.in`) keeps them.
          return typeof value === "function" ? Object.assign(value.bind(engine), value) : value;
        },
      });
    }
  }

  /**
   * Serves Truss on the app's HTTP server when no gateway made
   * `TrussIoAdapter` create the Socket.IO server: Nest only calls a
   * WebSocket adapter for gateways, and this hook runs after they are set up.
   */
  onApplicationBootstrap(): void {
    const server: unknown = this.adapterHost.httpAdapter?.getHttpServer();
    if (!this.engine.io && server) this.engine.attach(server as Parameters<RealtimeEngine["attach"]>[0]);
  }

  /** Tells clients `SERVER_SHUTTING_DOWN` and disconnects them before Nest closes the HTTP server. */
  async onModuleDestroy(): Promise<void> {
    await this.engine.close();
  }
}
