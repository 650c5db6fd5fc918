// The operator CLI (`npx cachette <command>`, pkg-template/cli.mjs): the installed package's bin
// (node_modules/.bin/cachette in the consumer project) run as a child process against the
// upstash-bridge in front of a real redis-server, with data seeded through `Cache` and the
// bridge. Every run's output is kept, and checked at the end for the token.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import { Cache, PROJECT, requestKey } from "./package.mjs";
import { bridgeForTests, freePort } from "./upstash-server.mjs";

const bridge = bridgeForTests();
const BIN = join(PROJECT, "node_modules", ".bin", "cachette");
const TMP = mkdtempSync(join(process.env.CACHETTE_TMP || tmpdir(), "cachette-cli-"));
/** A token typed where it must not be (`--token`), and a wrong one in a file. */
const ARG_TOKEN = "argv-token-5b1e-secret";
const WRONG_TOKEN = "wrong-token-77aa-secret";
const outputs = [];

after(() => {
  rmSync(TMP, { recursive: true, force: true });
  assert.deepEqual(bridge.unhandled, [], "no unhandled rejection");
  assert.ok(outputs.length > 30, `only ${outputs.length} runs recorded`);
  for (const { args, stdout, stderr } of outputs) {
    for (const secret of [bridge.up.token, ARG_TOKEN, WRONG_TOKEN]) {
      assert.ok(!stdout.includes(secret) && !stderr.includes(secret), `a token leaked from cachette ${args.join(" ")}:\n${stdout}${stderr}`);
    }
  }
});

/**
 * Runs the bin with `args`; `env` replaces the Upstash variables (default: the bridge's).
 * Resolves to `{ code, stdout, stderr }`.
 */
function cli(args, { env } = {}) {
  const base = { ...process.env };
  delete base.UPSTASH_REDIS_REST_URL;
  delete base.UPSTASH_REDIS_REST_TOKEN;
  const upstash = env ?? { UPSTASH_REDIS_REST_URL: bridge.up.url, UPSTASH_REDIS_REST_TOKEN: bridge.up.token };
  // The bin's `#!/usr/bin/env node` finds this Node first.
  const PATH = `${dirname(process.execPath)}:${base.PATH ?? ""}`;
  return new Promise((resolve) => {
    execFile(BIN, args, { cwd: PROJECT, env: { ...base, ...upstash, PATH }, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
      outputs.push({ args, stdout, stderr });
      resolve({ code, stdout, stderr });
    });
  });
}

