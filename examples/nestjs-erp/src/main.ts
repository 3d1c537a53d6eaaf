/**
 * `pnpm start`: the NestJS ERP on PORT (default 3002), 127.0.0.1.
 *
 * @module
 */
import { resolveJwtSecret } from "@truss/example-construction-erp/auth";
import { demoLogins } from "@truss/example-construction-erp/seed";
import { createNestErp } from "./bootstrap.js";

const port = Number(process.env.PORT ?? 3002);
const host = process.env.HOST ?? "127.0.0.1";
const { secret, isDevDefault } = resolveJwtSecret();
if (isDevDefault) console.warn("WARNING: JWT_SECRET is not set; tokens are signed with the public development secret.\n");

const app = await createNestErp({ jwtSecret: secret });
// SIGINT/SIGTERM run the shutdown hooks: the engine closes, then the database.
app.enableShutdownHooks();
await app.listen(port, host);
console.log(`Truss NestJS ERP is running at http://${host}:${port} (REST under /api, health at /health/websocket)\n`);
console.log("Demo logins:");
for (const login of demoLogins()) console.log(`  ${login.email}  ${login.password}  (${login.role}, ${login.company})`);
