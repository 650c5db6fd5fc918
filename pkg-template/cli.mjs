#!/usr/bin/env node
// `npx cachette <command>`: the operator CLI (Node.js only). It drives the package's own `Cache`
// (from the Node entry) over Upstash; plain Upstash REST requests are made only for what `Cache`
// does not expose: the TTL left of a key (PTTL) and the count of `delete --dry-run` (SCAN MATCH,
// the matching `deletePattern` itself uses). Exit codes: 0 ok, 1 failure, 2 usage.
import { readFileSync } from "node:fs";
import { Cache, CacheError, MemoryCache } from "./node.mjs";

const HELP = `Usage: cachette <command> [options]

Commands:
  stats                     Upstash's figures: keys, keyspace hits and misses, evictions, memory
  health                    PING Upstash: status and latency (exit 1 when not healthy)
  invalidate <namespace>    delete every request key of <namespace> under the version
  update-version <v>        move from --version (default v1) to <v>: delete every key of the
                            old version (then deploy <v>)
  delete <pattern>          delete every key matching the Redis glob <pattern>
                            (--dry-run: count the matching keys, delete nothing)
  get <namespace> <json>    the request key of <json> in <namespace>, its TTL left and value

Options:
  --url <url>               Upstash REST URL (default: $UPSTASH_REDIS_REST_URL)
  --token-file <path>       read the token from <path> (default: $UPSTASH_REDIS_REST_TOKEN);
                            a token is never accepted as an argument (--token is refused)
  --version <v>             the cache version (key prefix); default v1
  --key-format <f>          jcs (default) or python, as the cache's keyFormat
  --invalidation <mode>     scan (default) or generation, as the deployment's invalidation
  --timeout <ms>            time limit of each request to Upstash; default 5000
  --dry-run                 delete: count the matches only
  --json                    machine-readable output (one JSON object on stdout)
  -h, --help                this help

Exit codes: 0 ok, 1 failure (Upstash unreachable or refusing, a command error),
2 usage (unknown command or option, bad JSON, missing URL or token, missing argument).
`;

/** The cache's own keys in generation mode, which its deletePattern leaves alone. */
const OWN_KEYS = ["cachette:gen:", "cachette:del:", "cachette:lock:"];

const COMMANDS = { stats: 0, health: 0, invalidate: 1, "update-version": 1, delete: 1, get: 2 };
const VALUE_OPTIONS = ["--url", "--token-file", "--version", "--key-format", "--invalidation", "--timeout"];
const FLAG_OPTIONS = ["--dry-run", "--json", "--help", "-h"];

/** Secrets that output must never carry: the token, once known. */
const secrets = new Set();
if (process.env.UPSTASH_REDIS_REST_TOKEN) secrets.add(process.env.UPSTASH_REDIS_REST_TOKEN);

function redact(text) {
  let s = String(text);
  for (const secret of secrets) if (secret) s = s.split(secret).join("[token]");
  return s;
}

const out = (text) => process.stdout.write(redact(text) + "\n");
const err = (text) => process.stderr.write(redact(text) + "\n");

/** A failure with its exit code: 2 usage, 1 anything else. */
class Exit extends Error {
  constructor(code, message) {
    super(message);
    this.exitCode = code;
  }
}
const usage = (message) => new Exit(2, `${message} (cachette --help)`);

function parse(argv) {
  const opts = { positional: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      opts.positional.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      opts.positional.push(arg);
      continue;
    }
    // Only the name of an option is ever repeated in a message, never what follows `=`.
    const eq = arg.indexOf("=");
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (/^-+token$/.test(name)) {
      throw usage(
        "--token is refused: a token given as an argument shows in the process list and in shell history; " +
          "set UPSTASH_REDIS_REST_TOKEN or pass --token-file <path>",
      );
    }
    if (FLAG_OPTIONS.includes(name)) {
      if (eq > 0 && name !== arg) throw usage(`${name} takes no value`);
      opts[name === "-h" ? "help" : name.slice(2)] = true;
    } else if (VALUE_OPTIONS.includes(name)) {
      let value;
      if (name !== arg) value = arg.slice(eq + 1);
      else if (i + 1 < argv.length) value = argv[++i];
      else throw usage(`${name} needs a value`);
      opts[name.slice(2)] = value;
    } else {
      throw usage(`unknown option ${name}`);
    }
  }
  return opts;
}

