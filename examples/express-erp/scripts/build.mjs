// @ts-check
/** Bundles the server into `dist/server.js` (see the construction ERP's bundle-node-app). */
import { fileURLToPath } from "node:url";
import { bundleNodeApp } from "@truss/example-construction-erp/bundle-node-app";

await bundleNodeApp({ root: fileURLToPath(new URL("..", import.meta.url)), entry: "src/server.ts", name: "server" });
