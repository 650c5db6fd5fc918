// The shape of the published package, read from the real tarball: the exports map (and the
// order of its conditions), the version, the file list, and the hand-written typings checked
// by the TypeScript compiler against a consumer's use of the API (cachette/ai's with the
// repository's pinned AI SDK, linked into the consumer project as its optional peer).
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import { ROOT, consumerProject, installedManifest, tarball } from "./helpers.mjs";

const NODE = { import: "./node.mjs", require: "./node.cjs" };
// Types per condition: Node's `require` gets the .d.cts twins (CommonJS declarations for the
// CommonJS entries), Node's `import` and everyone else the .d.ts files (ES module declarations).
const types = (base) => ({ node: { import: `./${base}.d.ts`, require: `./${base}.d.cts` }, default: `./${base}.d.ts` });
const EXPECTED_EXPORTS = {
  ".": {
    types: types("index"),
    workerd: "./workerd.js",
    browser: "./browser.js",
    node: NODE,
    default: "./browser.js",
  },
  "./web": {
    types: types("index"),
    workerd: "./workerd.js",
    node: NODE,
    default: "./web.js",
  },
  "./memory": {
    types: types("memory/index"),
    workerd: "./memory/workerd.js",
    browser: "./memory/browser.js",
    node: { import: "./memory/node.mjs", require: "./memory/node.cjs" },
    default: "./memory/browser.js",
  },
  "./ai": { types: { import: "./ai.d.ts", require: "./ai.d.cts" }, require: "./ai.cjs", default: "./ai.js" },
  "./package.json": "./package.json",
};

