/**
 * Every code block in the guides (`docs/*.md`), the root README and each
 * package's and example's README works when pasted:
 *
 * - `ts`/`typescript` blocks type-check, each as its own module, against the
 *   workspace packages' sources (the `paths` of `tsconfig.base.json`), with
 *   the compiler options the packages use;
 * - `json` blocks parse;
 * - `sh` blocks name only scripts and files that exist: `pnpm <script>`
 *   (with `--filter`, the filtered package's script) and `node <file>`.
 *
 * A block that needs names it does not define gets them from an HTML comment
 * right above it, which readers of the rendered page do not see:
 *
 *     <!-- snippet: context
 *     declare const token: string;
 *     -->
 *
 * A `// module <path>` line in the comment starts a file the block imports
 * (by that path, relative to the Markdown file), such as the app's own event
 * catalog; everything after it, up to the next such line, is that file:
 *
 *     <!-- snippet: context
 *     // module ./catalog.ts
 *     export const events = defineEvents({ server: {}, client: {} });
 *     -->
 *
 * `<!-- snippet: skip <why> -->` skips a block. Blocks that are not code
 * (output, diagrams) are tagged `text` or `mermaid` and not checked.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import ts from "typescript";
import { describe, expect, test } from "vitest";
import { codeBlocks, linkedMarkdown, rel, ROOT, type CodeBlock } from "./markdown.js";

const documents = linkedMarkdown();
const blocks = documents.flatMap((file) => codeBlocks(file));
const TS = new Set(["ts", "typescript", "tsx"]);
const SHELL = new Set(["sh", "bash", "shell", "console"]);
const NOT_CODE = new Set(["text", "mermaid", "txt", "diff"]);

test("every block says what it is", () => {
  const known = new Set([...TS, ...SHELL, ...NOT_CODE, "json", "js", "javascript"]);
  const unlabelled = blocks.filter((block) => !known.has(block.lang)).map((block) => `${rel(block.file)}:${block.line} \`\`\`${block.lang}`);
  expect(unlabelled, "tag a block ts, sh, json, or text for output that is not code").toEqual([]);
});

// ---------------------------------------------------------------- TypeScript

interface Snippet {
  block: CodeBlock;
  fileName: string;
  /** Lines added above the block (its context), to map diagnostics back to the Markdown. */
  offset: number;
}

/** Type-checks every TypeScript block in one program (the packages' sources are parsed once). */
function typecheck(): Map<Snippet, string[]> {
  const config = ts.readConfigFile(join(ROOT, "tsconfig.base.json"), ts.sys.readFile);
  const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT);
  // Legacy decorators, as every NestJS app's tsconfig turns them on (no other snippet uses decorators); `tsx` blocks use React's JSX runtime.
  Object.assign(options, { noEmit: true, declaration: false, sourceMap: false, allowImportingTsExtensions: true, experimentalDecorators: true, jsx: ts.JsxEmit.ReactJSX });

  const snippets: Snippet[] = [];
  const sources = new Map<string, string>();
  for (const block of blocks) {
    if (!TS.has(block.lang) || block.directive?.kind === "skip") continue;
    const [declarations = "", ...modules] = block.directive?.kind === "context" ? block.directive.body.split(/^\/\/ module (\S+)\n/m) : [];
    for (let index = 0; index < modules.length; index += 2) {
      const path = resolve(dirname(block.file), modules[index]!);
      const source = `${modules[index + 1]!.trimEnd()}\n`;
      if (sources.has(path) && sources.get(path) !== source) throw new Error(`${rel(block.file)}:${block.line}: ${rel(path)} is given twice, with different text`);
      sources.set(path, source);
    }
    const context = declarations.trim() === "" ? "" : `${declarations.trimEnd()}\n`;
    // Beside the Markdown file, so relative imports in a snippet resolve as a reader would expect.
    const fileName = join(dirname(block.file), `.snippet-${rel(block.file).replace(/[/.]/g, "_")}-${block.line}.${block.lang === "tsx" ? "tsx" : "ts"}`);
    sources.set(fileName, `${context}${block.code}\nexport {};\n`);
    snippets.push({ block, fileName, offset: context === "" ? 0 : context.split("\n").length - 1 });
  }

  // A bare import resolves from the snippet's folder first, then from each
  // workspace package: `fastify` lives in packages/fastify's node_modules,
  // `socket.io` in packages/core's, as they would in the reader's own app.
  const fallbacks = ["packages", "examples"].flatMap((dir) =>
    readdirSync(join(ROOT, dir))
      .filter((name) => existsSync(join(ROOT, dir, name, "package.json")))
      .map((name) => join(ROOT, dir, name, "index.ts")),
  );
  const host = ts.createCompilerHost(options, true);
  const readFile = host.readFile.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  host.fileExists = (name) => sources.has(name) || ts.sys.fileExists(name);
  const folders = new Set([...sources.keys()].map((name) => dirname(name)));
  host.directoryExists = (name) => folders.has(name) || ts.sys.directoryExists(name);
  host.readFile = (name) => sources.get(name) ?? readFile(name);
  host.getSourceFile = (name, language, onError, create) => {
    const source = sources.get(name);
    return source === undefined ? getSourceFile(name, language, onError, create) : ts.createSourceFile(name, source, language, true);
  };
  const cache = ts.createModuleResolutionCache(ROOT, (name) => name, options);
  host.resolveModuleNameLiterals = (literals, containingFile, redirect, compilerOptions, containingSource) =>
    literals.map((literal) => {
      const name = literal.text;
      const mode = ts.getModeForUsageLocation(containingSource, literal, compilerOptions);
      const first = ts.resolveModuleName(name, containingFile, compilerOptions, host, cache, redirect, mode);
      if (first.resolvedModule || !sources.has(containingFile) || name.startsWith(".")) return first;
      for (const from of fallbacks) {
        const next = ts.resolveModuleName(name, from, compilerOptions, host, cache, redirect, mode);
        if (next.resolvedModule) return next;
      }
      return first;
    });

  const program = ts.createProgram({ rootNames: [...sources.keys()], options, host });
  const results = new Map<Snippet, string[]>();
  for (const snippet of snippets) {
    const source = program.getSourceFile(snippet.fileName)!;
    const diagnostics = [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)];
    results.set(
      snippet,
      diagnostics.map((diagnostic) => {
        const { line } = diagnostic.file && diagnostic.start !== undefined ? diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start) : { line: -1 };
        const where = line - snippet.offset >= 0 ? `${rel(snippet.block.file)}:${snippet.block.line + 1 + line - snippet.offset}` : `${rel(snippet.block.file)}:${snippet.block.line} (context)`;
        return `${where}: TS${diagnostic.code} ${ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n")}`;
      }),
    );
  }
  return results;
}

