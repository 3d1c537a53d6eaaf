import { existsSync, readFileSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { browserBundle, SERVER_PACKAGES } from "@truss/test-utils";
import { expect, test } from "vitest";

const clientDir = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Every package @truss/client installs for its users, following production dependencies as Node resolves them. */
function installedTree(): Set<string> {
  const seen = new Set<string>();
  const visit = (packageDir: string) => {
    const manifest = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
    for (const name of Object.keys(manifest.dependencies ?? {})) {
      if (seen.has(name)) continue;
      seen.add(name);
      visit(installedDir(packageDir, name));
    }
  };
  visit(clientDir);
  return seen;
}

/** Where `name` is installed for the package at `from`: the nearest node_modules up the tree, as Node looks. */
function installedDir(from: string, name: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return realpathSync(candidate);
    if (dir === dirname(dir)) throw new Error(`${name} is not installed for ${from}`);
  }
}

test("installing @truss/client brings no server package", () => {
  const tree = installedTree();
  expect(tree).toContain("@truss/protocol");
  expect(tree).toContain("socket.io-client");
  for (const name of SERVER_PACKAGES) expect(tree.has(name), `${name} is in @truss/client's dependency tree`).toBe(false);
});

test("a browser bundle of @truss/client contains no server code", async () => {
  const { inputs, serverInputs, code } = await browserBundle("@truss/client");
  expect(inputs.some((input) => input.includes("socket.io-client"))).toBe(true);
  expect(serverInputs).toEqual([]);
  expect(code).not.toMatch(/jsonwebtoken|createRealtimeEngine|maxHttpBufferSize/);
});
