import { packageBuild } from "../../tsup.base.js";

// `shims` gives the CJS build `import.meta.url`, which finds the shipped migrations/ folder.
export default packageBuild(["src/index.ts"], { shims: true });