/** Asserts exit `code` with one line on stderr matching `message`, and nothing on stdout. */
function failsWith(r, code, message) {
  assert.equal(r.code, code, `exit ${r.code}, stderr: ${r.stderr}`);
  assert.equal(r.stdout, "");
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one message on stderr, got:\n${r.stderr}`);
  assert.match(lines[0], /^cachette: /);
  assert.match(lines[0], message);
}

function ok(r) {
  assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

const json = (r) => JSON.parse(ok(r).stdout);
const raw = (...command) => bridge.up.raw(...command).then((r) => r.result);
const sharedCache = (extra = {}) =>
  new Cache({ cleanupInterval: 0, ...extra, upstash: { url: bridge.up.url, token: bridge.up.token, timeoutMs: 2000 } });

test("the bin is installed, executable, and prints its help", async () => {
  assert.ok(existsSync(BIN), `${BIN} is missing`);
  const r = ok(await cli(["--help"]));
  for (const word of ["stats", "health", "invalidate <namespace>", "update-version <v>", "delete <pattern>", "--dry-run", "get <namespace> <json>", "--url", "--token-file", "--version", "--json", "Exit codes"]) {
    assert.ok(r.stdout.includes(word), `help lacks ${word}`);
  }
  assert.equal(r.stderr, "");
});

describe("usage errors: exit 2, one message", () => {
  test("unknown command, no command, unknown option", async () => {
    failsWith(await cli(["frobnicate"]), 2, /unknown command "frobnicate"/);
    failsWith(await cli([]), 2, /no command/);
    failsWith(await cli(["toString"]), 2, /unknown command "toString"/);
    failsWith(await cli(["stats", "--colour"]), 2, /unknown option --colour/);
    failsWith(await cli(["stats", "extra"]), 2, /stats takes no argument/);
    failsWith(await cli(["health", "--dry-run"]), 2, /--dry-run is an option of delete/);
  });

  test("missing arguments", async () => {
    failsWith(await cli(["invalidate"]), 2, /invalidate needs <namespace>/);
    failsWith(await cli(["update-version"]), 2, /update-version needs <v>/);
    failsWith(await cli(["delete"]), 2, /delete needs <pattern>/);
    failsWith(await cli(["get", "subtopics"]), 2, /get needs <namespace> <json>/);
    failsWith(await cli(["get", "subtopics", "{}", "--version"]), 2, /--version needs a value/);
  });

  test("bad JSON, bad namespace, bad pattern, bad version", async () => {
    failsWith(await cli(["get", "subtopics", "{topic: Rust}"]), 2, /<json> is not JSON/);
    failsWith(await cli(["get", "sub:topics", "{}"]), 2, /INVALID_KEY/);
    failsWith(await cli(["invalidate", "sub:topics"]), 2, /INVALID_KEY/);
    failsWith(await cli(["delete", ""]), 2, /INVALID_PATTERN/);
    failsWith(await cli(["stats", "--version", "v:1"]), 2, /INVALID_OPTIONS/);
    failsWith(await cli(["get", "s", "{}", "--key-format", "yaml"]), 2, /INVALID_OPTIONS/);
  });

  test("missing URL or token in the environment", async () => {
    failsWith(await cli(["stats"], { env: {} }), 2, /no Upstash URL: set UPSTASH_REDIS_REST_URL or pass --url/);
    failsWith(await cli(["stats"], { env: { UPSTASH_REDIS_REST_URL: bridge.up.url } }), 2, /no Upstash token: set UPSTASH_REDIS_REST_TOKEN or pass --token-file/);
    failsWith(await cli(["stats", "--token-file", join(TMP, "absent")], { env: { UPSTASH_REDIS_REST_URL: bridge.up.url } }), 2, /cannot read the token file .*absent: ENOENT/);
  });

  test("--token is refused, whatever its form, without repeating it", async () => {
    const env = { UPSTASH_REDIS_REST_URL: bridge.up.url };
    for (const args of [["stats", "--token", ARG_TOKEN], ["stats", `--token=${ARG_TOKEN}`], ["--token", ARG_TOKEN, "health"], ["stats", `-token=${ARG_TOKEN}`]]) {
      const r = await cli(args, { env });
      failsWith(r, 2, /--token is refused: a token given as an argument shows in the process list/);
      assert.match(r.stderr, /UPSTASH_REDIS_REST_TOKEN or pass --token-file/);
    }
    // Refused even when the environment has a token and the command would succeed.
    failsWith(await cli(["health", "--token", ARG_TOKEN]), 2, /--token is refused/);
  });
});

describe("commands against the bridge", () => {
  test("health: human and --json", async () => {
    assert.match(ok(await cli(["health"])).stdout, /^healthy \(upstash, [\d.]+ ms\)\n$/);
    const h = json(await cli(["health", "--json"]));
    assert.equal(h.status, "healthy");
    assert.equal(h.backend, "upstash");
    assert.equal(typeof h.latencyMs, "number");
  });

  test("stats: Redis's own figures", async () => {
    await raw("FLUSHDB");
    await raw("CONFIG", "RESETSTAT");
    const c = sharedCache();
    for (const topic of ["a", "b", "c", "d", "e"]) await c.store("subtopics", { topic }, [topic]);
    assert.deepEqual(await c.lookup("subtopics", { topic: "a" }), ["a"]);
    assert.equal(await c.get("absent"), undefined);
    c.shutdown();
    const s = json(await cli(["stats", "--json"]));
    assert.equal(s.version, "v1");
    assert.equal(s.keys, 5);
    assert.ok(s.keyspaceHits >= 1 && s.keyspaceMisses >= 1, JSON.stringify(s));
    assert.equal(s.hitRatePercent, Math.round((10_000 * s.keyspaceHits) / (s.keyspaceHits + s.keyspaceMisses)) / 100);
    assert.equal(s.evictedKeys, 0);
    assert.ok(s.usedMemoryBytes > 0);
    const human = ok(await cli(["stats"])).stdout;
    assert.match(human, /^Upstash at http:\/\/127\.0\.0\.1:\d+\n/);
    assert.match(human, /\n {2}keys +5\n/);
    assert.match(human, /used memory +[\d,]+ B/);
  });

  test("invalidate: the namespace's keys of the version, nothing else", async () => {
    await raw("FLUSHDB");
    const v1 = sharedCache({ version: "v1" });
    const v2 = sharedCache({ version: "v2" });
    for (const topic of ["a", "b", "c"]) await v1.store("subtopics", { topic }, topic);
    await v1.store("quiz", { topic: "a" }, "q");
    await v1.store("subtopicsX", { topic: "a" }, "x");
    await v2.store("subtopics", { topic: "a" }, "v2");
    assert.equal(ok(await cli(["invalidate", "subtopics"])).stdout, "deleted 3 keys of namespace subtopics (v1)\n");
    assert.deepEqual((await raw("KEYS", "*")).sort(), [v1.key("quiz", { topic: "a" }), v1.key("subtopicsX", { topic: "a" }), v2.key("subtopics", { topic: "a" })].sort());
    assert.deepEqual(json(await cli(["invalidate", "subtopics", "--version", "v2", "--json"])), {
      namespace: "subtopics",
      version: "v2",
      invalidation: "scan",
      deleted: 1,
    });
    assert.equal(await raw("DBSIZE"), 2);
    assert.equal(json(await cli(["invalidate", "subtopics", "--json"])).deleted, 0);
    v1.shutdown();
    v2.shutdown();
  });

  test("invalidate --invalidation generation: one counter moves, values go dead", async () => {
    await raw("FLUSHDB");
    const gen = sharedCache({ invalidation: "generation" });
    await gen.store("subtopics", { topic: "a" }, "before");
    const counter = await raw("GET", "cachette:gen:v1:subtopics");
    assert.ok(counter, "the namespace's counter exists");
    assert.equal(ok(await cli(["invalidate", "subtopics", "--invalidation", "generation"])).stdout, "invalidated namespace subtopics of v1 (generation counter moved on)\n");
    assert.equal(BigInt(await raw("GET", "cachette:gen:v1:subtopics")), BigInt(counter) + 1n);
    const fresh = sharedCache({ invalidation: "generation" });
    assert.equal(await fresh.lookup("subtopics", { topic: "a" }), undefined, "the value is dead for every instance");
    gen.shutdown();
    fresh.shutdown();
  });

  test("update-version: the old version's keys go, the new one's stay", async () => {
    await raw("FLUSHDB");
    const v1 = sharedCache({ version: "v1" });
    const v2 = sharedCache({ version: "v2" });
    await v1.store("subtopics", { topic: "a" }, 1);
    await v1.store("quiz", { topic: "a" }, 2);
    await v2.store("subtopics", { topic: "a" }, 3);
    assert.equal(ok(await cli(["update-version", "v2"])).stdout, "deleted 2 keys of version v1; deploy version v2\n");
    assert.deepEqual(await raw("KEYS", "*"), [v2.key("subtopics", { topic: "a" })]);
    // --version names the old one; an invalid new version removes nothing.
    failsWith(await cli(["update-version", "v:3", "--version", "v2"]), 2, /INVALID_OPTIONS/);
    assert.equal(await raw("DBSIZE"), 1);
    assert.deepEqual(json(await cli(["update-version", "v3", "--version", "v2", "--json"])), {
      from: "v2",
      to: "v3",
      invalidation: "scan",
      deleted: 1,
    });
    assert.equal(await raw("DBSIZE"), 0);
    // Updating to the version given would only delete it: refused, nothing removed.
    await v2.store("subtopics", { topic: "b" }, 4);
    failsWith(await cli(["update-version", "v2", "--version", "v2"]), 2, /that is the version given/);
    assert.equal(await raw("DBSIZE"), 1);
    v1.shutdown();
    v2.shutdown();
  });

  test("delete --dry-run in generation mode counts what deletePattern removes", async () => {
    await raw("FLUSHDB");
    // A version named "cachette" is a version like any other; only gen:, del: and lock: are the cache's own.
    await raw("MSET", "cachette:ns:1", "1", "cachette:gen:v1", "5", "cachette:del:v1:ns", "1", "cachette:lock:k", "t");
    const dry = json(await cli(["delete", "cachette:*", "--dry-run", "--invalidation", "generation", "--json"]));
    assert.equal(dry.matched, 1);
    const real = json(await cli(["delete", "cachette:*", "--invalidation", "generation", "--json"]));
    assert.equal(real.deleted, dry.matched, "the dry run counted what the delete removed");
    // Left: the cache's own keys, and the deletion counter of the namespace the delete removed from.
    assert.deepEqual((await raw("KEYS", "*")).sort(), ["cachette:del:cachette:ns", "cachette:del:v1:ns", "cachette:gen:v1", "cachette:lock:k"]);
  });

  test("delete: --dry-run counts through Redis's glob and deletes nothing; then deletes", async () => {
    await raw("FLUSHDB");
    // 2,600 matching keys over several SCAN pages, and near misses of the glob.
    const matching = Array.from({ length: 2600 }, (_, i) => `v1:q${"ab"[i % 2]}:${i}`);
    const others = ["v1:qc:1", "v1:q:1", "v1:qab", "v2:qa:1", "x:v1:qa:1", "v1:Qa:1"];
    const all = [...matching, ...others];
    for (let i = 0; i < all.length; i += 500) await raw("MSET", ...all.slice(i, i + 500).flatMap((k) => [k, "1"]));
    const pattern = "v1:q[ab]:*";
    const dry = await cli(["delete", pattern, "--dry-run"]);
    assert.equal(ok(dry).stdout, "2,600 keys match v1:q[ab]:* (dry run: nothing deleted)\n");
    assert.match(dry.stderr, /scanned: 2,600 keys match v1:q\[ab\]:\*/);
    assert.equal(await raw("DBSIZE"), all.length, "the dry run deleted nothing");
    assert.deepEqual(json(await cli(["delete", pattern, "--dry-run", "--json"])), { pattern, dryRun: true, matched: 2600 });
    assert.equal(json(await cli(["delete", "v1:q?:1", "--dry-run", "--json"])).matched, 2, "v1:qb:1 and v1:qc:1, as Redis reads ?");
    assert.equal(await raw("DBSIZE"), all.length);

    const real = await cli(["delete", pattern]);
    assert.equal(ok(real).stdout, "deleted 2,600 keys matching v1:q[ab]:*\n");
    assert.match(real.stderr, /scanning for v1:q\[ab\]:\*: [\d,]+ matching keys \(\d+ pages?\)/);
    assert.match(real.stderr, /deleting 2,600 matching keys/);
    assert.match(real.stderr, /done in [\d.]+ s/);
    assert.deepEqual((await raw("KEYS", "*")).sort(), [...others].sort());
    assert.deepEqual(json(await cli(["delete", "v1:*", "--json"])), { pattern: "v1:*", dryRun: false, matched: 4, deleted: 4 });
    assert.deepEqual((await raw("KEYS", "*")).sort(), ["v2:qa:1", "x:v1:qa:1"]);
  });

  test("get: the request key, the TTL left and the value", async () => {
    await raw("FLUSHDB");
    const c = sharedCache();
    const data = { topic: "Rust", level: 2 };
    await c.store("subtopics", data, ["ownership", { borrowing: true }], { ttl: 60 });
    const key = requestKey("v1", "subtopics", data);
    const r = ok(await cli(["get", "subtopics", JSON.stringify(data)]));
    assert.match(r.stdout, new RegExp(`^key {4}${key}\nttl {4}(59\\.\\d|60\\.0) s left\nvalue {2}\\[`));
    const entry = json(await cli(["get", "subtopics", '{"level":2,"topic":"Rust"}', "--json"]));
    assert.equal(entry.key, key, "canonical JSON: the order of members does not matter");
    assert.equal(entry.found, true);
    assert.ok(entry.ttlSeconds > 55 && entry.ttlSeconds <= 60, `ttl ${entry.ttlSeconds}`);
    assert.deepEqual(entry.value, ["ownership", { borrowing: true }]);

    await c.store("subtopics", "forever", "kept", { ttl: Infinity });
    assert.match(ok(await cli(["get", "subtopics", '"forever"'])).stdout, /\nttl {4}no expiry\nvalue {2}"kept"\n$/);
    assert.deepEqual(json(await cli(["get", "subtopics", '{"topic":"absent"}', "--json"])), {
      key: requestKey("v1", "subtopics", { topic: "absent" }),
      found: false,
    });
    assert.match(ok(await cli(["get", "subtopics", '{"topic":"absent"}'])).stdout, /\nvalue {2}\(not cached\)\n$/);

    const py = sharedCache({ version: "v2", keyFormat: "python" });
    await py.store("subtopics", { n: 1.5 }, "python's key");
    const p = json(await cli(["get", "subtopics", '{"n":1.5}', "--version", "v2", "--key-format", "python", "--json"]));
    assert.deepEqual([p.key, p.value], [requestKey("v2", "subtopics", { n: 1.5 }, "python"), "python's key"]);
    c.shutdown();
    py.shutdown();
  });

  test("--url and --token-file instead of the environment", async () => {
    await raw("FLUSHDB");
    await raw("SET", "v1:notes:1", '"one"');
    const file = join(TMP, "token");
    writeFileSync(file, `${bridge.up.token}\n`);
    const args = ["--url", bridge.up.url, "--token-file", file];
    assert.equal(json(await cli(["health", "--json", ...args], { env: {} })).status, "healthy");
    assert.equal(json(await cli(["delete", "v1:*", "--dry-run", "--json", ...args], { env: {} })).matched, 1);
    assert.equal(json(await cli(["stats", "--json", `--url=${bridge.up.url}`, `--token-file=${file}`], { env: {} })).keys, 1);
    // The options win over the environment.
    const env = { UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9", UPSTASH_REDIS_REST_TOKEN: WRONG_TOKEN };
    assert.equal(json(await cli(["invalidate", "notes", "--json", ...args], { env })).deleted, 1);

    const wrong = join(TMP, "wrong-token");
    writeFileSync(wrong, WRONG_TOKEN);
    failsWith(await cli(["stats", "--url", bridge.up.url, "--token-file", wrong], { env: {} }), 1, /Upstash refused the token at http:\/\/127\.0\.0\.1:\d+ \(UPSTASH_AUTH\)/);
    failsWith(await cli(["get", "notes", "1", "--url", bridge.up.url, "--token-file", wrong], { env: {} }), 1, /refused the token/);
    failsWith(await cli(["delete", "*", "--dry-run", "--url", bridge.up.url, "--token-file", wrong], { env: {} }), 1, /refused the token/);
    const empty = join(TMP, "empty-token");
    writeFileSync(empty, "\n");
    failsWith(await cli(["stats", "--url", bridge.up.url, "--token-file", empty], { env: {} }), 2, /token file .* is empty/);
  });

  test("the token is masked wherever it would show", async () => {
    // Pasted as a command or as a namespace by mistake, or stored inside a value.
    const asCommand = await cli([bridge.up.token]);
    failsWith(asCommand, 2, /unknown command "\[token\]"/);
    failsWith(await cli(["invalidate", `a:${bridge.up.token}`]), 2, /INVALID_KEY/);
    const c = sharedCache();
    await c.store("notes", { n: 1 }, `the token is ${bridge.up.token}`);
    c.shutdown();
    assert.equal(json(await cli(["get", "notes", '{"n":1}', "--json"])).value, "the token is [token]");
    const file = join(TMP, "token-2");
    writeFileSync(file, bridge.up.token);
    const human = ok(await cli(["get", "notes", '{"n":1}', "--url", bridge.up.url, "--token-file", file], { env: {} }));
    assert.match(human.stdout, /value {2}"the token is \[token\]"/);
  });

  test("Upstash unreachable: exit 1 for every command", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const env = { UPSTASH_REDIS_REST_URL: url, UPSTASH_REDIS_REST_TOKEN: bridge.up.token };
    const unreachable = new RegExp(`Upstash unreachable at ${url.replace(/\./g, "\\.")}`);
    for (const args of [["stats"], ["invalidate", "subtopics"], ["update-version", "v2"], ["delete", "v1:*"], ["delete", "v1:*", "--dry-run"], ["get", "subtopics", "{}"]]) {
      const r = await cli([...args, "--timeout", "1000"], { env });
      assert.equal(r.code, 1, `cachette ${args.join(" ")}: exit ${r.code}\n${r.stderr}`);
      assert.equal(r.stdout, "");
      assert.match(r.stderr, unreachable, `cachette ${args.join(" ")}`);
      assert.equal(r.stderr.trimEnd().split("\n").at(-1).startsWith("cachette: "), true);
    }
    const h = await cli(["health", "--json"], { env });
    assert.equal(h.code, 1);
    assert.equal(JSON.parse(h.stdout).status, "unhealthy", "--json still reports the health");
    assert.match(h.stderr, /^cachette: health: Upstash at .* is unhealthy: /);
  });
});
