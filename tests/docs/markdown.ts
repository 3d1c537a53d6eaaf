/**
 * Just enough Markdown reading for the docs tests: fenced code blocks (with
 * the HTML comment that may annotate one), headings as GitHub names their
 * anchors, and the targets of inline links.
 */
import { readdirSync, readFileSync, existsSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** The guides: every `docs/*.md` (the site's pages beside the README). */
export function guides(): string[] {
  return readdirSync(join(ROOT, "docs"))
    .filter((name) => name.endsWith(".md"))
    .sort()
    .map((name) => join(ROOT, "docs", name));
}

/** The root README, each package's and example's README, and the guides. */
export function linkedMarkdown(): string[] {
  const readmes = ["packages", "examples"].flatMap((dir) =>
    readdirSync(join(ROOT, dir))
      .map((name) => join(ROOT, dir, name, "README.md"))
      .filter((path) => existsSync(path)),
  );
  return [join(ROOT, "README.md"), ...readmes.sort(), ...guides()];
}

export const rel = (path: string) => relative(ROOT, path);

export interface CodeBlock {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  code: string;
  /**
   * The HTML comment right above the fence, if it starts with `snippet:`:
   * `<!-- snippet: context ... -->` supplies declarations the block needs
   * (typed against, not shown); `<!-- snippet: skip <why> -->` skips it.
   */
  directive?: { kind: "context" | "skip"; body: string };
}

const FENCE = /^( {0,3})(`{3,}|~{3,})\s*([^\s`]*)[^`]*$/;

/** Each line with whether it lies inside a fenced block (fences included). */
function scan(text: string): { lines: string[]; inCode: boolean[] } {
  const lines = text.split("\n");
  const inCode: boolean[] = [];
  let fence: string | undefined;
  for (const line of lines) {
    const match = FENCE.exec(line);
    if (fence === undefined && match) {
      fence = match[2]!;
      inCode.push(true);
    } else if (fence !== undefined) {
      if (line.trim().startsWith(fence[0]!.repeat(fence.length)) && line.trim().replace(/[`~]/g, "") === "") fence = undefined;
      inCode.push(true);
    } else inCode.push(false);
  }
  return { lines, inCode };
}

export function codeBlocks(file: string): CodeBlock[] {
  const text = readFileSync(file, "utf8");
  const lines = text.split("\n");
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) continue;
    const fence = open[2]!;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !(lines[i]!.trim().startsWith(fence) && lines[i]!.trim().replace(/[`~]/g, "") === ""); i++) body.push(lines[i]!);
    const block: CodeBlock = { file, line: start + 1, lang: open[3]!.toLowerCase(), code: body.join("\n") };
    const directive = commentAbove(lines, start);
    if (directive) block.directive = directive;
    blocks.push(block);
  }
  return blocks;
}

/** `<!-- snippet: kind body -->` ending on the line above `index` (blank lines between are allowed). */
function commentAbove(lines: string[], index: number): CodeBlock["directive"] {
  let end = index - 1;
  while (end >= 0 && lines[end]!.trim() === "") end--;
  if (end < 0 || !lines[end]!.trim().endsWith("-->")) return undefined;
  let begin = end;
  while (begin >= 0 && !lines[begin]!.includes("<!--")) begin--;
  if (begin < 0) return undefined;
  const comment = lines.slice(begin, end + 1).join("\n");
  const match = /<!--\s*snippet:\s*(context|skip)\b([\s\S]*?)-->\s*$/.exec(comment);
  return match ? { kind: match[1] as "context" | "skip", body: match[2]!.replace(/^[ \t]*\n/, "") } : undefined;
}

/** GitHub's anchor for a heading's text. */
export function slug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1") // [text](url) -> text
    .replace(/<[^>]+>/g, "")
    .replace(/[`*]/g, "")
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

/** The anchors a file has: its headings' slugs (numbered when repeated) and explicit `id`/`name` attributes. */
export function anchors(file: string): Set<string> {
  const { lines, inCode } = scan(readFileSync(file, "utf8"));
  const seen = new Map<string, number>();
  const result = new Set<string>();
  lines.forEach((line, index) => {
    if (inCode[index]) return;
    const heading = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) {
      const base = slug(heading[1]!);
      const count = seen.get(base) ?? 0;
      seen.set(base, count + 1);
      result.add(count === 0 ? base : `${base}-${count}`);
    }
    for (const attribute of line.matchAll(/<a\s[^>]*\b(?:id|name)="([^"]+)"/g)) result.add(attribute[1]!);
  });
  return result;
}

export interface Link {
  file: string;
  line: number;
  target: string;
}

/** Inline links and images outside code (`[text](target)`, `![alt](target)`), and `<img src>`/`<a href>`. */
export function links(file: string): Link[] {
  const { lines, inCode } = scan(readFileSync(file, "utf8"));
  const found: Link[] = [];
  lines.forEach((line, index) => {
    if (inCode[index]) return;
    const prose = line.replace(/`+[^`]*`+/g, (span) => " ".repeat(span.length)); // not inside code spans
    for (const match of prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) found.push({ file, line: index + 1, target: match[1]! });
    for (const match of prose.matchAll(/<(?:img|a)\s[^>]*\b(?:src|href)="([^"]+)"/g)) found.push({ file, line: index + 1, target: match[1]! });
  });
  return found;
}
