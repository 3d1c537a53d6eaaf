import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const packages = ["protocol", "core", "conformance", "redis", "postgres", "fastify", "express", "nestjs", "client"] as const;

const fromRoot = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/**
 * Tests import every `@truss/*` package from its TypeScript source, so the
 * suite runs without a build and a stack trace points at the real line.
 */
const alias = [
  { find: "@truss/core/http", replacement: fromRoot("./packages/core/src/http.ts") },
  ...packages.map((name) => ({
    find: new RegExp(`^@truss/${name}$`),
    replacement: fromRoot(`./packages/${name}/src/index.ts`),
  })),
  { find: /^@truss\/react$/, replacement: fromRoot("./packages/react/src/index.ts") },
  { find: /^@truss\/test-utils$/, replacement: fromRoot("./tools/test-utils/src/index.ts") },
];

/**
 * An adapter's own test suite, run again against another major of its
 * framework. The workspace package `tests/frameworks/<name>` depends on that
 * major, and every bare import of the framework, in the tests and in the
 * adapter's source alike, resolves to the fixture's copy; the fixture's own
 * tests check that it did.
 */
function otherMajor(
  name: string,
  adapter: (typeof packages)[number],
  frameworks: readonly string[],
  options: { fixture?: string; provide?: Record<string, unknown> } = {},
) {
  const fixture = `tests/frameworks/${options.fixture ?? name}`;
  return {
    extends: true as const,
    resolve: {
      alias: frameworks.map((framework) => ({
        find: new RegExp(`^${framework.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}$`),
        replacement: fromRoot(`./${fixture}/node_modules/${framework}`),
      })),
    },
    test: { name, include: [`packages/${adapter}/test/**/*.test.ts`, `${fixture}/*.test.ts`], provide: options.provide ?? {} },
  };
}

/** Every Nest package the adapter or its tests load: one major at a time, since they peer-depend on each other. */
const nestPackages = ["@nestjs/common", "@nestjs/core", "@nestjs/websockets", "@nestjs/platform-socket.io", "@nestjs/platform-express", "@nestjs/platform-fastify"];

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
      otherMajor("express4", "express", ["express"]),
      otherMajor("fastify4", "fastify", ["fastify"]),
      {
        extends: true as const,
        test: { name: "nestjs-fastify", include: ["packages/nestjs/test/**/*.test.ts"], provide: { nestPlatform: "fastify" } },
      },
      otherMajor("nestjs12", "nestjs", nestPackages),
      otherMajor("nestjs12-fastify", "nestjs", nestPackages, { fixture: "nestjs12", provide: { nestPlatform: "fastify" } }),
      {
        extends: true as const,
        // React Testing Library on jsdom, against a real server.
        test: { name: "react", include: ["packages/react/test/**/*.test.{ts,tsx}"], environment: "jsdom" },
      },
      {
        extends: true as const,
        // The same suite against React 18: react, react-dom (and their subpaths) and Testing Library from the fixture.
        resolve: {
          alias: [{ find: /^(react|react-dom|@testing-library\/react)(\/.*)?$/, replacement: fromRoot("./tests/frameworks/react18/node_modules/$1$2") }],
        },
        test: { name: "react18", include: ["packages/react/test/**/*.test.{ts,tsx}", "tests/frameworks/react18/*.test.ts"], environment: "jsdom" },
      },
      {
        extends: true as const,
        test: { name: "examples", include: ["examples/*/test/**/*.test.ts"] },
      },
      {
        extends: true as const,
        // The guides and READMEs: links resolve, code blocks compile, the built site links (tests/docs).
        test: { name: "docs", include: ["tests/docs/**/*.test.ts"], testTimeout: 120_000 },
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
      {
        extends: true as const,
        test: {
          name: "packaging",
          include: ["tests/packaging/**/*.test.ts"],
          // Packs and installs with npm, then spawns node and tsc: bounded per step in the file.
          // Runs after every other project (a higher group), so its npm install and tsc
          // compete with no timing-sensitive test for the CPU.
          sequence: { groupOrder: 1 },
          testTimeout: 200_000,
          hookTimeout: 420_000,
        },
      },
    ],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    reporters: process.env.CI ? ["default"] : ["default"],
  },
});
