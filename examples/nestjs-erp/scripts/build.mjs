// @ts-check
/**
 * Bundles the app into `dist/main.js`. The construction ERP's shared
 * modules (catalog, seed, auth, data) are TypeScript sources, so they are
 * bundled in; every other package stays an import, loaded from node_modules
 * at run time (the `@truss/*` packages must be built: `pnpm build` at the root).
 */
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

/** @type {import("esbuild").Plugin} */
const packagesExceptExamples = {
  name: "packages-except-examples",
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith("@truss/example-") ? undefined : { path: args.path, external: true }));
  },
};

await build({
  absWorkingDir: fileURLToPath(new URL("..", import.meta.url)),
  entryPoints: { main: "src/main.ts" },
  outdir: "dist",
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  sourcemap: true,
  // Nest's decorators; every injection names its token with @Inject, so no decorator metadata is needed.
  tsconfigRaw: { compilerOptions: { experimentalDecorators: true } },
  plugins: [packagesExceptExamples],
  logLevel: "warning",
});
console.log("Built dist/main.js.");
