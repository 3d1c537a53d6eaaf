/**
 * The Truss wire protocol, re-exported from `@truss/protocol` so existing
 * imports of `@truss/core/protocol` keep working.
 *
 * @deprecated Import from `@truss/protocol`, which has no dependencies; a
 * browser app then installs no server code.
 * @module
 */
export * from "@truss/protocol";