describe("TypeScript blocks type-check", () => {
  let results: Map<Snippet, string[]> | undefined;
  const check = () => (results ??= typecheck());
  const tsBlocks = blocks.filter((block) => TS.has(block.lang) && block.directive?.kind !== "skip");

  test("there are blocks to check", () => {
    expect(tsBlocks.length).toBeGreaterThan(5);
  });

  test.each(tsBlocks.map((block) => [`${rel(block.file)}:${block.line}`, block] as const))("%s", (_name, block) => {
    const snippet = [...check().keys()].find((candidate) => candidate.block === block)!;
    expect(check().get(snippet)).toEqual([]);
  });
});

// ---------------------------------------------------------------- JSON

const jsonBlocks = blocks.filter((block) => block.lang === "json");
describe.runIf(jsonBlocks.length > 0)("JSON blocks parse", () => {
  test.each(jsonBlocks.map((block) => [`${rel(block.file)}:${block.line}`, block] as const))("%s", (_name, block) => {
    expect(() => JSON.parse(block.code)).not.toThrow();
  });
});

// ---------------------------------------------------------------- shell

/** pnpm's own commands, which are not package scripts. */
const PNPM_COMMANDS = new Set(["add", "install", "i", "remove", "rm", "update", "up", "exec", "dlx", "create", "run", "publish", "pack", "link", "unlink", "why", "list", "ls", "outdated", "store", "env", "setup", "init", "config", "audit", "licenses", "patch", "rebuild", "prune", "fetch", "deploy", "root", "bin", "import", "-r", "--recursive"]);

const packageJson = (dir: string) => JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: string; scripts?: Record<string, string> };

/** Workspace folders by path (`./examples/construction-erp`) and by package name. */
const workspace = new Map<string, string>();
for (const dir of ["packages", "examples", "tools", "bench"]) {
  const candidates = existsSync(join(ROOT, dir, "package.json")) ? [join(ROOT, dir)] : existsSync(join(ROOT, dir)) ? readdirSync(join(ROOT, dir)).map((name) => join(ROOT, dir, name)) : [];
  for (const path of candidates) {
    if (!existsSync(join(path, "package.json"))) continue;
    workspace.set(`./${rel(path)}`, path);
    const { name } = packageJson(path);
    if (name) workspace.set(name, path);
  }
}

