// The npm README (pkg-template/README.md, shipped in the package as its README.md), checked as
// tests/js/readme.test.mjs checks the repository's: every ```js block runs as it stands, in its
// own Node.js process, in the consumer project that has the packed package installed, with the
// bridge's URL and token (a real redis-server behind it) as the Upstash environment variables.
// A block written in CommonJS (require, no import/export) runs as a .cjs file. A block that
// exports a Worker (`export default { fetch }`) is loaded and its `fetch` called twice, as
// workerd would, with those variables as its `env`: a 200 with an `x-cache` of "miss", then
// "hit". A block that throws, or does not exit by itself, fails.
//
// The blocks for other runtimes (html, sh) are not run; the package paths they name
// (/node_modules/cachette/... and node_modules/cachette/...) must exist in the installed package.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../packaging/helpers.mjs";
import { PROJECT } from "./package.mjs";
import { bridgeForTests } from "./upstash-server.mjs";

const bridge = bridgeForTests();

const README = readFileSync(join(ROOT, "pkg-template", "README.md"), "utf8");
const blocks = (lang) => [...README.matchAll(new RegExp(`^\`\`\`${lang}\\n([\\s\\S]*?)^\`\`\`$`, "gm"))].map((m) => m[1]);
const JS = blocks("js");

function run(file, env) {
  return new Promise((resolve) => {
    execFile(process.execPath, [file], { cwd: PROJECT, env: { ...process.env, ...env }, timeout: 30_000 }, (error, stdout, stderr) =>
      resolve({ error, stdout, stderr }),
    );
  });
}

const isCommonJs = (code) => /\brequire\(/.test(code) && !/^\s*(import|export)\s/m.test(code);
const isWorker = (code) => /^export default \{/m.test(code) && /\bfetch\(/.test(code);

/** A driver that calls the Worker's fetch twice, as workerd would, and checks the answers. */
const workerDriver = (module) => `import worker from "./${module}";
const env = { UPSTASH_REDIS_REST_URL: process.env.UPSTASH_REDIS_REST_URL, UPSTASH_REDIS_REST_TOKEN: process.env.UPSTASH_REDIS_REST_TOKEN };
const pending = [];
const ctx = { waitUntil: (p) => pending.push(p), passThroughOnException() {} };
const statuses = [];
for (let i = 0; i < 2; i++) {
  const response = await worker.fetch(new Request("https://worker.example/?topic=Go"), env, ctx);
  if (response.status !== 200) throw new Error("status " + response.status + ": " + (await response.text()));
  const body = await response.json();
  if (!Array.isArray(body) || !body.some((s) => s.includes("Go"))) throw new Error("body " + JSON.stringify(body));
  statuses.push(response.headers.get("x-cache"));
}
await Promise.all(pending);
if (statuses.join() !== "miss,hit") throw new Error("x-cache: " + statuses.join());
// An isolate's cache lives as long as the isolate: this process ends here.
process.exit(0);
`;

test("the npm README has a js example per runtime that runs in Node.js", () => {
  assert.ok(JS.length >= 5, `${JS.length} js blocks`);
  assert.ok(JS.some(isCommonJs), "no CommonJS block");
  assert.ok(JS.some(isWorker), "no Worker block");
  for (const lang of ["html", "sh", "rust", "toml"]) assert.ok(blocks(lang).length > 0, `no ${lang} block`);
});

for (const [i, code] of JS.entries()) {
  const first = code.split("\n").find((l) => l.startsWith("//") || l.startsWith("const") || l.startsWith("import")) ?? "";
  test(`npm README js block ${i + 1} runs (${first.slice(0, 60)})`, async () => {
    await bridge.up.raw("FLUSHDB");
    const ext = isCommonJs(code) ? "cjs" : "mjs";
    const name = `npm-readme-${i + 1}.${ext}`;
    const file = join(PROJECT, name);
    const driver = join(PROJECT, `npm-readme-${i + 1}-driver.mjs`);
    writeFileSync(file, code);
    if (isWorker(code)) writeFileSync(driver, workerDriver(name));
    try {
      const { error, stderr } = await run(isWorker(code) ? driver : file, {
        UPSTASH_REDIS_REST_URL: bridge.up.url,
        UPSTASH_REDIS_REST_TOKEN: bridge.up.token,
      });
      assert.equal(error, null, `block ${i + 1} failed:\n${stderr}`);
    } finally {
      rmSync(file, { force: true });
      rmSync(driver, { force: true });
    }
  });
}

test("the package paths named by the html and sh blocks exist in the installed package", () => {
  const text = [...blocks("html"), ...blocks("sh")].join("\n") + README;
  const paths = new Set([...text.matchAll(/\/?node_modules\/cachette\/([\w./-]+[\w])/g)].map((m) => m[1]));
  assert.ok(paths.size >= 3, [...paths].join());
  for (const path of paths) {
    assert.ok(existsSync(join(PROJECT, "node_modules", "cachette", path)), `node_modules/cachette/${path} is not in the package`);
  }
});
