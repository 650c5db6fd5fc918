// A throwaway consumer project with the packed pkg/ installed (through the packaging helpers),
// plus one ES module in it that re-exports "cachette", so that the tests load the package
// through its exports map exactly as a user's `import ... from "cachette"` does.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { consumerProject } from "../packaging/helpers.mjs";

export const ESM_ENTRY = "cachette-esm.mjs";

export function installConsumer() {
  const dir = consumerProject("js");
  writeFileSync(join(dir, ESM_ENTRY), 'export * from "cachette";\n');
  return dir;
}
