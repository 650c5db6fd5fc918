// Every ```js block of README.md runs as it stands, in its own Node.js process, importing
// "cachette" from the packed package (the consumer project); the Upstash block against the
// bridge (a real redis-server behind it), its URL and token given as the environment variables
// the block reads. A block that throws, or does not exit by itself, fails.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../packaging/helpers.mjs";
import { PROJECT } from "./package.mjs";
import { bridgeForTests } from "./upstash-server.mjs";

const bridge = bridgeForTests();

const README = readFileSync(join(ROOT, "README.md"), "utf8");
const BLOCKS = [...README.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1]);

function run(file, env) {
  return new Promise((resolve) => {
    execFile(process.execPath, [file], { cwd: PROJECT, env: { ...process.env, ...env }, timeout: 30_000 }, (error, stdout, stderr) =>
      resolve({ error, stdout, stderr }),
    );
  });
}

test("README.md has js examples", () => {
  assert.ok(BLOCKS.length >= 3, `${BLOCKS.length} blocks`);
});

for (const [i, code] of BLOCKS.entries()) {
  const first = code.split("\n").find((l) => l.startsWith("//") || l.startsWith("const")) ?? "";
  test(`README js block ${i + 1} runs (${first.slice(0, 60)})`, async () => {
    await bridge.up.raw("FLUSHDB");
    const file = join(PROJECT, `readme-${i + 1}.mjs`);
    writeFileSync(file, code);
    try {
      const { error, stderr } = await run(file, {
        UPSTASH_REDIS_REST_URL: bridge.up.url,
        UPSTASH_REDIS_REST_TOKEN: bridge.up.token,
      });
      assert.equal(error, null, `block ${i + 1} failed:\n${stderr}`);
    } finally {
      rmSync(file, { force: true });
    }
  });
}