/** What a shell block names that must exist, as messages for what does not. */
function checkShell(block: CodeBlock): string[] {
  const problems: string[] = [];
  const lines = block.code.split("\n");
  lines.forEach((raw, index) => {
    const where = `${rel(block.file)}:${block.line + 1 + index}`;
    const line = raw.replace(/^\s*\$\s+/, "").replace(/(^|\s)#.*$/, "");
    for (const command of line.split(/&&|\|\||;|\|/)) {
      const words = command.trim().split(/\s+/).filter((word) => !/^[A-Z_][A-Z0-9_]*=/.test(word)); // drop VAR=value
      const tool = words[0];
      if (tool === "npx" && /^pnpm(@|$)/.test(words[1] ?? "")) words.shift();
      if (/^pnpm(@|$)/.test(words[0] ?? "")) {
        let dir = ROOT;
        const rest = words.slice(1);
        while (rest[0]?.startsWith("-")) {
          const flag = rest.shift()!;
          if (flag === "--filter" || flag === "-F" || flag === "-C" || flag === "--dir") {
            const value = rest.shift() ?? "";
            const target = workspace.get(value.replace(/^["']|["']$/g, ""));
            if (!target) problems.push(`${where}: pnpm ${flag} ${value} names no workspace package`);
            else dir = target;
          }
        }
        if (rest[0] === "run") rest.shift();
        const script = rest[0];
        if (!script || PNPM_COMMANDS.has(script)) continue;
        if (!packageJson(dir).scripts?.[script]) problems.push(`${where}: \`pnpm ${script}\` is not a script of ${rel(join(dir, "package.json")) || "package.json"}`);
      } else if (tool === "node") {
        const file = words.slice(1).find((word) => !word.startsWith("-"));
        if (file && /\.[cm]?[jt]s$/.test(file) && !existsSync(join(ROOT, file))) problems.push(`${where}: node ${file}: no such file`);
      }
    }
  });
  return problems;
}

const shellBlocks = blocks.filter((block) => SHELL.has(block.lang));
describe("shell blocks name scripts and files that exist", () => {
  test.each(shellBlocks.map((block) => [`${rel(block.file)}:${block.line}`, block] as const))("%s", (_name, block) => {
    expect(checkShell(block)).toEqual([]);
  });

  test("the checker catches a missing script", () => {
    expect(checkShell({ file: join(ROOT, "README.md"), line: 1, lang: "sh", code: "pnpm no-such-script\npnpm run docs" })).toHaveLength(1);
  });
});

/**
 * Inbox ids are unique per user only, and a user id may be the same in two
 * companies: a dedup store kept across reloads under a key without the
 * company would drop (and acknowledge) the second company's messages.
 */
test("every stored dedup key in the guides and examples names the company", () => {
  const examples = ["examples/site-app/src", "examples/construction-erp/web"].flatMap((dir) =>
    readdirSync(join(ROOT, dir), { recursive: true, encoding: "utf8" })
      .filter((name) => /\.tsx?$/.test(name))
      .map((name) => ({ where: `${dir}/${name}`, code: readFileSync(join(ROOT, dir, name), "utf8") })),
  );
  const sources = [...blocks.map((block) => ({ where: `${rel(block.file)}:${block.line}`, code: block.code })), ...examples];
  const keys = sources.flatMap(({ where, code }) => [...code.matchAll(/localStorageDedupStore\(\s*(`[^`]*`|"[^"]*"|'[^']*')/g)].map((match) => ({ where, key: match[1]! })));
  expect(keys.length).toBeGreaterThanOrEqual(3);
  expect(keys.filter(({ key }) => !/company/i.test(key))).toEqual([]);
});

/**
 * Inbox ids are numbered per user (`<ms>-<seq>`), so messages to two users,
 * or to one user id in two companies, share ids: an `undelivered` handler
 * that sends once by `message.id` alone drops the second user's
 * notification.
 */
test("every undelivered handler in the guides keys message.id with the company and the user", () => {
  const handlers = blocks.filter((block) => TS.has(block.lang) && /\bundelivered\b/.test(block.code) && /\bhandler\b/.test(block.code));
  const uses = handlers.flatMap((block) =>
    block.code
      .split("\n")
      .map((line, index) => ({ where: `${rel(block.file)}:${block.line + 1 + index}`, code: line.replace(/\/\/.*$/, "") }))
      .filter(({ code }) => /\bmessage\.id\b/.test(code)),
  );
  expect(uses.length).toBeGreaterThanOrEqual(2);
  // Each use is a key's last part, after the company and the user: `[companyId, userId, message.id]`.
  const alone = (code: string) => code.match(/\bmessage\.id\b/g)!.length > (code.match(/\bcompanyId,\s*userId,\s*message\.id\b/g)?.length ?? 0);
  expect(uses.filter(({ code }) => alone(code))).toEqual([]);
});