/** URL and token from the options or the environment; exit 2 when either is missing. */
function connection(opts) {
  const url = opts.url ?? process.env.UPSTASH_REDIS_REST_URL;
  if (!url) throw usage("no Upstash URL: set UPSTASH_REDIS_REST_URL or pass --url <url>");
  let token;
  if (opts["token-file"] !== undefined) {
    try {
      token = readFileSync(opts["token-file"], "utf8").trim();
    } catch (e) {
      throw usage(`cannot read the token file ${opts["token-file"]}: ${e.code ?? e.message}`);
    }
    secrets.add(token);
    if (!token) throw usage(`the token file ${opts["token-file"]} is empty`);
  } else {
    token = process.env.UPSTASH_REDIS_REST_TOKEN;
    if (!token) throw usage("no Upstash token: set UPSTASH_REDIS_REST_TOKEN or pass --token-file <path>");
  }
  let timeoutMs = 5000;
  if (opts.timeout !== undefined) {
    timeoutMs = Number(opts.timeout);
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 600_000) {
      throw usage("--timeout takes milliseconds, an integer from 1 to 600000");
    }
  }
  return { url: url.replace(/\/+$/, ""), token, timeoutMs };
}

const USAGE_CODES = new Set(["INVALID_OPTIONS", "INVALID_KEY", "INVALID_PATTERN"]);

/** A CacheError (or anything thrown) as an exit: bad arguments 2, the rest 1. */
function failure(e, conn, what) {
  if (e instanceof Exit) return e;
  if (e instanceof CacheError) {
    if (USAGE_CODES.has(e.code)) return usage(`${e.message} (${e.code})`);
    const where = conn ? ` at ${conn.url}` : "";
    if (e.code === "UPSTASH_TRANSPORT" || e.code === "TIMEOUT") {
      return new Exit(1, `${what}: Upstash unreachable${where}: ${e.message} (${e.code})`);
    }
    if (e.code === "UPSTASH_AUTH") return new Exit(1, `${what}: Upstash refused the token${where} (${e.code})`);
    return new Exit(1, `${what}: ${e.message} (${e.code})`);
  }
  return new Exit(1, `${what}: ${e?.message ?? e}`);
}

/** One command as a plain Upstash REST request (the reply's `result`); errors as CacheError codes. */
async function rest(conn, command) {
  let response;
  try {
    response = await fetch(conn.url, {
      method: "POST",
      headers: { authorization: `Bearer ${conn.token}`, "content-type": "application/json" },
      body: JSON.stringify(command),
      signal: AbortSignal.timeout(conn.timeoutMs),
    });
  } catch (e) {
    const timeout = e?.name === "TimeoutError";
    throw new CacheError(timeout ? "TIMEOUT" : "UPSTASH_TRANSPORT", timeout ? `no answer within ${conn.timeoutMs} ms` : `${e?.cause?.code ?? e?.message ?? e}`);
  }
  if (response.status === 401 || response.status === 403) throw new CacheError("UPSTASH_AUTH", `HTTP ${response.status}`);
  if (response.status >= 500) throw new CacheError("UPSTASH_TRANSPORT", `HTTP ${response.status}`);
  let body;
  try {
    body = await response.json();
  } catch {
    throw new CacheError("UPSTASH_PROTOCOL", `HTTP ${response.status}: the reply is not JSON`);
  }
  if (body && typeof body.error === "string") throw new CacheError("UPSTASH_COMMAND", body.error);
  if (!body || !("result" in body)) throw new CacheError("UPSTASH_PROTOCOL", `HTTP ${response.status}: no result`);
  return body.result;
}

/**
 * A progress line on stderr: rewritten in place on a terminal, otherwise a line at most every
 * `every` ms (and the last one on `done`).
 */
function progress(every = 1000) {
  const tty = process.stderr.isTTY;
  let last = 0;
  let pending = null;
  return {
    update(text, force = false) {
      const now = Date.now();
      if (tty) {
        process.stderr.write(`\r\x1b[K${redact(text)}`);
      } else if (force || now - last >= every) {
        err(text);
        last = now;
        pending = null;
        return;
      } else {
        pending = text;
        return;
      }
      last = now;
    },
    done() {
      if (tty) process.stderr.write("\n");
      else if (pending !== null) err(pending);
      pending = null;
    },
  };
}

const n = (x) => x.toLocaleString("en-US");

/**
 * Counts the keys matching `pattern` with SCAN MATCH COUNT 1000, page by page, reporting each
 * page to `onPage(matched, pages)`. In generation mode `deletePattern` leaves `cachette:*`
 * counters and locks alone, so they are not counted.
 */
