// Shared by the Workers tests: the two example Workers (examples/worker built by worker-build,
// examples/worker-js bundled by its build.mjs; `./run test_workers` builds both first) run under
// workerd through Miniflare, against redis-server + upstash-bridge (tests/js/upstash-server.mjs).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { Miniflare } from "miniflare";
import { ROOT } from "../packaging/helpers.mjs";

export { startUpstash } from "../js/upstash-server.mjs";

export const ADMIN_TOKEN = "admin-token-for-workers-tests-41c7";

const RUST_BUILD = join(ROOT, "examples", "worker", "build");
const JS_DIST = join(ROOT, "examples", "worker-js", "dist");
const API_BUILD = join(ROOT, "tests", "workers", "api-worker", "build");

/** The two example Workers (with the `generatedBy` of their stand-in generators) and the
 *  Rust API's check Worker: their modules as Miniflare takes them. */
export const WORKERS = {
  rust: {
    label: "Rust Worker (workers-rs, cachette::worker)",
    generatedBy: "rust-worker stand-in",
    modules: () => [
      { type: "ESModule", path: join(RUST_BUILD, "index.js") },
      { type: "CompiledWasm", path: join(RUST_BUILD, "index_bg.wasm") },
    ],
    modulesRoot: RUST_BUILD,
  },
  api: {
    label: "cachette::worker::Cache checks (tests/workers/api-worker)",
    modules: () => [
      { type: "ESModule", path: join(API_BUILD, "index.js") },
      { type: "CompiledWasm", path: join(API_BUILD, "index_bg.wasm") },
    ],
    modulesRoot: API_BUILD,
  },
  js: {
    label: "JS Worker (npm package, workerd entry)",
    generatedBy: "js-worker stand-in",
    modules: () => JSON.parse(readFileSync(join(JS_DIST, "modules.json"), "utf8")),
    modulesRoot: JS_DIST,
  },
};

function checkBuilt(kind) {
  for (const m of WORKERS[kind].modules()) {
    if (!existsSync(m.path)) throw new Error(`${m.path} is missing: build the Workers first (./run test_workers)`);
  }
}

/** Raw and `gzip -9` sizes of a Worker's modules. */
export function bundleSizes(kind) {
  checkBuilt(kind);
  return WORKERS[kind].modules().map(({ type, path }) => {
    const bytes = readFileSync(path);
    return { type, file: path.slice(ROOT.length + 1), raw: bytes.length, gzip9: gzipSync(bytes, { level: 9 }).length };
  });
}

/**
 * One Miniflare (one workerd process) running Worker `kind` as several workers, one isolate
 * each: `isolates` maps a name to its bindings (secrets and vars). Resolves to
 * `{ request(name, path, init) -> { status, headers, body }, first, timing, dispose }`: `first`
 * is the first isolate's response to `firstPath`, and `timing` is
 * `{ readyMs: new Miniflare -> workerd up with the modules loaded, firstResponseMs: then ->
 * that first response, coldStartMs: the two together }`.
 */
export async function startWorker(kind, isolates, firstPath = "/api/health") {
  checkBuilt(kind);
  const w = WORKERS[kind];
  const names = Object.keys(isolates);
  const t0 = performance.now();
  const mf = new Miniflare({
    workers: names.map((name) => ({
      name,
      modules: w.modules(),
      modulesRoot: w.modulesRoot,
      compatibilityDate: "2026-04-01",
      bindings: isolates[name],
    })),
  });
  const fetchers = new Map();
  const request = async (name, path, init = {}) => {
    if (!fetchers.has(name)) fetchers.set(name, await mf.getWorker(name));
    const res = await fetchers.get(name).fetch(`http://worker.test${path}`, init);
    const text = await res.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(`${kind}/${name} ${path}: ${res.status} answered a body that is not JSON: ${text.slice(0, 300)}`);
    }
    return { status: res.status, headers: res.headers, body };
  };
  let first, t1;
  try {
    await mf.ready;
    t1 = performance.now();
    first = await request(names[0], firstPath);
  } catch (e) {
    await mf.dispose();
    throw e;
  }
  const t2 = performance.now();
  const timing = { readyMs: t1 - t0, firstResponseMs: t2 - t1, coldStartMs: t2 - t0 };
  return { request, first, timing, dispose: () => mf.dispose() };
}

/** Bindings of an isolate that can reach the bridge `up`. */
export const secrets = (up, extra = {}) => ({
  UPSTASH_REDIS_REST_URL: up.url,
  UPSTASH_REDIS_REST_TOKEN: up.token,
  ADMIN_TOKEN,
  ...extra,
});

export const bearer = (token = ADMIN_TOKEN) => ({ method: "POST", headers: { Authorization: `Bearer ${token}` } });

let topicSeq = 0;
/** A topic no other test uses. */
export const freshTopic = (label) => `${label} ${process.pid}-${++topicSeq}`;

export const subtopicsPath = (topic) => `/api/subtopics?topic=${encodeURIComponent(topic)}`;
