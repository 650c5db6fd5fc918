#!/usr/bin/env node
// The demo server (`./run demo`): serves www/ at / and the built package pkg/ at /pkg/ on
// 127.0.0.1, Node built-ins only. The port comes from PORT, else a free one is chosen; the
// server prints `Cachette demo: http://127.0.0.1:PORT/` once it listens and stays in the
// foreground until interrupted.
import { existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { createServer } from "node:http";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(fileURLToPath(import.meta.url), "..", "..");

// URL prefix -> directory; the longest matching prefix wins.
const MOUNTS = [
  ["/pkg/", join(ROOT, "pkg")],
  ["/", join(ROOT, "www")],
];

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
  ".md": "text/markdown; charset=utf-8",
  ".ts": "text/plain; charset=utf-8",
  ".wasm": "application/wasm",
};

/** The file a URL path names, or null when it is outside every mount. */
function resolve(pathname) {
  for (const [prefix, dir] of MOUNTS) {
    if (pathname === prefix.slice(0, -1) || pathname.startsWith(prefix)) {
      const file = join(dir, normalize(pathname.slice(prefix.length - 1)));
      return file === dir || file.startsWith(dir + sep) ? file : null;
    }
  }
  return null;
}

async function handle(req, res) {
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD" }).end();
    return;
  }
  let pathname;
  try {
    pathname = decodeURIComponent(new URL(req.url, "http://localhost").pathname);
  } catch {
    res.writeHead(400).end("bad request");
    return;
  }
  let file = resolve(pathname);
  if (file === null || pathname.includes("\0")) {
    res.writeHead(403).end("forbidden");
    return;
  }
  try {
    if ((await stat(file)).isDirectory()) file = join(file, "index.html");
    const body = await readFile(file);
    res.writeHead(200, {
      "content-type": MIME[extname(file)] ?? "application/octet-stream",
      "content-length": body.length,
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
    });
    res.end(req.method === "HEAD" ? undefined : body);
  } catch {
    res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found");
  }
}

if (!existsSync(join(ROOT, "pkg", "web.js"))) {
  console.error("serve.mjs: pkg/ is not built; run `./run build` (or `./run demo`) first");
  process.exit(1);
}

const port = Number(process.env.PORT ?? 0);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`serve.mjs: PORT must be a port number, got ${JSON.stringify(process.env.PORT)}`);
  process.exit(2);
}

const server = createServer((req, res) => {
  handle(req, res).catch(() => res.headersSent || res.writeHead(500).end());
});
server.on("error", (e) => {
  console.error(`serve.mjs: ${e.message}`);
  process.exit(1);
});
server.listen(port, "127.0.0.1", () => {
  console.log(`Cachette demo: http://127.0.0.1:${server.address().port}/`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
