// @ts-check
/**
 * Bundles a Node example app built on the construction ERP's shared modules
 * (catalog, seed, auth, data), as the Express and NestJS examples are. Those
 * modules are TypeScript sources, so they are bundled in; every other package
 * stays an import loaded from node_modules at run time (the `@truss/*`
 * packages must be built: `pnpm build` at the root).
 */
import { build } from "esbuild";

/** @type {import("esbuild").Plugin} */
const packagesExceptExamples = {
  name: "packages-except-examples",
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith("@truss/example-") ? undefined : { path: args.path, external: true }));
  },
};

/**
 * @param {{ root: string; entry: string; name: string; decorators?: boolean }} options
 *   `root`: the example's directory; `entry`: its entry file relative to root;
 *   `name`: the output name in `dist/`; `decorators`: compile TypeScript
 *   decorators (NestJS; every injection names its token, so no metadata).
 */
export async function bundleNodeApp({ root, entry, name, decorators = false }) {
  await build({
    absWorkingDir: root,
    entryPoints: { [name]: entry },
    outdir: "dist",
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    sourcemap: true,
    tsconfigRaw: decorators ? { compilerOptions: { experimentalDecorators: true } } : {},
    plugins: [packagesExceptExamples],
    logLevel: "warning",
  });
  console.log(`Built dist/${name}.js.`);
}
