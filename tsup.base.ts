import { defineConfig, type Options } from "tsup";

/**
 * The build every published package shares: ESM and CJS for Node 20 with
 * types for each. Type-checking resolves `@truss/*` to sources through
 * tsconfig paths; the published types must import them instead, so the dts
 * build clears the paths.
 */
export function packageBuild(entry: string[], overrides: Options = {}) {
  return defineConfig({
    entry,
    format: ["esm", "cjs"],
    dts: { compilerOptions: { paths: {} } },
    sourcemap: true,
    clean: true,
    target: "node20",
    ...overrides,
  });
}
