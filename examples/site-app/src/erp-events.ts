/**
 * Types the hooks' events with the ERP's catalog. A type-only import: the
 * server's schemas stay on the server.
 */
import type { ErpCatalog } from "@truss/example-construction-erp/catalog";

declare module "@truss/react" {
  interface Register {
    events: ErpCatalog;
  }
}
