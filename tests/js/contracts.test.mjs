// The installed package's typings against what the package does at run time: the shapes of
// `stats()` (`CacheStats`, with its nested `upstash`) and `health()` (`HealthReport`) from
// MemoryCache, Cache on memory and Cache on Upstash, the `CacheErrorCode` union against the
// codes the package's errors carry, and the option bags (`MemoryCacheOptions`, `CacheOptions`,
// `UpstashOptions`, `SetOptions`, `GetOrSetOptions`, `WarmOptions`) against what the option readers
// accept (MemoryCache's getOrSet and getOrSetEntry for `GetOrSetOptions`). The
// typings are read from the installed package's .d.ts with the TypeScript compiler API
// (typescript/unstable/sync); the objects and the readers' behaviour come from the package.
//
// Each shape is defined once in Rust (StatsSnapshot::fields, UpstashStats::fields,
// HealthReport::fields; Error::CODES, which tests/contracts.rs checks against the union; the
// name lists and typed reads of src/wasm/value.rs), so a field, code or option added, dropped,
// renamed or retyped on one side only fails here.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { API, SymbolFlags, TypeFlags } from "typescript/unstable/sync";
import { Cache, CacheError, MemoryCache, PROJECT, describeValue, sleep } from "./package.mjs";
import { startUpstash } from "./upstash-server.mjs";

// ---------------------------------------------------------------------------------------------
// The typings, as the TypeScript checker sees them through `import type ... from "cachette"`.

/**
 * A type as the contract needs it: the runtime kinds it admits (`typeof` results), the string
 * literals it admits, and for an object type its properties.
 */
function describeType(checker, type) {
  const anything = TypeFlags.Unknown | TypeFlags.Any | TypeFlags.TypeParameter;
  const t = type.flags & anything ? type : (checker.getNonNullableType(type) ?? type);
  const out = { text: checker.typeToString(t), kinds: new Set(), literals: new Set(), props: null };
  for (const m of t.isUnionType() ? t.getTypes() : [t]) {
    if (m.flags & (TypeFlags.Boolean | TypeFlags.BooleanLiteral)) out.kinds.add("boolean");
    else if (m.flags & TypeFlags.StringLiteral) out.literals.add(m.value);
    else if (m.flags & TypeFlags.String) out.kinds.add("string");
    else if (m.flags & TypeFlags.Number) out.kinds.add("number");
    else if (m.flags & (TypeFlags.Unknown | TypeFlags.Any | TypeFlags.TypeParameter)) {
      for (const kind of ["string", "number", "boolean", "object", "function", "bigint", "symbol", "undefined"]) out.kinds.add(kind);
    } else if (m.flags & TypeFlags.Object) {
      out.kinds.add("object");
      out.props = properties(checker, m);
    } else throw new Error(`the contract cannot read the type ${checker.typeToString(m)}`);
  }
  return out;
}

/** The properties of an object type: name -> { optional, type }. */
function properties(checker, type) {
  const props = new Map();
  for (const p of checker.getPropertiesOfType(type)) {
    props.set(p.name, {
      optional: (p.flags & SymbolFlags.Optional) !== 0,
      type: describeType(checker, checker.getTypeOfSymbol(p)),
    });
  }
  return props;
}

/** The option bag interfaces the contract reads. */
const OPTION_BAGS = ["MemoryCacheOptions", "CacheOptions", "UpstashOptions", "SetOptions", "GetOrSetOptions", "WarmOptions"];

/**
 * The properties of an option bag interface: name -> { text, kinds, literals }, where
 * kinds are the runtime kinds the property's type admits: "number", "string", "boolean",
 * "function", "array" (of strings), "object".
 */
function optionProperties(checker, type) {
  const props = new Map();
  for (const p of checker.getPropertiesOfType(type)) {
    const full = checker.getTypeOfSymbol(p);
    const t = checker.getNonNullableType(full) ?? full;
    const out = { text: checker.typeToString(t), kinds: new Set(), literals: [] };
    for (const m of t.isUnionType() ? t.getTypes() : [t]) {
      const text = checker.typeToString(m);
      if (m.flags & (TypeFlags.Boolean | TypeFlags.BooleanLiteral)) out.kinds.add("boolean");
      else if (m.flags & TypeFlags.StringLiteral) out.literals.push(m.value);
      else if (m.flags & (TypeFlags.String | TypeFlags.TemplateLiteral)) out.kinds.add("string");
      else if (m.flags & TypeFlags.Number) out.kinds.add("number");
      else if (text === "string[]") out.kinds.add("array");
      else if (text.startsWith("(") && text.includes("=>")) out.kinds.add("function");
      else if (m.flags & TypeFlags.Object) out.kinds.add("object");
      else throw new Error(`the contract cannot read the option type ${text} of ${p.name}`);
    }
    props.set(p.name, out);
  }
  return props;
}

