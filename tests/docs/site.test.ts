/**
 * The built docs site (`pnpm run docs` → docs/api; CI builds it before the
 * tests): every guide is a page, and every relative link and image on the
 * front page and the guide pages resolves to a file of the site (and an
 * `#anchor` to an id on that page). Without a built site this file skips,
 * loudly, unless CI is set.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, expect, test } from "vitest";
import { guides, rel, ROOT } from "./markdown.js";

const SITE = join(ROOT, "docs/api");
const built = existsSync(join(SITE, "index.html"));
if (!built && process.env.CI) throw new Error("docs/api is missing: CI runs `pnpm run docs` before the tests.");
if (!built) console.warn("!!! tests/docs/site.test.ts did NOT run: no docs/api; run `pnpm run docs` first.");

const pages = built ? [join(SITE, "index.html"), ...readdirSync(join(SITE, "documents")).map((name) => join(SITE, "documents", name))] : [];

describe.runIf(built)("the built site", () => {
  test("every guide is a page", () => {
    const texts = pages.map((page) => readFileSync(page, "utf8"));
    const missing = guides().filter((guide) => {
      const title = /^#\s+(.+)$/m.exec(readFileSync(guide, "utf8"))?.[1]?.replace(/`/g, "").split(":")[0]!.trim() ?? rel(guide);
      return !texts.some((text) => text.includes(`<title>${title.replace(/&/g, "&amp;")} | `));
    });
    expect(missing.map(rel)).toEqual([]);
  });

  test.each(pages.map((page) => [rel(page), page] as const))("%s: relative links and images resolve", (_name, page) => {
    const html = readFileSync(page, "utf8");
    const broken: string[] = [];
    for (const match of html.matchAll(/\s(?:href|src)="([^"]+)"/g)) {
      const target = match[1]!.replace(/&amp;/g, "&");
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("//")) continue;
      const [path = "", anchor] = target.split("#", 2);
      const file = path === "" ? page : resolve(dirname(page), decodeURIComponent(path));
      if (!existsSync(file)) broken.push(`${target}: no such file`);
      else if (anchor && file.endsWith(".html") && !readFileSync(file, "utf8").includes(`id="${anchor}"`)) broken.push(`${target}: no id "${anchor}"`);
    }
    expect(broken).toEqual([]);
  });
});
