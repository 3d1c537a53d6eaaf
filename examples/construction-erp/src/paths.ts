import { fileURLToPath } from "node:url";

/**
 * The example's root directory. This file sits one level below it both as
 * source (`src/paths.ts`) and bundled (`dist/server.js`), so the same
 * relative URL works for tests and for `pnpm start`.
 */
export const EXAMPLE_ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Where the dashboard's hand-written files live. */
export const PUBLIC_DIR = fileURLToPath(new URL("../public/", import.meta.url));

/** Where the build puts the dashboard's bundled script. */
export const BUNDLE_DIR = fileURLToPath(new URL("../dist/public/", import.meta.url));

/** The default database file, kept out of git. */
export const DEFAULT_DATABASE_PATH = fileURLToPath(new URL("../.data/construction-erp.sqlite", import.meta.url));

/** Where a development start keeps the VAPID key pair it generated, beside the database, out of git. */
export const DEV_VAPID_KEY_FILE = fileURLToPath(new URL("../.data/vapid-keys.json", import.meta.url));
