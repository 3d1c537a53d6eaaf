#!/usr/bin/env node
// `changeset version`, run on a copy of the working tree so the checkout is
// never touched, then checked: it succeeded, consumed every changeset, and
// gave each package the version its changesets ask for, with a CHANGELOG
// entry. A package released further than its own changesets ask (changesets
// turns a 0.x peer dependency leaving its range into a major of the
// dependent) fails the run, since publishing it would release a version no
// one meant to. Run from anywhere: `node tests/packaging/changeset-version-dry-run.mjs`.
// TRUSS_DRY_RUN_KEEP=1 keeps the copy.
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const repo = realpathSync(fileURLToPath(new URL("../../", import.meta.url)));
const started = Date.now();
const log = (message) => console.log(`[changeset dry run ${((Date.now() - started) / 1000).toFixed(1)}s] ${message}`);
const RANK = { none: 0, patch: 1, minor: 2, major: 3 };

function increment(version, bump) {
  const [major, minor, patch] = version.split("-")[0].split(".").map(Number);
  if (bump === "major") return `${major + 1}.0.0`;
  if (bump === "minor") return `${major}.${minor + 1}.0`;
  if (bump === "patch") return `${major}.${minor}.${patch + 1}`;
  return version;
}

/** The workspace packages under packages/: name → { dir, version, private }. */
function packages(root) {
  const found = new Map();
  for (const name of readdirSync(join(root, "packages"))) {
    const file = join(root, "packages", name, "package.json");
    if (!existsSync(file)) continue;
    const manifest = JSON.parse(readFileSync(file, "utf8"));
    found.set(manifest.name, { dir: join(root, "packages", name), version: manifest.version, private: manifest.private === true });
  }
  return found;
}

/** name → the highest bump the pending changesets ask for it, and how many name it. */
function requested(root) {
  const asked = new Map();
  const dir = join(root, ".changeset");
  const files = readdirSync(dir).filter((file) => file.endsWith(".md") && file !== "README.md");
  for (const file of files) {
    const frontmatter = readFileSync(join(dir, file), "utf8").match(/^---\r?\n([\s\S]*?)\r?\n---/);
    if (!frontmatter) throw new Error(`.changeset/${file} has no frontmatter`);
    for (const line of frontmatter[1].split(/\r?\n/).filter((text) => text.trim())) {
      const entry = line.match(/^\s*["']?([^"':]+)["']?\s*:\s*(major|minor|patch|none)\s*$/);
      if (!entry) throw new Error(`.changeset/${file}: cannot read "${line}"`);
      const [, name, bump] = entry;
      const before = asked.get(name) ?? { bump: "none", changesets: 0 };
      asked.set(name, { bump: RANK[bump] > RANK[before.bump] ? bump : before.bump, changesets: before.changesets + 1 });
    }
  }
  return { asked, files };
}

const copy = mkdtempSync(join(tmpdir(), "truss-changeset-dry-run-"));
let failures = [];
try {
  // The working tree as a commit would take it: tracked and untracked files, not ignored ones.
  const listed = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: repo, maxBuffer: 64 * 1024 * 1024 })
    .toString()
    .split("\0")
    .filter(Boolean);
  let copied = 0;
  for (const file of listed) {
    const from = join(repo, file);
    if (!existsSync(from)) continue; // deleted in the working tree
    mkdirSync(dirname(join(copy, file)), { recursive: true });
    cpSync(from, join(copy, file), { dereference: false });
    copied += 1;
  }
  // The CLI and the changelog generator come from the checkout's install.
  symlinkSync(join(repo, "node_modules"), join(copy, "node_modules"), "dir");
  log(`copied ${copied} files to ${copy}`);

  const before = packages(copy);
  const { asked, files } = requested(copy);
  log(`${files.length} changesets for ${asked.size} packages`);
  for (const name of asked.keys()) if (!before.has(name)) failures.push(`a changeset names ${name}, which is not a package under packages/`);

  const cli = join(repo, "node_modules", "@changesets", "cli", "bin.js");
  if (!existsSync(cli)) throw new Error(`${relative(repo, cli)} is missing: install the workspace first (pnpm install)`);
  const output = execFileSync(process.execPath, [cli, "version"], { cwd: copy, timeout: 120_000, encoding: "utf8", env: { ...process.env, CI: "true" }, stdio: ["ignore", "pipe", "pipe"] });
  log(`changeset version: ${output.trim().split("\n").at(-1)}`);

  const left = readdirSync(join(copy, ".changeset")).filter((file) => file.endsWith(".md") && file !== "README.md");
  if (left.length > 0) failures.push(`changesets left unconsumed: ${left.join(", ")}`);

  const after = packages(copy);
  const rows = [];
  for (const [name, { version: old, dir, private: isPrivate }] of before) {
    const now = after.get(name)?.version;
    const want = asked.get(name)?.bump ?? "none";
    const expected = increment(old, want);
    let note = "";
    if (want !== "none") {
      if (now !== expected) note = `expected ${expected} (${want}, from its changesets)`;
      const changelog = join(dir, "CHANGELOG.md");
      if (!existsSync(changelog)) note ||= "no CHANGELOG.md";
      else if (!readFileSync(changelog, "utf8").includes(`\n## ${now}\n`)) note ||= `CHANGELOG.md has no "## ${now}" entry`;
    } else if (now !== old && now !== increment(old, "patch")) {
      // updateInternalDependencies may patch a dependent; anything more was not asked for.
      note = `no changeset names it, yet it goes ${old} → ${now}`;
    }
    rows.push({ package: name, from: old, to: now, asked: want, ok: note ? `NO: ${note}` : "yes", ...(isPrivate ? { private: true } : {}) });
    if (note) failures.push(`${name}: ${old} → ${now}; ${note}`);
  }
  console.table(rows);
  if (failures.some((failure) => failure.includes("expected"))) {
    console.log(
      "A version beyond what a package's changesets ask for comes from a dependency: for a peer dependency\n" +
        "(\"@truss/core\": \"workspace:^\") whose new version leaves the dependent's range, changesets releases the\n" +
        "dependent as a major, also from 0.x (https://github.com/changesets/changesets/issues/1228).",
    );
  }
} catch (error) {
  failures.push(error instanceof Error ? `${error.message}${error.stderr ? `\n${error.stderr}` : ""}` : String(error));
} finally {
  if (process.env.TRUSS_DRY_RUN_KEEP) log(`kept ${copy}`);
  else rmSync(copy, { recursive: true, force: true });
}

if (failures.length > 0) {
  console.error(`\nchangeset version dry run FAILED:\n- ${failures.join("\n- ")}`);
  process.exit(1);
}
log("every package gets the version its changesets ask for, with a CHANGELOG entry; the checkout is untouched");
