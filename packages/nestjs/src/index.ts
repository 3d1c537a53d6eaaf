export { RealtimeModule } from "./realtime.module.js";
export { REALTIME_MODULE_OPTIONS } from "./realtime.module-definition.js";
export type {
  RealtimeModuleAsyncOptions,
  RealtimeModuleExtras,
  RealtimeModuleForRootOptions,
  RealtimeModuleOptions,
} from "./realtime.module-definition.js";
export { RealtimeService } from "./realtime.service.js";
export { TrussIoAdapter } from "./truss-io.adapter.js";
export { REALTIME_ENGINE } from "./tokens.js";
export type { RealtimeEngine } from "@truss/core";
export type { EventCatalog } from "@truss/protocol";
export type { RealtimeEngineSource, RealtimeHttpOptions } from "@truss/core/http";
