/**
 * Installed the way users install it: every publishable package is packed
 * with `pnpm pack`, the tarballs are installed with npm into a fresh project
 * outside the repository, and that project runs the README quick starts (ESM
 * and CommonJS), loads every entry point both ways, and type-checks against
 * the published types under `moduleResolution` node16 and bundler.
 *
 * Needs built packages (`pnpm build`; CI builds before it tests) and the npm
 * registry. See README.md in this directory.
 */
import { execFile } from "node:child_process";
import { builtinModules } from "node:module";
import { copyFile, lstat, mkdir, mkdtemp, readdir, readFile, realpath, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const fixtures = fileURLToPath(new URL("./fixtures/", import.meta.url));

/** What the quick starts and the typecheck need besides the tarballs, as a user would add them. */
const EXTRA_PACKAGES = [
  "fastify@^5", // @truss/fastify's peer, used by the Fastify example
  "socket.io-client@^4",
  "jsonwebtoken@^9", // signs the test tokens, as core's README suggests
  "zod@^4", // the schema library of core's "A working server"
  "@types/node@^20", // Node 20 is the engines floor
  "@types/express@^5", // what a TypeScript Express user installs with express (Express ships no types)
  "@types/react@^19", // @truss/react's types import React's (React ships none); npm installs react itself as its peer
  // @truss/nestjs's peers, pinned to the first major it supports: left to npm they would be the
  // newest (Nest 12 is ESM-only, which a CommonJS file under node16 cannot import at all).
  "@nestjs/common@^11",
  "@nestjs/core@^11",
  "@nestjs/websockets@^11",
  "@nestjs/platform-socket.io@^11",
];
const INSTALL_TIMEOUT_MS = 240_000;
const RUN_TIMEOUT_MS = 60_000;
const TSC_TIMEOUT_MS = 180_000;

interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  main?: string;
  module?: string;
  types?: string;
  exports?: Record<string, unknown>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

interface Packed {
  dir: string;
  manifest: Manifest;
  tarball: string;
  /** Paths inside the tarball, without the leading `package/`. */
  files: string[];
  /** The packed package.json. */
  packed: Manifest;
  /** Where the tarball was extracted (its `package/` directory). */
  extracted: string;
}

const started = Date.now();
function progress(message: string): void {
  console.log(`[packaging ${((Date.now() - started) / 1000).toFixed(1)}s] ${message}`);
}
async function timed<T>(label: string, work: () => Promise<T>): Promise<T> {
  const from = Date.now();
  progress(`${label}…`);
  const value = await work();
  progress(`${label}: done in ${((Date.now() - from) / 1000).toFixed(1)}s`);
  return value;
}

/**
 * The environment for npm and node in the temp project: without the
 * `npm_config_*`/`npm_package_*` variables a `pnpm test` run exports (they
 * would configure npm as pnpm is configured for the workspace), keeping the
 * registry, cache and proxy settings.
 */
function cleanEnv(): NodeJS.ProcessEnv {
  const keep = /^npm_config_(registry|cache|userconfig|.*proxy|strict_ssl|cafile)$/i;
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(npm_|pnpm_)/i.test(key) && !keep.test(key)) continue;
    if (key === "NODE_OPTIONS" || key === "NODE_PATH") continue;
    env[key] = value;
  }
  return env;
}

