/**
 * `pnpm start`: runs the ERP on PORT (default 3000) on 127.0.0.1, prints the
 * URL and the demo logins, and shuts down cleanly on Ctrl-C.
 *
 * @module
 */
import { buildApp } from "./app.js";
import { resolveJwtSecret } from "./auth.js";
import { DEFAULT_DATABASE_PATH, DEV_VAPID_KEY_FILE } from "./paths.js";
import { redactUrl } from "./realtime.js";
import { demoLogins } from "./seed.js";
import { DEFAULT_UNDELIVERED_AFTER_MS } from "./undelivered.js";
import { resolveVapidKeys, type VapidKeys } from "./web-push.js";

const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? "127.0.0.1";
const databasePath = process.env.DATABASE_PATH ?? DEFAULT_DATABASE_PATH;
const redisUrl = process.env.REDIS_URL || undefined;
const databaseUrl = process.env.DATABASE_URL || undefined;
const { secret, isDevDefault } = resolveJwtSecret();
const undeliveredAfterMs = process.env.UNDELIVERED_AFTER_MS ? Number(process.env.UNDELIVERED_AFTER_MS) : DEFAULT_UNDELIVERED_AFTER_MS;
// Push services of your own, besides the browsers' (comma-separated origins).
const pushOrigins = (process.env.PUSH_ALLOWED_ORIGINS ?? "").split(",").map((origin) => origin.trim()).filter(Boolean);
let vapid: { keys: VapidKeys; isDevDefault: boolean };
try {
  vapid = resolveVapidKeys(process.env, DEV_VAPID_KEY_FILE);
} catch (error) {
  console.error((error as Error).message);
  process.exit(1);
}

if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  console.error(`PORT must be a port number; got ${JSON.stringify(process.env.PORT)}.`);
  process.exit(1);
}
if (!Number.isSafeInteger(undeliveredAfterMs) || undeliveredAfterMs <= 0) {
  console.error(`UNDELIVERED_AFTER_MS must be a positive number of ms; got ${JSON.stringify(process.env.UNDELIVERED_AFTER_MS)}.`);
  process.exit(1);
}
if (vapid.isDevDefault) {
  console.warn(
    `WARNING: VAPID_PUBLIC_KEY and VAPID_PRIVATE_KEY are not set, so Web Push is signed with a development key pair kept in ${DEV_VAPID_KEY_FILE}.\n` +
      "         Generate your own (npx web-push generate-vapid-keys) and set both before this server is reachable by others.\n",
  );
}
if (isDevDefault) {
  console.warn(
    "WARNING: JWT_SECRET is not set, so tokens are signed with the public development secret.\n" +
      "         Anyone can forge a login. Set JWT_SECRET before this server is reachable by others.\n",
  );
}

const { app, storage, database } = await buildApp({
  jwtSecret: secret,
  databasePath,
  databaseUrl,
  redisUrl,
  undelivered: { afterMs: undeliveredAfterMs, vapid: vapid.keys, pushOrigins },
  logger: { level: process.env.LOG_LEVEL ?? "warn" },
}).catch((error: unknown) => {
  // Typically Redis or PostgreSQL unreachable, or the database file not writable: say so, without a stack trace.
  console.error(`Could not start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});

try {
  await app.listen({ port, host });
} catch (error) {
  const code = (error as NodeJS.ErrnoException).code;
  console.error(code === "EADDRINUSE" ? `Port ${port} on ${host} is already in use; start with PORT=<another port>.` : error);
  await app.close();
  process.exit(1);
}

const address = app.server.address();
const boundPort = typeof address === "object" && address ? address.port : port;
const url = `http://${host.includes(":") ? `[${host}]` : host}:${boundPort}`;
const logins = demoLogins();
const width = Math.max(...logins.map((login) => login.email.length));
console.log(
  [
    "",
    `Truss construction ERP is running at ${url}`,
    "",
    `  dashboard   ${url}/`,
    `  health      ${url}/health/websocket`,
    `  metrics     ${url}/metrics`,
    `  database    ${databaseUrl ? `PostgreSQL (${redactUrl(databaseUrl)}): the ERP's tables, and Truss's outbox, documents, inboxes and streams` : `${databasePath} (SQLite; set DATABASE_URL for PostgreSQL)`}`,
    `  realtime    ${realtimeLine()}`,
    `  missed      a message no device took within ${undeliveredAfterMs / 1000} s is sent by Web Push, or recorded as an e-mail (UNDELIVERED_AFTER_MS)`,
    "",
    "Demo logins (open two browser windows and log in as two people):",
    ...logins.map(
      (login) =>
        `  ${login.email.padEnd(width)}  ${login.password}   ${login.name}, ${login.role} at ${login.company}${login.projects ? ` (sees only ${login.projects.join(", ")})` : ""}`,
    ),
    "",
    "Press Ctrl-C to stop.",
    "",
  ].join("\n"),
);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (stopping) {
      console.log("Forced exit.");
      process.exit(1);
    }
    stopping = true;
    console.log(`\n${signal}: closing connections…`);
    app.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error("Shutdown failed:", error);
        process.exit(1);
      },
    );
  });
}

/** Where presence and the inboxes live, for the banner. */
function realtimeLine(): string {
  const durable = database === "postgres" ? "; inboxes and broadcast streams in PostgreSQL" : "";
  if (storage === "redis") return `Redis (${redactUrl(redisUrl!)})${durable}`;
  return database === "postgres" ? `in-memory presence (set REDIS_URL for Redis)${durable}` : "in-memory presence and inboxes (set REDIS_URL for Redis)";
}
