import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, test } from "vitest";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const page = readFileSync(join(root, "docs/architecture.md"), "utf8");
const named = (pattern: RegExp) => new Set([...page.matchAll(pattern)].map((match) => match[1]!));

test("docs/architecture.md names every package, and only packages that exist", () => {
  const packages = readdirSync(join(root, "packages")).filter((name) => existsSync(join(root, "packages", name, "package.json")));
  const inPage = named(/`packages\/([a-z-]+)`/g);
  expect([...inPage].sort()).toEqual([...packages].sort());
});

test("docs/architecture.md names every source file of @truss/core by its folder, and only files that exist", () => {
  const src = join(root, "packages/core/src");
  const files = readdirSync(src, { recursive: true, encoding: "utf8" })
    .map((name) => name.split(sep).join("/"))
    .filter((name) => name.endsWith(".ts") && name.includes("/"));
  const inPage = named(/`([a-z-]+\/[a-z-]+\.ts)`/g);
  const layers = new Set(files.map((name) => name.split("/")[0]));
  const namedHere = [...inPage].filter((name) => layers.has(name.split("/")[0]!));
  expect(namedHere.sort()).toEqual(files.sort());
});