const dir = consumerProject("package");
const manifest = installedManifest(dir);
const packed = execFileSync("tar", ["-tzf", tarball()], { encoding: "utf8" })
  .split("\n")
  .filter((line) => line && !line.endsWith("/"))
  .map((line) => line.replace(/^package\//, ""))
  .sort();

test("exports map: entries and the order of conditions", () => {
  assert.deepEqual(manifest.exports, EXPECTED_EXPORTS);
  // Resolution takes the first matching condition in object order, so the order is part of
  // the contract: types, workerd, browser, node (import, require), default.
  assert.deepEqual(Object.keys(manifest.exports["."]), ["types", "workerd", "browser", "node", "default"]);
  assert.deepEqual(Object.keys(manifest.exports["./web"]), ["types", "workerd", "node", "default"]);
  assert.deepEqual(Object.keys(manifest.exports["./memory"]), ["types", "workerd", "browser", "node", "default"]);
  assert.deepEqual(Object.keys(manifest.exports["./ai"]), ["types", "require", "default"]);
  assert.deepEqual(Object.keys(manifest.exports["."].node), ["import", "require"]);
  assert.deepEqual(Object.keys(manifest.exports["."].types), ["node", "default"]);
  assert.deepEqual(Object.keys(manifest.exports["."].types.node), ["import", "require"]);
  assert.equal(manifest.name, "cachette");
  assert.equal(manifest.type, "module");
  assert.equal(manifest.types, "./index.d.ts");
  // Resolvers that ignore `exports` (TypeScript's node10) find each subpath's types here.
  assert.deepEqual(manifest.typesVersions, {
    "*": { web: ["./index.d.ts"], memory: ["./memory/index.d.ts"], ai: ["./ai.d.ts"] },
  });
  assert.deepEqual(manifest.engines, { node: ">=20" });
  assert.equal(manifest.private, undefined);
  // cachette/ai works with the AI SDK 7 when the consumer has it; nobody else needs it.
  assert.deepEqual(manifest.peerDependencies, { ai: "^7.0.0" });
  assert.deepEqual(manifest.peerDependenciesMeta, { ai: { optional: true } });
  assert.equal(manifest.dependencies, undefined);
  // The operator CLI (`npx cachette`), shipped and executable once installed.
  assert.deepEqual(manifest.bin, { cachette: "./cli.mjs" });
});

test("version is the crate's", () => {
  const cargo = readFileSync(join(ROOT, "Cargo.toml"), "utf8");
  const version = cargo.match(/^\[package\][^[]*?^version\s*=\s*"([^"]+)"/m)?.[1];
  assert.equal(manifest.version, version);
});

test("the tarball holds exactly the package's files", () => {
  const listed = [...manifest.files, "package.json"].sort();
  assert.deepEqual(packed, listed);
  const leaves = (v) => (typeof v === "string" ? [v] : Object.values(v).flatMap(leaves));
  const targets = leaves(manifest.exports).map((s) => s.replace(/^\.\//, ""));
  for (const target of [...targets, ...manifest.sideEffects.map((s) => s.replace(/^\.\//, ""))]) {
    assert.ok(packed.includes(target), `${target} is referenced but not shipped`);
  }
  assert.ok(packed.includes("cli.mjs"), "the bin cli.mjs is not shipped");
  assert.ok(readFileSync(join(dir, "node_modules", "cachette", "cli.mjs"), "utf8").startsWith("#!/usr/bin/env node\n"));
  assert.ok(existsSync(join(dir, "node_modules", ".bin", "cachette")), "npm did not link the bin");
  for (const wasm of ["web/cachette_bg.wasm", "node/cachette_bg.wasm", "memory/web/cachette_bg.wasm", "memory/node/cachette_bg.wasm"]) {
    const bytes = readFileSync(join(dir, "node_modules", "cachette", wasm));
    assert.ok(WebAssembly.validate(bytes), `${wasm} is not a valid module for this Node`);
  }
});

/** The repository's pinned AI SDK, linked into the consumer project as cachette/ai's peer. */
function linkAi() {
  const link = join(dir, "node_modules", "ai");
  if (!existsSync(link)) symlinkSync(join(ROOT, "node_modules", "ai"), link, "dir");
}

/** The package's declaration files among the files tsc read, relative to the package. */
const packageTypings = (files) =>
  files.filter((f) => f.includes("/node_modules/cachette/")).map((f) => f.split("/node_modules/cachette/")[1]).sort();

/**
 * Runs tsc on `file` in the consumer project, strict and nodenext; fails with its report.
 * Resolves to the files tsc read (`--listFiles`).
 */
function typeCheck(file, { skipLibCheck }) {
  const config = `tsconfig.${file.replace(/\.[mc]ts$/, "")}.json`;
  writeFileSync(
    join(dir, config),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        module: "nodenext",
        moduleResolution: "nodenext",
        target: "es2022",
        lib: ["esnext", "dom"],
        skipLibCheck,
        types: [],
      },
      files: [file],
    }),
  );
  const tsc = join(ROOT, "node_modules", ".bin", "tsc");
  assert.ok(existsSync(tsc), "typescript is not installed (npm ci)");
  try {
    const out = execFileSync(tsc, ["-p", config, "--listFiles"], { cwd: dir, encoding: "utf8", stdio: "pipe" });
    return out.split("\n").map((line) => line.trim()).filter(Boolean);
  } catch (e) {
    assert.fail(`tsc reported errors:\n${e.stdout}${e.stderr}`);
  }
}

test("typings: a TypeScript consumer type-checks (tsc, strict, nodenext)", () => {
  writeFileSync(
    join(dir, "consumer.mts"),
    `import { Cache, CacheError, MemoryCache, init, requestKey } from "cachette";
import type { CacheEntry, CacheErrorCode, CacheOptions, CacheStats, CacheStatus, Duration, GetOrSetOptions, MemoryCacheOptions, RemovalCause, StreamEntry } from "cachette";
import * as web from "cachette/web";
import * as memory from "cachette/memory";
import type { MemoryCacheOptions as MemoryOptions } from "cachette/memory";

await init();
await web.init();
await web.init(new URL("https://example.com/cachette_bg.wasm"));

const memOptions: MemoryCacheOptions = { version: "v1", maxEntries: 1000, ttl: 3600 };
const mem = new MemoryCache(memOptions);
mem.set("k", { a: 1 });
mem.set("k", { a: 1 }, { ttl: 60 });
const value: unknown = mem.get("k");
const size: number = mem.size;
const stats: CacheStats = mem.stats();
mem.shutdown();

const key1: string = requestKey("v1", "subtopics", { topic: "Python Programming" });
const key2: string = requestKey("v1", "subtopics", { topic: "Python Programming" }, "python");

const options: CacheOptions = { version: "v1.0", ttl: 3600 };
const cache = new Cache(options);
const missing: unknown = await cache.get("missing");
await cache.set("k", "v");
const removed: number = await cache.invalidateNamespace("subtopics");
cache.shutdown();

try {
  new web.MemoryCache({ maxEntries: 0 });
} catch (e) {
  if (e instanceof CacheError) {
    const code: CacheErrorCode = e.code;
    const name: "CacheError" = e.name;
    const asError: Error = e;
    console.log(code, name, asError);
  }
}
const small: MemoryOptions = { maxEntries: 10 };
const fromMemory = new memory.MemoryCache(small);
const memoryKey: string = memory.requestKey("v1", "ns", { a: 1 }, "jcs");
await memory.init();
// @ts-expect-error cachette/memory has no Cache
memory.Cache;
const sameError: typeof CacheError = memory.CacheError;
console.log(fromMemory.stats().keys, memoryKey, sameError);

// A Worker's Env interface (as Wrangler writes it: no index signature) is accepted by fromEnv.
interface Env {
  UPSTASH_REDIS_REST_URL: string;
  UPSTASH_REDIS_REST_TOKEN: string;
  MY_KV: { get(key: string): Promise<string | null> };
}
declare const env: Env;
const fromEnv: Cache = Cache.fromEnv(env, { ttl: 60 });
fromEnv.shutdown();
// @ts-expect-error fromEnv takes an object, not a string
Cache.fromEnv("UPSTASH_REDIS_REST_URL");

// Generators: the context, and an async generator's promise.
const generated: string = mem.getOrSet("ns", { q: 1 }, (ctx) => (ctx.ttl(30), ctx.key));
const later: Promise<number> = mem.getOrSet("ns", { q: 2 }, async (ctx) => (ctx.signal.aborted ? 0 : 1));
const dumped: { key: string; value: unknown; ttl?: number | null }[] = mem.dump();
mem.load(dumped);
const firstKey: string | undefined = mem.keys().next().value;
console.log(generated, later, firstKey, mem.peek("k"), mem.remainingTtl("k"));

// Generated content: getOrSetEntry's overloads, per-call options, durations, a typed cache.
const typed = new MemoryCache<{ text: string }>({
  ttl: "1h",
  grace: "5m",
  staleWhileRevalidate: true,
  onRemove: (k: string, v: unknown, cause: RemovalCause) => console.log(k, v, cause),
});
typed.set("t", { text: "hi" }, { ttl: Infinity, grace: 30 });
const typedValue: { text: string } | undefined = typed.get("t");
// @ts-expect-error a MemoryCache<{ text: string }> holds no numbers
typed.set("n", 5);
const entrySync: CacheEntry<{ text: string }> = typed.getOrSetEntry("ns", { q: 3 }, (ctx) => {
  ctx.ttl("5m");
  ctx.ttl(Infinity);
  const previous: { text: string } | undefined = ctx.stale;
  return previous ?? { text: "fresh" };
});
const status: CacheStatus = entrySync.status;
const entryAsync: Promise<CacheEntry<{ text: string }>> = typed.getOrSetEntry(
  "ns",
  { q: 4 },
  async (ctx) => ({ text: ctx.key }),
  { timeout: "30s", signal: new AbortController().signal, staleIfError: "1h", waitUntil: (p) => void p },
);
const gosOptions: GetOrSetOptions = { ttl: "500ms", staleWhileRevalidate: 60 };
const generatedText: Promise<{ text: string }> = typed.getOrSet("ns", { q: 5 }, async () => ({ text: "x" }), gosOptions);
// @ts-expect-error a duration needs a unit
const badDuration: Duration = "5";
const typedDump: { key: string; value: { text: string }; ttl?: number | null }[] = typed.dump();
console.log(typedValue, status, entryAsync, generatedText, badDuration, typedDump, entrySync.age);
// A typed Cache: values, generators and entries carry V.
interface Answer { text: string; tokens: number }
const answers = new Cache<Answer>({ ttl: "10m", grace: "1h", staleIfError: true, serializer: { serialize: JSON.stringify, deserialize: JSON.parse } });
const answer: Answer | undefined = await answers.get("k");
await answers.set("k", { text: "hi", tokens: 2 }, { ttl: Infinity });
// @ts-expect-error a Cache<Answer> holds no strings
await answers.set("k", "hi");
const answerEntry: CacheEntry<Answer> = await answers.getOrSetEntry("llm", { q: "hi" }, async (ctx) => {
  const old: Answer | undefined = ctx.stale;
  ctx.ttl("1d");
  return old ?? { text: "fresh", tokens: 1 };
}, { signal: new AbortController().signal, waitUntil: (p) => void p });
const inferred: Answer = await answers.getOrSet("llm", { q: "x" }, () => ({ text: "x", tokens: 0 }));
// @ts-expect-error the generator must make an Answer
await answers.getOrSet("llm", { q: "y" }, () => 42);
const typedFromEnv: Cache<Answer> = Cache.fromEnv<Answer>(env);
console.log(answer, answerEntry.status, answerEntry.age, inferred, typedFromEnv);
// Streams: the chunk type follows the generator.
const streamed: StreamEntry<string> = await answers.getOrSetStream("explain", { q: 1 }, async function* (ctx) {
  ctx.ttl("1h");
  yield "token";
}, { replay: { chunkDelay: "20ms" }, maxStreamBytes: 1 << 20 });
const firstChunk: ReadableStreamReadResult<string> = await streamed.stream.getReader().read();
const memStream: Promise<StreamEntry<Uint8Array>> = typed.getOrSetStream("explain", 2, () => new ReadableStream<Uint8Array>());
// @ts-expect-error a stream generator returns chunks, not a value
await answers.getOrSetStream("explain", 3, () => 42);
console.log(firstChunk, memStream);
const made = new CacheError("INVALID_OPTIONS", "bad", { cause: new Error("x") });
console.log(value, size, stats, key1, key2, missing, removed, made);
`,
  );
  // An ES module consumer reads the ES module declarations (.d.ts), not their .d.cts twins.
  const read = packageTypings(typeCheck("consumer.mts", { skipLibCheck: false }));
  assert.deepEqual(read, ["index.d.ts", "memory/index.d.ts", "web/cachette.d.ts"]);
});

// The AI SDK's own declarations need @types/node and @types/json-schema, which its users have
// or skip (skipLibCheck, as `tsc --init` sets it); cachette/ai's types are checked by their use:
// the expected errors below fail the check if they decay to `any`.
test("typings: cachette/ai with the AI SDK type-checks (tsc, strict, nodenext, skipLibCheck)", () => {
  linkAi();
  writeFileSync(
    join(dir, "consumer-ai.mts"),
    `import { Cache, MemoryCache } from "cachette";
import * as memory from "cachette/memory";
import { cacheMiddleware } from "cachette/ai";
import type { CacheMiddleware, CacheMiddlewareOptions, GenerateResult, StreamSummary } from "cachette/ai";
import { generateText, wrapLanguageModel } from "ai";
import type { LanguageModelMiddleware } from "ai";
import { MockLanguageModelV4 } from "ai/test";

declare const env: { UPSTASH_REDIS_REST_URL: string; UPSTASH_REDIS_REST_TOKEN: string };
const cache = Cache.fromEnv(env);
const model = wrapLanguageModel({
  model: new MockLanguageModelV4(),
  middleware: cacheMiddleware(cache, { namespace: "llm", ttl: "1h" }),
});
const { text } = await generateText({ model, prompt: "What is Rust?" });
const answer: string = text;

const options: CacheMiddlewareOptions = {
  grace: "5m",
  shouldCache: (result: GenerateResult | StreamSummary) =>
    result.finishReason.unified === "stop" && ("parts" in result ? result.parts.length > 0 : result.content.length > 0),
};
const typed = new MemoryCache<{ text: string }>({ maxEntries: 100 });
const middleware: CacheMiddleware = cacheMiddleware(typed, options);
const version: "v4" = middleware.specificationVersion;
const asSdk: LanguageModelMiddleware = middleware;
const both = wrapLanguageModel({ model, middleware: [asSdk, cacheMiddleware(new memory.MemoryCache())] });
// @ts-expect-error a duration needs a unit
cacheMiddleware(typed, { ttl: "5" });
// @ts-expect-error the first argument is a cache
cacheMiddleware({ namespace: "llm" });
// @ts-expect-error a finish reason is { unified, raw }
cacheMiddleware(typed, { shouldCache: (result) => result.finishReason === "stop" });
console.log(answer, version, both.modelId);
`,
  );
  typeCheck("consumer-ai.mts", { skipLibCheck: true });
});

// A CommonJS TypeScript consumer (a .cts file: its imports compile to require()) gets the .d.cts
// twins, CommonJS declarations as node.cjs, memory/node.cjs and ai.cjs are CommonJS modules.
test("typings: a CommonJS TypeScript consumer type-checks against the .d.cts twins (tsc, strict, nodenext)", () => {
  writeFileSync(
    join(dir, "consumer-cjs.cts"),
    `import { Cache, CacheError, MemoryCache, init, requestKey } from "cachette";
import type { CacheEntry, CacheErrorCode, CacheOptions, CacheStats, Duration } from "cachette";
import web = require("cachette/web");
import memory = require("cachette/memory");

const mem = new MemoryCache<{ text: string }>({ maxEntries: 10, ttl: "1h" });
mem.set("k", { text: "hi" });
const value: { text: string } | undefined = mem.get("k");
// @ts-expect-error a MemoryCache<{ text: string }> holds no numbers
mem.set("n", 5);
const entry: CacheEntry<{ text: string }> = mem.getOrSetEntry("ns", { q: 1 }, () => ({ text: "x" }));
const key: string = requestKey("v1", "ns", { a: 1 }, "python");
const options: CacheOptions = { version: "v1", ttl: 60, localTtl: "5s" };
const cache = new Cache<number>(options);
const got: Promise<number | undefined> = cache.get("k");
const stats: CacheStats = mem.stats();
const ready: Promise<void> = init();
const webReady: Promise<void> = web.init();
const small = new memory.MemoryCache({ maxEntries: 5 });
// @ts-expect-error cachette/memory has no Cache
memory.Cache;
// @ts-expect-error a duration needs a unit
const bad: Duration = "5";
try {
  new web.MemoryCache({ maxEntries: 0 });
} catch (e) {
  if (e instanceof CacheError) {
    const code: CacheErrorCode = e.code;
    console.log(code);
  }
}
console.log(value, entry.status, key, got, stats.keys, ready, webReady, small.size, bad);
cache.shutdown();
`,
  );
  const read = packageTypings(typeCheck("consumer-cjs.cts", { skipLibCheck: false }));
  assert.deepEqual(read, ["index.d.cts", "memory/index.d.cts", "web/cachette.d.cts"]);
});

test("typings: cachette/ai from a CommonJS TypeScript consumer (tsc, strict, nodenext, skipLibCheck)", () => {
  linkAi();
  writeFileSync(
    join(dir, "consumer-ai-cjs.cts"),
    `import { MemoryCache } from "cachette";
import { cacheMiddleware } from "cachette/ai";
import type { CacheMiddleware, CacheMiddlewareOptions } from "cachette/ai";

const options: CacheMiddlewareOptions = { namespace: "llm", ttl: "1d", shouldCache: (r) => r.finishReason.unified === "stop" };
const middleware: CacheMiddleware = cacheMiddleware(new MemoryCache(), options);
const version: "v4" = middleware.specificationVersion;
// @ts-expect-error the first argument is a cache
cacheMiddleware({ namespace: "llm" });
console.log(version);
`,
  );
  const read = packageTypings(typeCheck("consumer-ai-cjs.cts", { skipLibCheck: true }));
  assert.deepEqual(read, ["ai.d.cts", "index.d.cts", "web/cachette.d.cts"]);
});
