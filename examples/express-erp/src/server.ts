/**
 * `pnpm start`: the Express ERP on PORT (default 3001), 127.0.0.1.
 *
 * @module
 */
import { resolveJwtSecret } from "@truss/example-construction-erp/auth";
import { demoLogins } from "@truss/example-construction-erp/seed";
import { createExpressErp } from "./app.js";

const port = Number(process.env.PORT ?? 3001);
const host = process.env.HOST ?? "127.0.0.1";
const { secret, isDevDefault } = resolveJwtSecret();
if (isDevDefault) console.warn("WARNING: JWT_SECRET is not set; tokens are signed with the public development secret.\n");

const erp = await createExpressErp({ jwtSecret: secret });
erp.server.listen(port, host, () => {
  console.log(`Truss Express ERP is running at http://${host}:${port} (REST under /api, health at /health/websocket)\n`);
  console.log("Demo logins:");
  for (const login of demoLogins()) console.log(`  ${login.email}  ${login.password}  (${login.role}, ${login.company})`);
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    void erp.close().then(() => process.exit(0));
  });
}
