import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/index.ts"],
  format: ["esm", "cjs"],
  // Type-checking resolves @truss/* to sources (tsconfig paths); published types must import them.
  dts: { compilerOptions: { paths: {} } },
  sourcemap: true,
  clean: true,
  target: "node20",
});
