#!/usr/bin/env node
// Takes the README's screenshot of the docs site's front page.
//
//   pnpm run docs && node docs/site/screenshot.mjs [site dir] [out.png]
//
// Serves the built site (default docs/api) on 127.0.0.1, opens the front page
// in Debian's Chromium (CHROMIUM_PATH or /usr/bin/chromium) with the
// playwright-core the construction ERP example already installs, and writes
// docs/site.png. No network besides the loopback.
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { extname, join, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));
const site = resolve(process.argv[2] ?? join(root, "docs/api"));
const out = resolve(process.argv[3] ?? join(root, "docs/site.png"));
if (!existsSync(join(site, "index.html"))) {
  console.error(`No site at ${site}: run \`pnpm run docs\` first.`);
  process.exit(1);
}

const types = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png", ".json": "application/json", ".md": "text/plain; charset=utf-8" };
const server = createServer((request, response) => {
  const path = normalize(decodeURIComponent(new URL(request.url ?? "/", "http://x").pathname)).replace(/^(\.\.[/\\])+/, "");
  let file = join(site, path);
  if (existsSync(file) && statSync(file).isDirectory()) file = join(file, "index.html");
  if (!file.startsWith(site) || !existsSync(file)) return void response.writeHead(404).end("not found");
  response.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" }).end(readFileSync(file));
});
await new Promise((done) => server.listen(0, "127.0.0.1", done));
const { port } = /** @type {import("node:net").AddressInfo} */ (server.address());

const { chromium } = createRequire(join(root, "examples/construction-erp/package.json"))("playwright-core");
const executablePath = [process.env.CHROMIUM_PATH, "/usr/bin/chromium", "/usr/bin/chromium-browser"].find((path) => path && existsSync(path));
const browser = await chromium.launch({ executablePath, args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1, colorScheme: "light" });
  await page.goto(`http://127.0.0.1:${port}/index.html`, { waitUntil: "networkidle" });
  await page.waitForSelector(".tsd-navigation a");
  writeFileSync(out, await page.screenshot({ type: "png" }));
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  server.close();
}
