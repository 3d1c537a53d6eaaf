// @vitest-environment node
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { expect, test } from "vitest";

const reactDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const packagesDir = join(reactDir, "..");
/** Packages of the server side: none may reach a browser app through @truss/react. */
const SERVER_PACKAGES = ["@truss/core", "socket.io", "engine.io", "socket.io-adapter", "jsonwebtoken", "ioredis"];

test("@truss/react depends on @truss/client alone, with React as a peer", () => {
  // What @truss/client installs in turn is checked by its own no-server-code test.
  const manifest = JSON.parse(readFileSync(join(reactDir, "package.json"), "utf8")) as { dependencies?: object; peerDependencies?: object };
  expect(Object.keys(manifest.dependencies ?? {})).toEqual(["@truss/client"]);
  expect(Object.keys(manifest.peerDependencies ?? {}).sort()).toEqual(["@types/react", "react"]);
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
