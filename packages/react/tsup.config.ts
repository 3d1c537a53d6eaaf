import { packageBuild } from "../../tsup.base.js";

// Hooks run in the browser: React Server Components frameworks (Next.js's app router) need the module marked as client code.
export default packageBuild(["src/index.ts"], { external: ["react"], banner: { js: '"use client";' } });
