import { cp } from "node:fs/promises";
import { packageBuild } from "../../tsup.base.js";

// The SQL ships as files beside the build (dist/migrations/), where migrate() reads it
// and a reviewer finds it; `shims` gives the CJS build the `import.meta.url` that locates it.
export default packageBuild(["src/index.ts"], {
  shims: true,
  onSuccess: async () => {
    await cp("migrations", "dist/migrations", { recursive: true });
  },
});
