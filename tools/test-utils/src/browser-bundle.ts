import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const packagesDir = join(dirname(fileURLToPath(import.meta.url)), "../../../packages");

/** Packages of the server side: none may reach a browser app through `@truss/client` or `@truss/react`. */
export const SERVER_PACKAGES = ["@truss/core", "socket.io", "engine.io", "socket.io-adapter", "jsonwebtoken", "ioredis"] as const;

/** What a browser bundle of one package holds. */
export interface BrowserBundle {
  /** Every file the bundle took in. */
  inputs: string[];
  /** Those that are server code: a {@link SERVER_PACKAGES} package, or `packages/core`. */
  serverInputs: string[];
  /** The bundle's code. */
  code: string;
}

/**
 * Bundles `export * from "<name>"` for the browser, as an app's bundler
 * would, with the workspace's `@truss/*` packages resolved to their sources
 * (an app resolves the published builds).
 */
export async function browserBundle(name: "@truss/client" | "@truss/react"): Promise<BrowserBundle> {
  // Loaded here, not with the helpers: esbuild refuses to load under jsdom, where the React tests import this package.
  const { build } = await import("esbuild");
  const result = await build({
    stdin: { contents: `export * from "${name}";`, resolveDir: join(packagesDir, name.slice("@truss/".length)), loader: "ts" },
    bundle: true,
    platform: "browser",
    format: "esm",
    write: false,
    metafile: true,
    logLevel: "silent",
    alias: Object.fromEntries(["client", "protocol", "react"].map((dir) => [`@truss/${dir}`, join(packagesDir, dir, "src/index.ts")])),
  });
  const inputs = Object.keys(result.metafile.inputs);
  return {
    inputs,
    serverInputs: inputs.filter((input) => SERVER_PACKAGES.some((server) => input.includes(`node_modules/${server}/`)) || input.includes("packages/core/")),
    code: result.outputFiles[0]!.text,
  };
}
