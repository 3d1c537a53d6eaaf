// @ts-check
/**
 * `pnpm site` (at the repository root): starts the construction ERP's server
 * (its own `start` script, on ERP_PORT, default 3000) and, once it answers,
 * this app's Vite dev server, which proxies the API and the Truss socket to
 * it. Ctrl-C stops both.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createServer } from "vite";

const appRoot = fileURLToPath(new URL("..", import.meta.url));
const erpRoot = fileURLToPath(new URL("../../construction-erp/", import.meta.url));
const erpPort = process.env.ERP_PORT ?? "3000";
const erpUrl = `http://127.0.0.1:${erpPort}`;
process.env.ERP_URL = erpUrl;

const erp = spawn("npm", ["run", "--silent", "start"], { cwd: erpRoot, stdio: "inherit", env: { ...process.env, PORT: erpPort, HOST: "127.0.0.1" } });
erp.on("exit", (code) => {
  console.error(`The construction ERP stopped (exit code ${code}).`);
  process.exit(code ?? 1);
});

/** Waits for the ERP to answer, for at most a minute (its start builds it first). */
async function erpReady() {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${erpUrl}/`)).ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`The construction ERP did not answer on ${erpUrl} within a minute.`);
}

await erpReady();
const vite = await createServer({ root: appRoot, configFile: `${appRoot}vite.config.ts` });
await vite.listen();
console.log(`\nThe site app is running at ${vite.resolvedUrls?.local[0]} (open it with a phone-sized window), against the ERP at ${erpUrl}.\n`);

for (const signal of /** @type {const} */ (["SIGINT", "SIGTERM"])) {
  process.on(signal, async () => {
    erp.removeAllListeners("exit");
    erp.kill(signal);
    await vite.close();
    process.exit(0);
  });
}
