// @vitest-environment node
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { browserBundle } from "@truss/test-utils";
import { expect, test } from "vitest";

const reactDir = join(dirname(fileURLToPath(import.meta.url)), "..");

test("@truss/react depends on @truss/client alone, with React as a peer", () => {
  // What @truss/client installs in turn is checked by its own no-server-code test.
  const manifest = JSON.parse(readFileSync(join(reactDir, "package.json"), "utf8")) as { dependencies?: object; peerDependencies?: object };
  expect(Object.keys(manifest.dependencies ?? {})).toEqual(["@truss/client"]);
  expect(Object.keys(manifest.peerDependencies ?? {}).sort()).toEqual(["@types/react", "react"]);
});

test("a browser bundle of @truss/react contains no server code", async () => {
  const { inputs, serverInputs, code } = await browserBundle("@truss/react");
  expect(inputs.some((input) => input.includes("socket.io-client"))).toBe(true);
  expect(inputs.some((input) => input.includes("node_modules/react/"))).toBe(true);
  expect(serverInputs).toEqual([]);
  expect(code).not.toMatch(/jsonwebtoken|createRealtimeEngine|maxHttpBufferSize/);
});
