// @ts-check
/** Bundles the app into `dist/main.js` (see the construction ERP's bundle-node-app). */
import { fileURLToPath } from "node:url";
import { bundleNodeApp } from "@truss/example-construction-erp/bundle-node-app";

await bundleNodeApp({ root: fileURLToPath(new URL("..", import.meta.url)), entry: "src/main.ts", name: "main", decorators: true });
