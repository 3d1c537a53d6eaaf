// @ts-check
/**
 * Builds the example in about a second: the server into `dist/server.js`
 * (its packages stay external and load from node_modules) and the dashboard's
 * browser script, with `@truss/client` bundled in, into
 * `dist/public/dashboard.js`.
 *
 * Run by `pnpm start`; the dashboard test calls {@link buildDashboard}.
 */
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

/**
 * Bundles the dashboard script for browsers. `@truss/*` imports resolve to
 * the packages' TypeScript sources through the repository's tsconfig paths,
 * so the dashboard builds without building the packages first.
 *
 * @param {{ outdir?: string }} [options]
 * @returns {Promise<string>} the directory written to.
 */
export async function buildDashboard(options = {}) {
  const outdir = options.outdir ?? `${root}dist/public`;
  await build({
    absWorkingDir: root,
    entryPoints: { dashboard: "web/dashboard.ts" },
    outdir,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    sourcemap: true,
    tsconfig: "tsconfig.json",
    logLevel: "warning",
  });
  return outdir;
}

/**
 * Bundles the server's own modules into one file. Every package import
 * (fastify, better-sqlite3, `@truss/*`) stays an import and is loaded from
 * node_modules at run time, so the `@truss/*` packages must be built
 * (`pnpm build` at the repository root, which `pnpm demo` runs).
 *
 * @returns {Promise<void>}
 */
export async function buildServer() {
  await build({
    absWorkingDir: root,
    entryPoints: { server: "src/server.ts" },
    outdir: `${root}dist`,
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    sourcemap: true,
    // No tsconfig paths here: at run time @truss/* must be the built packages that fastify's plugin also loads.
    tsconfigRaw: {},
    logLevel: "warning",
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const started = Date.now();
  await Promise.all([buildServer(), buildDashboard()]);
  console.log(`Built dist/server.js and dist/public/dashboard.js in ${Date.now() - started} ms.`);
}
