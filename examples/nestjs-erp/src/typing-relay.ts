import { Inject, Injectable, type OnModuleInit } from "@nestjs/common";
import type { ErpCatalog } from "@truss/example-construction-erp/catalog";
import { relayTyping } from "@truss/example-construction-erp/typing";
import { RealtimeService } from "@truss/nestjs";
import { ErpDatabase } from "./database.js";

/** Relays `user:typing` to the people who may read the document: the demo's handler, registered on the engine. */
@Injectable()
export class TypingRelay implements OnModuleInit {
  constructor(
    @Inject(RealtimeService) private readonly realtime: RealtimeService<ErpCatalog>,
    @Inject(ErpDatabase) private readonly database: ErpDatabase,
  ) {}

  onModuleInit(): void {
    relayTyping(this.realtime.engine, this.database.access);
  }
}
