import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const packages = ["protocol", "core", "conformance", "redis", "fastify", "express", "nestjs", "client"] as const;

const fromRoot = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/**
 * Tests import every `@truss/*` package from its TypeScript source, so the
 * suite runs without a build and a stack trace points at the real line.
 */
const alias = [
  { find: "@truss/core/protocol", replacement: fromRoot("./packages/core/src/protocol.ts") },
  { find: "@truss/core/http", replacement: fromRoot("./packages/core/src/http.ts") },
  ...packages.map((name) => ({
    find: new RegExp(`^@truss/${name}$`),
    replacement: fromRoot(`./packages/${name}/src/index.ts`),
  })),
  { find: /^@truss\/test-utils$/, replacement: fromRoot("./tools/test-utils/src/index.ts") },
];

export default defineConfig({
  resolve: { alias },
  test: {
    // Each package is its own project (vitest 4 replaced vitest.workspace.ts
    // with `test.projects`).
    projects: [
      ...packages.map((name) => ({
        extends: true as const,
        test: { name, include: [`packages/${name}/test/**/*.test.ts`] },
      })),
      {
        extends: true as const,
        test: { name: "examples", include: ["examples/*/test/**/*.test.ts"] },
      },
      {
        extends: true as const,
        test: {
          name: "chaos",
          include: ["tests/chaos/**/*.test.ts"],
          // Each case bounds its own run time; these are the outer limits for a slow CI machine.
          testTimeout: 90_000,
          hookTimeout: 60_000,
        },
      },
    ],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    reporters: process.env.CI ? ["default"] : ["default"],
  },
});
