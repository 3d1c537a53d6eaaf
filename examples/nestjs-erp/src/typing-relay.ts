import { Inject, Injectable, type OnModuleInit } from "@nestjs/common";
import type { ErpCatalog } from "@truss/example-construction-erp/catalog";
import { RealtimeService } from "@truss/nestjs";

/** Relays `user:typing` from a client to its colleagues; the engine has validated it against the catalog. */
@Injectable()
export class TypingRelay implements OnModuleInit {
  constructor(@Inject(RealtimeService) private readonly realtime: RealtimeService<ErpCatalog>) {}

  onModuleInit(): void {
    this.realtime.engine.handle("user:typing", (data, { principal, broadcast }) => broadcast("user:typing", { ...data, userId: principal.userId }));
  }
}
