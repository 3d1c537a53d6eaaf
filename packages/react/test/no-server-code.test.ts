// @vitest-environment node
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { expect, test } from "vitest";

const reactDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const packagesDir = join(reactDir, "..");
/** Packages of the server side: none may reach a browser app through @truss/react. */
const SERVER_PACKAGES = ["@truss/core", "socket.io", "engine.io", "socket.io-adapter", "jsonwebtoken", "ioredis"];

/** Every package @truss/react installs for its users, following production dependencies (and peers) as Node resolves them. */
function installedTree(): Set<string> {
  const seen = new Set<string>();
  const visit = (packageDir: string, withPeers: boolean) => {
    const manifest = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")) as {
      dependencies?: Record<string, string>;
      peerDependencies?: Record<string, string>;
    };
    for (const name of Object.keys({ ...manifest.dependencies, ...(withPeers ? manifest.peerDependencies : {}) })) {
      if (seen.has(name) || name.startsWith("@types/")) continue;
      seen.add(name);
      visit(installedDir(packageDir, name), false);
    }
  };
  visit(reactDir, true);
  return seen;
}

function installedDir(from: string, name: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return realpathSync(candidate);
    if (dir === dirname(dir)) throw new Error(`${name} is not installed for ${from}`);
  }
}

test("installing @truss/react brings @truss/client and React, and no server package", () => {
  const tree = installedTree();
  expect(tree).toContain("@truss/client");
  expect(tree).toContain("react");
  for (const name of SERVER_PACKAGES) expect(tree.has(name), `${name} is in @truss/react's dependency tree`).toBe(false);
});

test("a browser bundle of @truss/react contains no server code", async () => {
  const result = await build({
    stdin: { contents: 'export * from "@truss/react";', resolveDir: reactDir, loader: "ts" },
    bundle: true,
    platform: "browser",
    format: "esm",
    write: false,
    metafile: true,
    logLevel: "silent",
    // The workspace resolves @truss/* to sources, as an app's bundler resolves the published builds.
    alias: {
      "@truss/react": join(reactDir, "src/index.ts"),
      "@truss/client": join(packagesDir, "client/src/index.ts"),
      "@truss/protocol": join(packagesDir, "protocol/src/index.ts"),
    },
  });
  const inputs = Object.keys(result.metafile.inputs);
  expect(inputs.some((input) => input.includes("socket.io-client"))).toBe(true);
  expect(inputs.some((input) => input.includes("node_modules/react/"))).toBe(true);
  const server = inputs.filter((input) => SERVER_PACKAGES.some((name) => input.includes(`node_modules/${name}/`)) || input.includes("packages/core/"));
  expect(server).toEqual([]);
  expect(result.outputFiles[0]!.text).not.toMatch(/jsonwebtoken|createRealtimeEngine|maxHttpBufferSize/);
});