async function countMatches(conn, pattern, generation, onPage) {
  let cursor = "0";
  let matched = 0;
  let pages = 0;
  do {
    const reply = await rest(conn, ["SCAN", cursor, "MATCH", pattern, "COUNT", "1000"]);
    if (!Array.isArray(reply) || reply.length !== 2 || !Array.isArray(reply[1])) {
      throw new CacheError("UPSTASH_PROTOCOL", "SCAN: unexpected reply");
    }
    cursor = String(reply[0]);
    // Generation mode's deletePattern leaves the cache's own keys alone (counters and locks).
    const keys = generation ? reply[1].filter((k) => !OWN_KEYS.some((p) => String(k).startsWith(p))) : reply[1];
    matched += keys.length;
    pages++;
    onPage(matched, pages);
  } while (cursor !== "0");
  return matched;
}

async function main(argv) {
  const opts = parse(argv);
  if (opts.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const [command, ...args] = opts.positional;
  if (command === undefined) throw usage("no command given");
  if (!Object.hasOwn(COMMANDS, command)) throw usage(`unknown command ${JSON.stringify(command)}`);
  const want = COMMANDS[command];
  if (args.length < want) {
    const names = { invalidate: "<namespace>", "update-version": "<v>", delete: "<pattern>", get: "<namespace> <json>" };
    throw usage(`${command} needs ${names[command]}`);
  }
  if (args.length > want) throw usage(`${command} takes ${want === 0 ? "no argument" : `${want} argument${want > 1 ? "s" : ""}`}, got ${args.length}`);
  if (opts["dry-run"] && command !== "delete") throw usage("--dry-run is an option of delete only");
  const invalidation = opts.invalidation ?? "scan";
  if (!["scan", "generation"].includes(invalidation)) throw usage("--invalidation is scan or generation");
  let data;
  if (command === "get") {
    try {
      data = JSON.parse(args[1]);
    } catch (e) {
      throw usage(`get: <json> is not JSON: ${e.message}`);
    }
  }
  const conn = connection(opts);
  let cache;
  try {
    cache = new Cache({
      version: opts.version ?? "v1",
      keyFormat: opts["key-format"] ?? "jcs",
      invalidation,
      cleanupInterval: 0,
      fallback: false,
      upstash: { url: conn.url, token: conn.token, timeoutMs: conn.timeoutMs, retries: 2 },
    });
  } catch (e) {
    throw failure(e, null, "options");
  }
  try {
    return await run(command, args, data, opts, conn, cache, invalidation === "generation");
  } catch (e) {
    throw failure(e, conn, command);
  } finally {
    cache.shutdown();
  }
}

async function run(command, args, data, opts, conn, cache, generation) {
  const json = opts.json === true;
  const version = cache.version;
  switch (command) {
    case "health": {
      const h = await cache.health();
      if (json) out(JSON.stringify(h));
      else out(`${h.status} (${h.backend}, ${h.latencyMs.toFixed(1)} ms)${h.error ? `: ${h.error}` : ""}`);
      if (h.status !== "healthy") throw new Exit(1, `health: Upstash at ${conn.url} is ${h.status}: ${h.error ?? "no reason given"}`);
      return 0;
    }
    case "stats": {
      // INFO failing leaves `upstash` out of stats(); a PING first says why (as a CacheError).
      const t0 = performance.now();
      await rest(conn, ["PING"]);
      const latencyMs = performance.now() - t0;
      const s = await cache.stats();
      if (!s.upstash) throw new Exit(1, `stats: Upstash at ${conn.url} did not answer INFO`);
      const u = s.upstash;
      const lookups = u.keyspaceHits + u.keyspaceMisses;
      const report = {
        version,
        keys: s.keys,
        keyspaceHits: u.keyspaceHits,
        keyspaceMisses: u.keyspaceMisses,
        hitRatePercent: lookups ? Math.round((10_000 * u.keyspaceHits) / lookups) / 100 : 0,
        evictedKeys: u.evictedKeys,
        usedMemoryBytes: u.usedMemoryBytes,
        latencyMs: Math.round(latencyMs * 100) / 100,
      };
      if (json) out(JSON.stringify(report));
      else {
        out(`Upstash at ${conn.url}`);
        out(`  keys              ${n(report.keys)}`);
        out(`  keyspace hits     ${n(report.keyspaceHits)}`);
        out(`  keyspace misses   ${n(report.keyspaceMisses)}`);
        out(`  hit rate          ${report.hitRatePercent}%`);
        out(`  evicted keys      ${n(report.evictedKeys)}`);
        out(`  used memory       ${n(report.usedMemoryBytes)} B`);
        out(`  latency (PING)    ${report.latencyMs} ms`);
      }
      return 0;
    }
    case "invalidate": {
      const [namespace] = args;
      const deleted = await cache.invalidateNamespace(namespace);
      if (json) out(JSON.stringify({ namespace, version, invalidation: generation ? "generation" : "scan", deleted: generation ? null : deleted }));
      else if (generation) out(`invalidated namespace ${namespace} of ${version} (generation counter moved on)`);
      else out(`deleted ${n(deleted)} key${deleted === 1 ? "" : "s"} of namespace ${namespace} (${version})`);
      return 0;
    }
    case "update-version": {
      const [next] = args;
      // Checked before anything is removed: an invalid new version must not cost the old keys.
      new Cache({ version: next, cleanupInterval: 0 }).shutdown();
      if (next === version) {
        throw usage(`update-version ${next}: that is the version given (--version ${version}); nothing would be kept`);
      }
      const deleted = await cache.updateVersion(next);
      if (json) out(JSON.stringify({ from: version, to: next, invalidation: generation ? "generation" : "scan", deleted: generation ? null : deleted }));
      else if (generation) out(`invalidated version ${version} (generation counter moved on); deploy version ${next}`);
      else out(`deleted ${n(deleted)} key${deleted === 1 ? "" : "s"} of version ${version}; deploy version ${next}`);
      return 0;
    }
    case "delete": {
      const [pattern] = args;
      // The package's own rules for a pattern (empty or over 32 KiB: INVALID_PATTERN).
      const probe = new MemoryCache({ cleanupInterval: 0 });
      try {
        probe.deletePattern(pattern);
      } finally {
        probe.shutdown();
      }
      const line = progress();
      const t0 = Date.now();
      const matched = await countMatches(conn, pattern, generation, (m, pages) =>
        line.update(`scanning for ${pattern}: ${n(m)} matching key${m === 1 ? "" : "s"} (${n(pages)} page${pages === 1 ? "" : "s"})`),
      );
      line.update(`scanned: ${n(matched)} key${matched === 1 ? "" : "s"} match ${pattern}`, true);
      if (opts["dry-run"]) {
        line.done();
        if (json) out(JSON.stringify({ pattern, dryRun: true, matched }));
        else out(`${n(matched)} key${matched === 1 ? "" : "s"} match ${pattern} (dry run: nothing deleted)`);
        return 0;
      }
      let deleted;
      if (matched === 0) {
        deleted = 0;
      } else {
        const started = Date.now();
        const tick = setInterval(
          () => line.update(`deleting ${n(matched)} matching key${matched === 1 ? "" : "s"}: ${((Date.now() - started) / 1000).toFixed(1)} s`),
          250,
        );
        line.update(`deleting ${n(matched)} matching key${matched === 1 ? "" : "s"}`, true);
        try {
          deleted = await cache.deletePattern(pattern);
        } finally {
          clearInterval(tick);
        }
      }
      line.update(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s`, true);
      line.done();
      if (json) out(JSON.stringify({ pattern, dryRun: false, matched, deleted }));
      else out(`deleted ${n(deleted)} key${deleted === 1 ? "" : "s"} matching ${pattern}`);
      return 0;
    }
    case "get": {
      const [namespace] = args;
      const key = cache.key(namespace, data);
      const value = await cache.get(key);
      const found = value !== undefined;
      // PTTL: -2 missing, -1 no expiry, else milliseconds left.
      const pttl = found ? Number(await rest(conn, ["PTTL", key])) : -2;
      const ttlSeconds = pttl >= 0 ? pttl / 1000 : null;
      if (json) out(JSON.stringify(found ? { key, found, ttlSeconds, value } : { key, found }));
      else {
        out(`key    ${key}`);
        if (!found) out("value  (not cached)");
        else {
          out(`ttl    ${pttl >= 0 ? `${ttlSeconds.toFixed(1)} s left` : pttl === -1 ? "no expiry" : "gone since the read"}`);
          out(`value  ${JSON.stringify(value, null, 2)}`);
        }
      }
      return 0;
    }
  }
  throw usage(`unknown command ${JSON.stringify(command)}`);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    const exit = e instanceof Exit ? e : failure(e, null, "cachette");
    err(`cachette: ${exit.message}`);
    process.exitCode = exit.exitCode;
  },
);
