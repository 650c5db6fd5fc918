// A throwaway consumer project with the packed pkg/ installed (through the packaging helpers),
// plus ES modules in it that re-export "cachette" and "cachette/ai", so that the tests load the
// package through its exports map exactly as a user's `import ... from "cachette"` does. The
// repository's pinned AI SDK (`ai`, the optional peer of "cachette/ai") is linked into it, so
// that code run there (the README's examples) can import "ai" and "ai/test".
import { existsSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, consumerProject } from "../packaging/helpers.mjs";

export const ESM_ENTRY = "cachette-esm.mjs";
export const AI_ENTRY = "cachette-ai.mjs";

export function installConsumer() {
  const dir = consumerProject("js");
  writeFileSync(join(dir, ESM_ENTRY), 'export * from "cachette";\n');
  writeFileSync(join(dir, AI_ENTRY), 'export * from "cachette/ai";\n');
  const sdk = join(ROOT, "node_modules", "ai");
  if (existsSync(sdk)) symlinkSync(sdk, join(dir, "node_modules", "ai"), "dir");
  return dir;
}
