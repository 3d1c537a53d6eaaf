/**
 * Every relative link in the README, the package and example READMEs and the
 * guides points at a file that exists, and a `#anchor` at a heading of that
 * file (as GitHub names it). No network: `http(s):` and `mailto:` links are
 * not fetched.
 */
import { existsSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, expect, test } from "vitest";
import { anchors, linkedMarkdown, links, rel, ROOT } from "./markdown.js";

const files = linkedMarkdown();

describe.each(files.map((file) => [rel(file), file] as const))("%s", (_name, file) => {
  test("relative links point at existing files and headings", () => {
    const broken: string[] = [];
    for (const link of links(file)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(link.target)) continue; // https:, mailto:, …
      const [path = "", anchor] = link.target.split("#", 2);
      const target = path === "" ? file : path.startsWith("/") ? join(ROOT, path) : resolve(dirname(file), decodeURIComponent(path));
      const where = `${rel(file)}:${link.line} → ${link.target}`;
      if (!target.startsWith(ROOT)) broken.push(`${where}: leaves the repository`);
      else if (!existsSync(target)) broken.push(`${where}: no such file`);
      else if (anchor !== undefined && anchor !== "") {
        if (statSync(target).isDirectory() || !target.endsWith(".md")) broken.push(`${where}: an anchor into a file that is not Markdown`);
        else if (!anchors(target).has(decodeURIComponent(anchor))) broken.push(`${where}: no heading #${anchor} in ${rel(target)}`);
      }
    }
    expect(broken).toEqual([]);
  });
});

test("the checker sees the links it should", () => {
  // A guard against a parser that silently finds nothing.
  const all = files.flatMap((file) => links(file));
  expect(all.length).toBeGreaterThan(50);
  expect(all.some((link) => link.target === "docs/security.md")).toBe(true);
});
