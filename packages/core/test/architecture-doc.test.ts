import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
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

test("docs/architecture.md names every engine file, and only files that exist", () => {
  const files = readdirSync(join(root, "packages/core/src/engine")).filter((name) => name.endsWith(".ts"));
  const inPage = named(/`engine\/([a-z-]+\.ts)`/g);
  expect([...inPage].sort()).toEqual([...files].sort());
});
