import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";

/** The dashboard's files: the page, stylesheet and service worker as written, the script as bundled. */
export interface DashboardAssets {
  /** Holds `index.html`, `dashboard.css` and `sw.js`. */
  publicDir: string;
  /** Holds `dashboard.js` (and its source map), written by `scripts/build.mjs`. */
  bundleDir: string;
}

const FILES: Record<string, { dir: keyof DashboardAssets; file: string; type: string }> = {
  "/": { dir: "publicDir", file: "index.html", type: "text/html; charset=utf-8" },
  "/assets/dashboard.css": { dir: "publicDir", file: "dashboard.css", type: "text/css; charset=utf-8" },
  "/assets/dashboard.js": { dir: "bundleDir", file: "dashboard.js", type: "text/javascript; charset=utf-8" },
  "/assets/dashboard.js.map": { dir: "bundleDir", file: "dashboard.js.map", type: "application/json; charset=utf-8" },
  // At the root, so its scope is the whole site; it caches the three files above (not the API) for offline reloads.
  "/sw.js": { dir: "publicDir", file: "sw.js", type: "text/javascript; charset=utf-8" },
};

/**
 * Serves the dashboard's five files by hand: a static-file plugin would be
 * more code to configure than this. Files are read per request, so a rebuilt
 * bundle shows up on reload (the service worker asks the network first).
 */
export function registerDashboardRoutes(app: FastifyInstance, assets: DashboardAssets): void {
  for (const [path, { dir, file, type }] of Object.entries(FILES)) {
    app.get(path, async (_request, reply) => {
      let body: Buffer;
      try {
        body = await readFile(join(assets[dir], file));
      } catch {
        const hint = dir === "bundleDir" ? " Build the dashboard with `pnpm --filter ./examples/construction-erp run build`." : "";
        return reply.code(404).type("text/plain; charset=utf-8").send(`${file} is missing.${hint}`);
      }
      return reply.type(type).header("cache-control", "no-cache").send(body);
    });
  }
}
