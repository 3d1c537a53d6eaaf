import { createRequire } from "node:module";
import Fastify from "fastify";
import { expect, test } from "vitest";

// This package depends on Fastify 4; `require` here resolves from it.
const fromFixture = createRequire(import.meta.url);

test("`fastify` is Fastify 4 in this project, as the @truss/fastify tests run here import it", async () => {
  expect((fromFixture("fastify/package.json") as { version: string }).version).toMatch(/^4\./);
  // The same module, not Fastify 5 from the adapter's own devDependencies.
  expect(Fastify).toBe(fromFixture("fastify"));
  const app = Fastify();
  expect(app.version).toMatch(/^4\./);
  await app.close();
});