interface RunResult {
  stdout: string;
  stderr: string;
}
function run(command: string, args: string[], options: { cwd: string; timeoutMs: number; env?: NodeJS.ProcessEnv }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { cwd: options.cwd, timeout: options.timeoutMs, killSignal: "SIGKILL", maxBuffer: 64 * 1024 * 1024, env: options.env ?? cleanEnv() },
      (error, stdout, stderr) => {
        if (!error) return resolve({ stdout, stderr });
        const why = error.killed ? `killed after ${options.timeoutMs} ms` : `exit code ${String(error.code)}`;
        const tail = (text: string) => text.split("\n").slice(-60).join("\n");
        reject(new Error(`${command} ${args.join(" ")} (in ${options.cwd}): ${why}\n--- stdout\n${tail(stdout)}\n--- stderr\n${tail(stderr)}`));
      },
    );
  });
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Every file path named in a manifest's `main`/`module`/`types`/`exports`, normalized without `./`. */
function entryFiles(manifest: Manifest): string[] {
  const found = new Set<string>();
  const visit = (value: unknown): void => {
    if (typeof value === "string") found.add(value.replace(/^\.\//, ""));
    else if (value && typeof value === "object") Object.values(value).forEach(visit);
  };
  visit([manifest.main, manifest.module, manifest.types, manifest.exports]);
  return [...found];
}

/** `@truss/core`, `@truss/core/http`… for every export of the manifest but `./package.json`. */
function specifiers(manifest: Manifest): string[] {
  return Object.keys(manifest.exports ?? { ".": null })
    .filter((key) => key !== "./package.json")
    .map((key) => (key === "." ? manifest.name : `${manifest.name}/${key.replace(/^\.\//, "")}`));
}

/** The package a bare specifier names: `@scope/name` or `name`. */
function packageOf(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
}

const builtins = new Set(builtinModules);
const isBuiltin = (specifier: string) => specifier.startsWith("node:") || builtins.has(packageOf(specifier));

/** Bare specifiers a built JS file imports or requires. */
function bareImports(source: string): string[] {
  const found = new Set<string>();
  for (const match of source.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)["']([^"'./][^"']*)["']/gm)) found.add(match[1]!);
  return [...found];
}

const DEPENDENCY_FIELDS = ["dependencies", "peerDependencies", "optionalDependencies", "devDependencies"] as const;

let work = "";
let project = "";
let packages: Packed[] = [];

beforeAll(async () => {
  const dirs = (await readdir(join(repoRoot, "packages"))).map((name) => join(repoRoot, "packages", name));
  const manifests: { dir: string; manifest: Manifest }[] = [];
  for (const dir of dirs) {
    if (!(await exists(join(dir, "package.json")))) continue;
    const manifest = JSON.parse(await readFile(join(dir, "package.json"), "utf8")) as Manifest;
    if (manifest.private) continue;
    const missing = [];
    for (const file of entryFiles(manifest)) if (!(await exists(join(dir, file)))) missing.push(file);
    if (missing.length > 0) throw new Error(`${manifest.name} is not built (missing ${missing.join(", ")}): run \`pnpm build\` first.`);
    manifests.push({ dir, manifest });
  }
  expect(manifests.length).toBeGreaterThan(0);
  progress(`publishable packages: ${manifests.map(({ manifest }) => `${manifest.name}@${manifest.version}`).join(", ")}`);

  work = await realpath(await mkdtemp(join(tmpdir(), "truss-packaging-")));
  if (!relative(await realpath(repoRoot), work).startsWith("..")) throw new Error(`the temp directory ${work} is inside the repository`);
  const tarballs = join(work, "tarballs");
  project = join(work, "app");
  await mkdir(tarballs);
  await mkdir(project);
  progress(`working in ${work}`);

  await timed("pnpm pack (every package)", () =>
    Promise.all(manifests.map(({ dir }) => run("pnpm", ["pack", "--pack-destination", tarballs], { cwd: dir, timeoutMs: 120_000, env: process.env }))),
  );
  const names = await readdir(tarballs);
  packages = await Promise.all(
    manifests.map(async ({ dir, manifest }) => {
      const file = `${manifest.name.replace(/^@/, "").replace("/", "-")}-${manifest.version}.tgz`;
      if (!names.includes(file)) throw new Error(`pnpm pack made no ${file} for ${manifest.name} (found ${names.join(", ")})`);
      const tarball = join(tarballs, file);
      const extractTo = join(work, "extracted", file.replace(/\.tgz$/, ""));
      await mkdir(extractTo, { recursive: true });
      await run("tar", ["-xzf", tarball, "-C", extractTo], { cwd: work, timeoutMs: 30_000 });
      const { stdout } = await run("tar", ["-tzf", tarball], { cwd: work, timeoutMs: 30_000 });
      const files = stdout.split("\n").filter(Boolean).map((path) => path.replace(/^package\//, ""));
      const extracted = join(extractTo, "package");
      const packed = JSON.parse(await readFile(join(extracted, "package.json"), "utf8")) as Manifest;
      return { dir, manifest, tarball, files, packed, extracted };
    }),
  );

  await timed("npm init", () => run("npm", ["init", "-y"], { cwd: project, timeoutMs: 60_000 }));
  // The TypeScript the repository builds with, so a compiler major does not move under the test.
  const root = JSON.parse(await readFile(join(repoRoot, "package.json"), "utf8")) as Manifest;
  const typescript = `typescript@${root.devDependencies?.typescript ?? "^5"}`;
  const install = [...packages.map(({ tarball }) => tarball), ...EXTRA_PACKAGES, typescript];
  const { stdout } = await timed(`npm install ${packages.length} tarballs + ${[...EXTRA_PACKAGES, typescript].join(" ")}`, () =>
    run("npm", ["install", "--no-audit", "--no-fund", ...install], { cwd: project, timeoutMs: INSTALL_TIMEOUT_MS }),
  );
  progress(stdout.trim().split("\n").at(-1) ?? "");
  for (const file of ["scenario.mjs", "quickstart.mjs", "quickstart.cjs", "load-entries.mjs", "load-entries.cjs"]) await copyFile(join(fixtures, file), join(project, file));
}, INSTALL_TIMEOUT_MS + 180_000);

afterAll(async () => {
  if (!work) return;
  if (process.env.TRUSS_PACKAGING_KEEP) return progress(`kept ${work} (TRUSS_PACKAGING_KEEP is set)`);
  await rm(work, { recursive: true, force: true });
  progress(`removed ${work}`);
});

describe("the tarballs", () => {
  test("name every dependency by a registry range, no workspace: (or link:, file:) range left", () => {
    // That each internal range admits the version packed next to it, npm checks below (npm ls).
    for (const { packed, manifest } of packages) {
      expect(packed.version, packed.name).toBe(manifest.version);
      for (const field of DEPENDENCY_FIELDS) {
        for (const [name, range] of Object.entries(packed[field] ?? {})) {
          expect(range, `${packed.name} ${field}.${name}`).not.toMatch(/^(workspace|link|file|portal|catalog):/);
        }
      }
    }
  });

  test("hold every file their package.json points at, and only dist, README, LICENSE and package.json", () => {
    for (const { packed, files } of packages) {
      const missing = entryFiles(packed).filter((file) => !files.includes(file));
      expect(missing, `${packed.name}: files named in package.json but not packed`).toEqual([]);
      expect(files, packed.name).toEqual(expect.arrayContaining(["package.json", "README.md", "LICENSE"]));
      const stray = files.filter((file) => !/^(dist\/|package\.json$|README\.md$|LICENSE$)/.test(file));
      expect(stray, `${packed.name}: files outside dist/`).toEqual([]);
    }
  });

  test("import at run time only what they declare (dependencies or peers) and Node builtins", async () => {
    for (const { packed, files, extracted } of packages) {
      const declared = new Set([packed.name, ...Object.keys({ ...packed.dependencies, ...packed.peerDependencies, ...packed.optionalDependencies })]);
      const undeclared = new Set<string>();
      for (const file of files.filter((path) => /\.(c|m)?js$/.test(path))) {
        for (const specifier of bareImports(await readFile(join(extracted, file), "utf8"))) {
          if (!isBuiltin(specifier) && !declared.has(packageOf(specifier))) undeclared.add(`${specifier} (${file})`);
        }
      }
      expect([...undeclared], `${packed.name} imports packages it does not declare`).toEqual([]);
    }
  });
});

describe("the installed project", () => {
  test("has real copies of every package, with nothing linked into the repository", async () => {
    const repo = await realpath(repoRoot);
    const links: string[] = [];
    const intoRepo: string[] = [];
    const walk = async (nodeModules: string): Promise<void> => {
      for (const entry of await readdir(nodeModules, { withFileTypes: true })) {
        const path = join(nodeModules, entry.name);
        if (entry.isSymbolicLink()) {
          links.push(path);
          const target = await realpath(path).catch(() => path);
          if (target === repo || target.startsWith(repo.endsWith(sep) ? repo : repo + sep)) intoRepo.push(`${relative(project, path)} -> ${target}`);
        } else if (entry.isDirectory() && entry.name.startsWith("@")) {
          await walk(path);
        } else if (entry.isDirectory()) {
          if (entry.name === ".bin") continue;
          const nested = join(path, "node_modules");
          if (await exists(nested)) await walk(nested);
        }
      }
    };
    await walk(join(project, "node_modules"));
    await walk(join(project, "node_modules", ".bin"));
    expect(intoRepo, "symlinks into the repository").toEqual([]);
    for (const { packed } of packages) {
      const installed = join(project, "node_modules", ...packed.name.split("/"));
      expect((await lstat(installed)).isSymbolicLink(), `${packed.name} is a link`).toBe(false);
      const manifest = JSON.parse(await readFile(join(installed, "package.json"), "utf8")) as Manifest;
      expect(manifest.version, packed.name).toBe(packed.version);
    }
    progress(`node_modules: ${links.length} symlinks (all .bin), none into the repository`);
  });

  test("has every dependency and peer npm asked for (npm ls)", async () => {
    // Exits non-zero on a missing, invalid or extraneous package anywhere in the tree.
    await run("npm", ["ls", "--all"], { cwd: project, timeoutMs: 60_000 });
  });

  test("loads every entry point with import and with require, and both give the same exports", async () => {
    const all = packages.flatMap(({ packed }) => specifiers(packed));
    const load = async (file: string) => JSON.parse((await run("node", [file, ...all], { cwd: project, timeoutMs: RUN_TIMEOUT_MS })).stdout) as Record<string, string[]>;
    const [esm, cjs] = await Promise.all([load("load-entries.mjs"), load("load-entries.cjs")]);
    for (const specifier of all) {
      expect(esm[specifier]?.length, `${specifier} exports nothing under import`).toBeGreaterThan(0);
      expect(cjs[specifier], `${specifier}: require and import give different exports`).toEqual(esm[specifier]);
    }
    progress(`loaded ${all.length} entry points both ways: ${all.join(", ")}`);
  });
});

describe("the README quick starts", () => {
  for (const file of ["quickstart.mjs", "quickstart.cjs"]) {
    test(`run as ${file.endsWith(".mjs") ? "ESM" : "CommonJS"}: core server and Fastify app, @truss/client round trips, a clean exit`, async () => {
      const { stdout, stderr } = await timed(`node ${file}`, () => run("node", [file], { cwd: project, timeoutMs: RUN_TIMEOUT_MS }));
      console.log(stdout.trim());
      expect(stdout, stderr).toMatch(/\] done$/m);
    });
  }
});

/**
 * A consumer of every entry point, with the typed paths users rely on across
 * packages: a catalog from `defineEvents` typing `@truss/client`, the Fastify
 * plugin's options and the `app.realtime` augmentation, the Express helper.
 */
function consumerSource(): string {
  const all = packages.flatMap(({ packed }) => specifiers(packed));
  const namespaces = all.map((specifier, index) => `import * as entry${index} from "${specifier}";`);
  return `${namespaces.join("\n")}
import { createRealtimeEngine, type RealtimeEngine } from "@truss/core";
import { defineEvents, ERROR_CODES } from "@truss/protocol";
import { connect, memoryDedupStore, type TrussClient, type TrussClientError } from "@truss/client";
import trussFastify from "@truss/fastify";
import { attachRealtime } from "@truss/express";
import Fastify from "fastify";
import { createServer } from "node:http";
import { z } from "zod";

export const entries = [${all.map((_, index) => `entry${index}`).join(", ")}];

const events = defineEvents({
  server: { "project:updated": z.object({ id: z.string(), name: z.string(), budget: z.number() }) },
  client: { "user:typing": z.object({ documentId: z.string() }) },
});

export async function quickStart(): Promise<void> {
  const engine: RealtimeEngine<typeof events> = createRealtimeEngine({ auth: { secret: "s", algorithms: ["HS256"] }, events });
  engine.handle("user:typing", (data, { principal }) => ({ who: principal.userId, doc: data.documentId.toUpperCase() }));
  await engine.toUser("northwind", "u-42").emit("project:updated", { id: "p1", name: "Tower B", budget: 1 });
  // @ts-expect-error the catalog types the payload: budget is a number
  engine.toCompany("northwind").emit("project:updated", { id: "p1", name: "Tower B", budget: "1" });

  const app = Fastify();
  await app.register(trussFastify, { auth: { secret: "s", algorithms: ["HS256"] }, metricsPath: "/metrics" });
  const fromApp: RealtimeEngine = app.realtime;
  await fromApp.disconnectUser("northwind", "u-42");

  const express = attachRealtime(createServer(), { auth: { secret: "s", algorithms: ["HS256"] } });
  void express;

  const client: TrussClient<typeof events> = connect<typeof events>("http://127.0.0.1:3000", {
    token: "t",
    deviceId: "d",
    dedupStore: memoryDedupStore(1000),
  });
  client.on("project:updated", (project) => {
    console.log(project.budget.toFixed(0));
  });
  client.onError((error: TrussClientError) => {
    console.log(error.code);
  });
  await client.emit("user:typing", { documentId: "tower-b" });
  const code: string = ERROR_CODES[0];
  void code;
  client.close();
}
`;
}

describe.concurrent("the published types", () => {
  const tsc = (config: string) => run("node", [join(project, "node_modules", "typescript", "bin", "tsc"), "-p", config], { cwd: project, timeoutMs: TSC_TIMEOUT_MS });
  const options = { target: "es2022", strict: true, noEmit: true, skipLibCheck: false, types: ["node"] };

  test("resolve under moduleResolution node16, from a CommonJS file (.ts) and an ES module (.mts)", async () => {
    const dir = join(project, "types-node16");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "consumer.ts"), consumerSource());
    await writeFile(join(dir, "consumer.mts"), consumerSource());
    await writeFile(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: { ...options, module: "node16", moduleResolution: "node16" }, files: ["consumer.ts", "consumer.mts"] }, null, 2));
    await timed("tsc --noEmit (node16)", () => tsc(join(dir, "tsconfig.json")));
  });

  test("resolve under moduleResolution bundler", async () => {
    const dir = join(project, "types-bundler");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "consumer.ts"), consumerSource());
    await writeFile(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: { ...options, module: "esnext", moduleResolution: "bundler" }, files: ["consumer.ts"] }, null, 2));
    await timed("tsc --noEmit (bundler)", () => tsc(join(dir, "tsconfig.json")));
  });
});
