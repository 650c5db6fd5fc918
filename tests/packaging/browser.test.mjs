// Headless Chromium (Debian's /usr/bin/chromium through playwright-core), no bundler: the
// installed package is served as static files by a tiny server on 127.0.0.1, and each page
// maps the package's specifiers with an import map built from its own `exports`:
//
//   web.html   import { init, Cache, ... } from "cachette/web"; await init();
//              (the documented no-bundler style: the named `init` export)
//   main.html  import { Cache, ... } from "cachette"   (the `browser` entry, top-level await)
//   memory.html  import { MemoryCache, ... } from "cachette/memory"   (memory-only module)
//   bundled.html  the same, bundled by esbuild for the browser (its .wasm beside the bundle)
//
// A page fails on any page error, console error or warning, failed or non-2xx request.
import { createServer } from "node:http";
import { copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { extname, join, normalize, sep } from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as esbuild from "esbuild";
import { assertSmoke, consumerProject, installedManifest, launchChromium } from "./helpers.mjs";

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
};

const dir = consumerProject("browser");
const exportsMap = installedManifest(dir).exports;
const importMap = {
  imports: {
    cachette: `/node_modules/cachette/${exportsMap["."].browser.replace(/^\.\//, "")}`,
    "cachette/web": `/node_modules/cachette/${exportsMap["./web"].default.replace(/^\.\//, "")}`,
    "cachette/memory": `/node_modules/cachette/${exportsMap["./memory"].browser.replace(/^\.\//, "")}`,
  },
};

const page = (body, memory = false) => `<!doctype html>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<script type="importmap">${JSON.stringify(importMap)}</script>
<pre id="result">pending</pre>
<script type="module">
${body}
import { runSmoke } from "/smoke.mjs";
const results = await runSmoke(api, ${memory});
document.getElementById("result").textContent = JSON.stringify(results);
</script>
`;

let server;
let origin;
let browser;

before(async () => {
  await writeFile(
    join(dir, "web.html"),
    page(`import { init, Cache, MemoryCache, requestKey, CacheError } from "cachette/web";
await init();
const api = { init, Cache, MemoryCache, requestKey, CacheError };`),
  );
  await writeFile(
    join(dir, "memory.html"),
    page(
      `import * as api from "cachette/memory";`,
      true,
    ),
  );
  // Bundled like an app would (esbuild, browser, minified); the wasm the bundle names with
  // `new URL(..., import.meta.url)` is placed where it points, beside the bundle.
  await writeFile(
    join(dir, "bundled-entry.mjs"),
    `import * as api from "cachette/memory";
import { runSmoke } from "./smoke.mjs";
const results = await runSmoke(api, true);
document.getElementById("result").textContent = JSON.stringify(results);
`,
  );
  await esbuild.build({
    absWorkingDir: dir,
    entryPoints: ["bundled-entry.mjs"],
    outfile: join(dir, "dist", "bundle.js"),
    bundle: true,
    format: "esm",
    platform: "browser",
    minify: true,
    logLevel: "silent",
  });
  await mkdir(join(dir, "dist", "web"), { recursive: true });
  await copyFile(
    join(dir, "node_modules", "cachette", "memory", "web", "cachette_bg.wasm"),
    join(dir, "dist", "web", "cachette_bg.wasm"),
  );
  await writeFile(
    join(dir, "bundled.html"),
    `<!doctype html>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<pre id="result">pending</pre>
<script type="module" src="/dist/bundle.js"></script>
`,
  );
  await writeFile(
    join(dir, "main.html"),
    page(`import { init, Cache, MemoryCache, requestKey, CacheError } from "cachette";
const api = { init, Cache, MemoryCache, requestKey, CacheError };`),
  );

  server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
    const file = join(dir, path);
    if (!file.startsWith(dir + sep)) {
      res.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { "content-type": MIME[extname(file)] ?? "application/octet-stream" });
      res.end(body);
    } catch {
      res.writeHead(404).end("not found");
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${server.address().port}`;

  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve()));
});

async function smokeInPage(t, file) {
  const context = await browser.newContext();
  const tab = await context.newPage();
  const problems = [];
  tab.on("pageerror", (e) => problems.push(`page error: ${e.stack ?? e}`));
  tab.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`console ${m.type()}: ${m.text()}`);
  });
  tab.on("requestfailed", (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  tab.on("response", (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  try {
    await tab.goto(`${origin}/${file}`);
    await tab
      .waitForFunction(() => document.getElementById("result").textContent !== "pending", null, {
        timeout: 20_000,
      })
      .catch((e) => problems.push(`no result: ${e.message.split("\n")[0]}`));
    const text = await tab.textContent("#result");
    assert.deepEqual(problems, []);
    await assertSmoke(t, JSON.parse(text));
  } finally {
    await context.close();
  }
}

test("browser: cachette/web with explicit init()", { timeout: 60_000 }, (t) => smokeInPage(t, "web.html"));

test("browser: cachette (browser entry, top-level await)", { timeout: 60_000 }, (t) => smokeInPage(t, "main.html"));

test("browser: cachette/memory (memory-only module, no bundler)", { timeout: 60_000 }, (t) => smokeInPage(t, "memory.html"));

test("browser: cachette/memory bundled by esbuild", { timeout: 60_000 }, (t) => smokeInPage(t, "bundled.html"));
