// The `cachette` package under test, as a consumer gets it: `npm pack` of pkg/ installed into a
// throwaway project, loaded through the package's own exports map ("cachette").
//
// `./run test_js` installs once (tests/js/install.mjs) and passes the project's path in
// CACHETTE_JS_PROJECT; a test file run on its own (`node --test tests/js/x.test.mjs`, with
// pkg/ built) installs a project of its own through the packaging helpers.
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT } from "../packaging/helpers.mjs";
import { ESM_ENTRY, installConsumer } from "./consumer.mjs";

function project() {
  const dir = process.env.CACHETTE_JS_PROJECT;
  if (dir) {
    if (!existsSync(join(dir, "node_modules", "cachette", "package.json"))) {
      throw new Error(`CACHETTE_JS_PROJECT=${dir} has no node_modules/cachette`);
    }
    return dir;
  }
  return installConsumer();
}

/** The consumer project's directory (cwd for child processes that import "cachette"). */
export const PROJECT = project();

/** `require` as seen from the consumer project (CommonJS resolution of "cachette"). */
export const projectRequire = createRequire(join(PROJECT, "package.json"));

/** The package's ES module namespace (`import * from "cachette"` in the consumer project). */
export const api = await import(pathToFileURL(join(PROJECT, ESM_ENTRY)).href);
export const { Cache, MemoryCache, requestKey, CacheError } = api;

/** `../shared/vectors/<name>` parsed as JSON lines. */
export function vectors(name) {
  const text = readFileSync(join(ROOT, "..", "shared", "vectors", name), "utf8");
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line, i) => ({ line: i + 1, ...JSON.parse(line) }));
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const realNow = Date.now;

/**
 * Runs `f(clock)` with Date.now() returning `clock.t`; `await clock.move(ms)` moves it (across a
 * microtask, so that the next operation reads the clock anew), and `clock.t` may be set.
 */
export async function withClock(f) {
  const clock = {
    t: realNow(),
    async move(ms) {
      this.t += ms;
      await null;
    },
  };
  Date.now = () => clock.t;
  try {
    await null;
    await f(clock);
  } finally {
    Date.now = realNow;
  }
}

/**
 * Asserts that `err` is a CacheError with `code` (null: any code), and returns it.
 * Checks the things every CacheError must have: Error subclass, name, code, a real message.
 */
export function expectCacheError(assert, err, code) {
  assert.ok(err instanceof CacheError, `not a CacheError: ${describeValue(err)}`);
  assert.ok(err instanceof Error, "CacheError is not an Error");
  assert.equal(err.name, "CacheError");
  if (code !== null) assert.equal(err.code, code, `wrong code (message: ${err.message})`);
  assert.equal(typeof err.message, "string");
  assert.ok(err.message.length >= 10 && err.message !== code, `unhelpful message: ${JSON.stringify(err.message)}`);
  assert.equal(typeof err.stack, "string");
  return err;
}

export function describeValue(x) {
  if (x instanceof Error) return `${x.constructor?.name}(${x.code ?? ""}) ${x.message}`;
  try {
    return JSON.stringify(x);
  } catch {
    return String(x);
  }
}

/** Runs `fn` expecting a synchronous CacheError with `code`. */
export function throwsCode(assert, fn, code) {
  let err;
  try {
    const r = fn();
    assert.fail(`expected ${code}, but it returned ${describeValue(r)}`);
  } catch (e) {
    if (e?.code === "ERR_ASSERTION") throw e;
    err = e;
  }
  return expectCacheError(assert, err, code);
}

/**
 * Calls `fn` (an async API call) expecting that it does not throw synchronously and that the
 * promise it returns rejects with a CacheError with `code`.
 */
export async function rejectsCode(assert, fn, code) {
  let p;
  try {
    p = fn();
  } catch (e) {
    assert.fail(`threw synchronously instead of rejecting: ${describeValue(e)}`);
  }
  assert.ok(p instanceof Promise, `did not return a promise: ${describeValue(p)}`);
  let err;
  try {
    const r = await p;
    assert.fail(`expected a rejection with ${code}, but it resolved to ${describeValue(r)}`);
  } catch (e) {
    if (e?.code === "ERR_ASSERTION") throw e;
    err = e;
  }
  return expectCacheError(assert, err, code);
}
