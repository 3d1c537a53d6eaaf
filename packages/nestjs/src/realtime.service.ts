import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from "@nestjs/common";
import { HttpAdapterHost } from "@nestjs/core";
import type { EventCatalog, RealtimeEngine } from "@truss/core";
import { REALTIME_ENGINE } from "./tokens.js";

/**
 * Truss for your controllers and services: inject it and emit where data changes.
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
    /** The engine itself, for what this service does not wrap (`handle`, `io`). */
    @Inject(REALTIME_ENGINE) readonly engine: RealtimeEngine<C>,
    @Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost,
  ) {}

  /** Server-side document operations, scoped to a company. */
  get documents(): RealtimeEngine<C>["documents"] {
    return this.engine.documents;
  }

  /** Emits live to every connected device of a company. */
  toCompany(companyId: string): ReturnType<RealtimeEngine<C>["toCompany"]> {
    return this.engine.toCompany(companyId);
  }

  /** Sends durably (through the inbox) to every device of a company's user. */
  toUser(companyId: string, userId: string): ReturnType<RealtimeEngine<C>["toUser"]> {
    return this.engine.toUser(companyId, userId);
  }

  /** Whether a user of a company is online on any node. */
  isOnline(companyId: string, userId: string): Promise<boolean> {
    return this.engine.isOnline(companyId, userId);
  }

  /** The online users of a company, with their devices. */
  presence(companyId: string): ReturnType<RealtimeEngine<C>["presence"]> {
    return this.engine.presence(companyId);
  }

  /** Store reachability and connection count. */
  health(): ReturnType<RealtimeEngine<C>["health"]> {
    return this.engine.health();
  }

  /** Counters and gauges in the Prometheus text format. */
  metrics(): Promise<string> {
    return this.engine.metrics();
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
