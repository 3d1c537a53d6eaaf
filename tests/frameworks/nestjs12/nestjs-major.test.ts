import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { Module } from "@nestjs/common";
import { HttpAdapterHost } from "@nestjs/core";
import { expect, test } from "vitest";

// This package depends on NestJS 12; `require.resolve` here resolves from it.
const fromFixture = createRequire(import.meta.url);
const fixtureModule = (name: string): Promise<Record<string, unknown>> => import(pathToFileURL(fromFixture.resolve(name)).href);

test("every @nestjs package is at major 12 in this project", () => {
  for (const name of ["common", "core", "websockets", "platform-socket.io", "platform-express", "platform-fastify"]) {
    // Not through `exports`: some of them do not export their package.json.
    const { version } = JSON.parse(readFileSync(new URL(`node_modules/@nestjs/${name}/package.json`, import.meta.url), "utf8")) as { version: string };
    expect(version, `@nestjs/${name}`).toMatch(/^12\./);
  }
});

// packages/nestjs/test/platform.test.ts checks that the adapter's source imports the same @nestjs/core as the tests.
test("the @truss/nestjs tests run here import this package's NestJS 12", async () => {
  expect(Module).toBe((await fixtureModule("@nestjs/common")).Module);
  expect(HttpAdapterHost).toBe((await fixtureModule("@nestjs/core")).HttpAdapterHost);
});