/** Reads `CacheStats`, `HealthReport`, `CacheErrorCode` and the option bags from the installed package. */
function readTypings() {
  const dir = mkdtempSync(join(PROJECT, "contracts-"));
  try {
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          module: "nodenext",
          moduleResolution: "nodenext",
          target: "es2022",
          lib: ["esnext", "dom"],
          types: [],
        },
        files: ["contract.mts"],
      }),
    );
    writeFileSync(
      join(dir, "contract.mts"),
      "import type {\n" +
        `  CacheEntry, CacheErrorCode, CacheStats, HealthReport, ${OPTION_BAGS.join(", ")}\n` +
        '} from "cachette";\n' +
        `export type Contract = [CacheEntry, CacheErrorCode, CacheStats, HealthReport, ${OPTION_BAGS.join(", ")}];\n`,
    );
    const api = new API({ cwd: dir });
    try {
      const project = api.updateSnapshot({ openProject: join(dir, "tsconfig.json") }).getProjects()[0];
      const diagnostics = project.program.getSemanticDiagnostics();
      assert.deepEqual(diagnostics.map((d) => d.text ?? d.messageText ?? d), [], "the typings type-check");
      const { checker } = project;
      const file = project.program.getSourceFile(join(dir, "contract.mts"));
      const cachette = checker.getSymbolAtLocation(file.statements[0].moduleSpecifier);
      assert.ok(cachette, 'the checker resolves "cachette"');
      const declared = (name) => {
        let sym = checker.getMemberInModuleExports(cachette, name);
        assert.ok(sym, `"cachette" exports no type ${name}`);
        if (sym.flags & SymbolFlags.Alias) sym = checker.getAliasedSymbol(sym);
        return checker.getDeclaredTypeOfSymbol(sym);
      };
      const codes = declared("CacheErrorCode");
      return {
        stats: properties(checker, declared("CacheStats")),
        health: properties(checker, declared("HealthReport")),
        entry: properties(checker, declared("CacheEntry")),
        options: Object.fromEntries(OPTION_BAGS.map((name) => [name, optionProperties(checker, declared(name))])),
        errorCodes: (codes.isUnionType() ? codes.getTypes() : [codes]).map((t) => {
          assert.ok(t.flags & TypeFlags.StringLiteral, `CacheErrorCode member ${checker.typeToString(t)}`);
          return t.value;
        }),
      };
    } finally {
      api.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Runtime objects against a type.

/**
 * What is wrong with the runtime object `value` as an instance of `props` (named `where`): keys
 * the type lacks, required properties missing, values of the wrong kind. Every property present
 * is recorded in `seen` (as "path"), so that a property no object ever carries shows up too.
 */
function mismatches(value, props, where, seen, path = "") {
  const problems = [];
  if (value === null || typeof value !== "object" || Object.getPrototypeOf(value) !== Object.prototype) {
    return [`${where}: not a plain object: ${describeValue(value)}`];
  }
  for (const key of Object.keys(value)) {
    if (!props.has(key)) problems.push(`${where}: runtime key "${path}${key}" is not in the type`);
  }
  for (const [key, { optional, type }] of props) {
    if (!(key in value)) {
      if (!optional) problems.push(`${where}: required property "${path}${key}" is missing`);
      continue;
    }
    seen.add(path + key);
    const v = value[key];
    if (type.literals.has(v)) continue;
    if (!type.kinds.has(typeof v)) {
      problems.push(`${where}: "${path}${key}" is ${describeValue(v)}, typed ${type.text}`);
    } else if (typeof v === "object" && type.props) {
      problems.push(...mismatches(v, type.props, where, seen, `${path}${key}.`));
    }
  }
  return problems;
}

/** Every property path of `props`, nested ones included. */
function allPaths(props, path = "") {
  return [...props].flatMap(([key, { type }]) => [path + key, ...(type.props ? allPaths(type.props, `${path}${key}.`) : [])]);
}

// ---------------------------------------------------------------------------------------------

let typings;
let up;

before(async () => {
  typings = readTypings();
  up = await startUpstash();
});
after(() => up?.stop());

/** A Cache on the bridge: short timeout, no retry, no timer. */
const shared = (extra = {}) =>
  new Cache({
    cleanupInterval: 0,
    ...extra,
    upstash: { url: up.url, token: up.token, timeoutMs: 300, retries: 0, ...extra.upstash },
  });

/** `stats()` objects from every kind of cache, in the states that change their shape. */
async function statsSamples() {
  const samples = {};
  const mem = new MemoryCache({ cleanupInterval: 0, maxBytes: 1 << 20 });
  mem.set("a", { x: 1 });
  mem.get("a");
  mem.get("missing");
  samples["MemoryCache"] = mem.stats();
  mem.shutdown();
  samples["MemoryCache after shutdown"] = mem.stats();

  const cache = new Cache({ cleanupInterval: 60 });
  await cache.set("a", 1);
  await cache.get("a");
  samples["Cache (memory)"] = await cache.stats();
  cache.shutdown();
  samples["Cache (memory) after shutdown"] = await cache.stats();

  await up.faults({ mode: "none" });
  const remote = shared({ localTtl: 5 });
  await remote.set("a", 1);
  await remote.get("a");
  await remote.get("missing");
  samples["Cache (Upstash)"] = await remote.stats();
  await up.faults({ mode: "reset" });
  await remote.get("b");
  samples["Cache (Upstash, falling back)"] = await remote.stats();
  await up.faults({ mode: "none" });
  remote.shutdown();
  return samples;
}

/** `health()` objects from every kind of cache, healthy and not. */
async function healthSamples() {
  const samples = {};
  const cache = new Cache({ cleanupInterval: 0 });
  samples["Cache (memory)"] = await cache.health();
  cache.shutdown();
  samples["Cache (memory) after shutdown"] = await cache.health();

  await up.faults({ mode: "none" });
  const remote = shared();
  samples["Cache (Upstash)"] = await remote.health();
  await up.faults({ mode: "reset" });
  samples["Cache (Upstash) unreachable"] = await remote.health();
  await up.faults({ mode: "none" });
  remote.shutdown();
  samples["Cache (Upstash) after shutdown"] = await remote.health();
  return samples;
}

/** `getOrSetEntry()` results of every status, from both tiers. */
async function entrySamples() {
  const samples = {};
  const take = async (label, c, options, generator = () => "v") => {
    samples[label] = await c.getOrSetEntry("ns", label, generator, options);
  };
  const realNow = Date.now;
  const clock = { t: realNow() };
  Date.now = () => clock.t;
  try {
    const c = new Cache({ cleanupInterval: 0, ttl: 1, grace: 60 });
    await take("miss", c);
    await take("miss", c); // a hit now
    samples.hit = samples.miss;
    samples.miss = await c.getOrSetEntry("ns", "other", () => "v");
    const slow = () => new Promise((r) => setTimeout(() => r("v"), 5));
    const [, joined] = await Promise.all([c.getOrSetEntry("ns", "j", slow), c.getOrSetEntry("ns", "j", slow)]);
    samples.joined = joined;
    clock.t += 2_000;
    await take("stale", c, { staleWhileRevalidate: true });
    samples.stale = await c.getOrSetEntry("ns", "miss", () => "v", { staleWhileRevalidate: true });
    samples["stale-error"] = await c.getOrSetEntry("ns", "other", () => { throw new Error("x"); }, { staleIfError: true });
    c.shutdown();
  } finally {
    Date.now = realNow;
  }
  await up.faults({ mode: "none" });
  const remote = shared();
  samples["Upstash miss"] = await remote.getOrSetEntry("ns", "u", () => ({ v: 1 }));
  samples["Upstash hit"] = await remote.getOrSetEntry("ns", "u", () => ({ v: 1 }));
  remote.shutdown();
  return samples;
}

describe("typings vs runtime objects", () => {
  test("getOrSetEntry() results match CacheEntry, every status among them", async () => {
    const seen = new Set();
    const problems = [];
    const statuses = new Set();
    for (const [where, value] of Object.entries(await entrySamples())) {
      problems.push(...mismatches(value, typings.entry, `${where} getOrSetEntry()`, seen));
      statuses.add(value.status);
    }
    for (const p of allPaths(typings.entry).filter((p) => !seen.has(p))) problems.push(`CacheEntry.${p} is typed but no result carries it`);
    assert.deepEqual(problems, []);
    assert.deepEqual([...statuses].sort(), [...typings.entry.get("status").type.literals].sort(), "every CacheStatus is produced");
  });

  for (const [name, typeName, samples] of [
    ["stats()", "CacheStats", statsSamples],
    ["health()", "HealthReport", healthSamples],
  ]) {
    test(`${name} matches ${typeName}`, async () => {
      const props = name === "stats()" ? typings.stats : typings.health;
      const seen = new Set();
      const problems = [];
      for (const [where, value] of Object.entries(await samples())) {
        problems.push(...mismatches(value, props, `${where} ${name}`, seen));
      }
      // The persistent tier's figures exist only in browsers (`persist`): their shape is
      // checked there, in tests/www/persist.test.mjs.
      const neverSeen = allPaths(props).filter((p) => !seen.has(p) && !(name === "stats()" && /^persistent/.test(p)));
      for (const p of neverSeen) problems.push(`${typeName}.${p} is typed but no ${name} object carries it`);
      assert.deepEqual(problems, [], `${name} and ${typeName} in the installed index.d.ts disagree`);
    });
  }
});

describe("CacheErrorCode vs the codes the package produces", () => {
  test("every code is produced, and every error's code is in the union", async () => {
    const produced = new Map();
    const expectCode = async (what, fn) => {
      try {
        const r = await fn();
        produced.set(what, `no error (got ${describeValue(r)})`);
      } catch (e) {
        produced.set(what, e instanceof CacheError ? e.code : `not a CacheError: ${describeValue(e)}`);
      }
    };
    const mem = () => new MemoryCache({ cleanupInterval: 0 });

    await expectCode("options out of range", () => new MemoryCache({ maxEntries: 0 }));
    await expectCode("a namespace with ':'", () => mem().key("a:b", {}));
    await expectCode("an empty pattern", () => mem().deletePattern(""));
    await expectCode("set(key, undefined)", () => mem().set("k", undefined));
    await expectCode("a value over maxBytes", () => new MemoryCache({ cleanupInterval: 0, maxBytes: 8 }).set("k", "x".repeat(64)));
    await expectCode("a generator that throws", () =>
      mem().getOrSet("ns", {}, () => {
        throw new Error("no");
      }),
    );
    await expectCode("use after shutdown", () => {
      const c = mem();
      c.shutdown();
      return c.get("k");
    });

    await up.faults({ mode: "none" });
    await expectCode("a wrong Upstash token", () => shared({ fallback: false, upstash: { token: "wrong-token" } }).get("k"));
    await up.raw("DEL", "list");
    await up.raw("LPUSH", "list", "x");
    await expectCode("GET on a list (WRONGTYPE)", () => shared({ fallback: false }).get("list"));
    for (const [what, fault] of [
      ["Upstash resets the connection", { mode: "reset" }],
      ["Upstash answers past the timeout", { mode: "delay", ms: 1500 }],
      ["Upstash answers with a body that is not JSON", { mode: "malformed" }],
    ]) {
      await up.faults(fault);
      await expectCode(what, () => shared({ fallback: false }).get("k"));
      await up.faults({ mode: "none" });
    }
    await sleep(10);

    const union = new Set(typings.errorCodes);
    const codes = new Set(produced.values());
    const problems = [];
    for (const [what, code] of produced) {
      if (!union.has(code)) problems.push(`${what}: ${code}, which is not a CacheErrorCode`);
    }
    for (const code of union) {
      if (!codes.has(code)) problems.push(`CacheErrorCode "${code}" is never produced by these cases`);
    }
    assert.deepEqual(problems, [], `codes produced: ${JSON.stringify(Object.fromEntries(produced))}`);
  });
});

// ---------------------------------------------------------------------------------------------
// Option bags: the names each reader accepts (it lists them when it refuses an unknown one) and
// the kind of value it takes for each, against the interfaces' properties.

/** Runs a reader of each bag on `bag`; resolves to the error it threw or rejected with, or null. */
const READERS = {
  MemoryCacheOptions: [["new MemoryCache(bag)", (bag) => new MemoryCache(bag).shutdown()]],
  CacheOptions: [["new Cache(bag)", (bag) => new Cache(bag).shutdown()]],
  UpstashOptions: [["new Cache({ upstash: bag })", (bag) => new Cache({ upstash: bag }).shutdown()]],
  SetOptions: [
    ["MemoryCache.set(k, v, bag)", (bag) => withCache(new MemoryCache({ cleanupInterval: 0 }), (c) => c.set("k", 1, bag))],
    ["Cache.set(k, v, bag)", (bag) => withCache(new Cache({ cleanupInterval: 0 }), (c) => c.set("k", 1, bag))],
    ["MemoryCache.store(ns, d, v, bag)", (bag) => withCache(new MemoryCache({ cleanupInterval: 0 }), (c) => c.store("ns", 1, 1, bag))],
    ["Cache.store(ns, d, v, bag)", (bag) => withCache(new Cache({ cleanupInterval: 0 }), (c) => c.store("ns", 1, 1, bag))],
  ],
  GetOrSetOptions: [
    ["MemoryCache.getOrSet(ns, d, g, bag)", (bag) => withCache(new MemoryCache({ cleanupInterval: 0 }), (c) => c.getOrSet("ns", 1, () => 1, bag))],
    ["MemoryCache.getOrSetEntry(ns, d, g, bag)", (bag) => withCache(new MemoryCache({ cleanupInterval: 0 }), (c) => c.getOrSetEntry("ns", 1, async () => 1, bag))],
    ["Cache.getOrSet(ns, d, g, bag)", (bag) => withCache(new Cache({ cleanupInterval: 0 }), (c) => c.getOrSet("ns", 1, () => 1, bag))],
    ["Cache.getOrSetEntry(ns, d, g, bag)", (bag) => withCache(new Cache({ cleanupInterval: 0 }), (c) => c.getOrSetEntry("ns", 1, () => 1, bag))],
  ],
  WarmOptions: [["Cache.warm({}, bag)", (bag) => withCache(new Cache({ cleanupInterval: 0 }), (c) => c.warm({}, bag))]],
};

async function withCache(cache, fn) {
  try {
    return await fn(cache);
  } finally {
    cache.shutdown();
  }
}

async function failure(read, bag) {
  try {
    await read(bag);
    return null;
  } catch (e) {
    return e;
  }
}

/** The names a reader accepts, from its refusal of an unknown one ("...; known: a, b, c"). */
async function acceptedNames(read) {
  const probe = "notAnOption";
  const e = await failure(read, { [probe]: 1 });
  assert.equal(e?.code, "INVALID_OPTIONS", `an unknown option is refused (got ${describeValue(e)})`);
  const m = /has an unknown option "notAnOption"; known: (.*)$/.exec(e.message);
  assert.ok(m, `the refusal lists the known names: ${e.message}`);
  return m[1].split(", ");
}

/** A value of a kind the property's type admits. */
function sample({ kinds, literals }) {
  if (literals.length) return literals[0];
  if (kinds.has("number")) return 1;
  if (kinds.has("string")) return "s";
  if (kinds.has("boolean")) return true;
  if (kinds.has("function")) return () => 0;
  if (kinds.has("array")) return ["a"];
  if (kinds.has("object")) return {};
  throw new Error("no sample");
}

/** Whether `message` is a reader's refusal of the kind of value given for `name`. */
const wrongKind = (message, name) =>
  ["a number", "a string", "a boolean", "a function", "an object", "an array of strings", '"jcs" or "python"']
    .some((kind) => message.includes(`${name} must be ${kind}`)) || message.includes(`${name} must hold only strings`);

describe("option bags vs the readers", () => {
  test("each interface has exactly the names its readers accept", async () => {
    const problems = [];
    for (const [bag, readers] of Object.entries(READERS)) {
      const typed = [...typings.options[bag].keys()].sort();
      for (const [where, read] of readers) {
        const accepted = (await acceptedNames(read)).sort();
        for (const name of accepted) {
          if (!typed.includes(name)) problems.push(`${where} accepts "${name}", which ${bag} lacks`);
          const e = await failure(read, { [name]: undefined });
          if (e && /unknown option/.test(e.message)) problems.push(`${where} lists "${name}" as known but refuses it: ${e.message}`);
        }
        for (const name of typed) {
          if (!accepted.includes(name)) problems.push(`${bag}.${name} is typed but ${where} refuses it`);
        }
      }
    }
    assert.deepEqual(problems, [], "the option interfaces and the option readers disagree");
  });

  test("each property's type is the kind of value its readers take, and a wrong kind names the field", async () => {
    const problems = [];
    for (const [bag, readers] of Object.entries(READERS)) {
      for (const [name, type] of typings.options[bag]) {
        for (const [where, read] of readers) {
          const good = await failure(read, { [name]: sample(type) });
          if (good && wrongKind(good.message, name)) {
            problems.push(`${where}: ${bag}.${name} is typed ${type.text}, but ${describeValue(sample(type))} is refused: ${good.message}`);
          }
          const bad = await failure(read, { [name]: Symbol("wrong") });
          if (bad?.code !== "INVALID_OPTIONS" || !bad.message.includes(name)) {
            problems.push(`${where}: a symbol as ${name} gives ${describeValue(bad)}, not INVALID_OPTIONS naming "${name}"`);
          }
        }
      }
    }
    assert.deepEqual(problems, [], "the option interfaces' types and the option readers disagree");
  });
});
