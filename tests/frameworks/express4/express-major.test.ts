import { createRequire } from "node:module";
import express from "express";
import { expect, test } from "vitest";

// This package depends on Express 4; `require` here resolves from it.
const fromFixture = createRequire(import.meta.url);

test("`express` is Express 4 in this project, as the @truss/express tests run here import it", () => {
  expect((fromFixture("express/package.json") as { version: string }).version).toMatch(/^4\./);
  // The same module object, not Express 5 from the adapter's own devDependencies.
  expect(express).toBe(fromFixture("express"));
  // Express 5 removed `express.query`.
  expect(typeof (express as unknown as { query?: unknown }).query).toBe("function");
});
