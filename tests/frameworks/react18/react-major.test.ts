import { createRequire } from "node:module";
import * as React from "react";
import { expect, test } from "vitest";

// This package depends on React 18; `require` here resolves from it.
const fromFixture = createRequire(import.meta.url);

test("`react` and `react-dom` are React 18 in this project, as the @truss/react tests run here import them", () => {
  expect(React.version).toMatch(/^18\./);
  expect((fromFixture("react-dom/package.json") as { version: string }).version).toMatch(/^18\./);
  expect((fromFixture("@testing-library/react/package.json") as { name: string }).name).toBe("@testing-library/react");
});
