// The catalogue of bad input: for every public method of MemoryCache, Cache and requestKey, the
// arguments it takes, a valid value for each, and the bad values each kind of argument must
// refuse with the code it must carry. tests/js/bad-input.test.mjs sweeps it; other tests may
// import the lists.

const cycle = {};
cycle.self = cycle;

/** `[label, value]` pairs that are not strings (or not well-formed ones): keys, namespaces,
 * versions and patterns all refuse these. */
export const NOT_STRINGS = [
  ["undefined", undefined],
  ["null", null],
  ["a number", 5],
  ["a boolean", true],
  ["a bigint", 1n],
  ["an object", { key: "k" }],
  ["an array", ["k"]],
  ["a symbol", Symbol("k")],
  ["a function", () => "k"],
  ["a String object", new String("k")],
  ["a lone high surrogate", "a\uD800b"],
  ["a lone low surrogate", "\uDC00"],
];

/** Bad raw keys: `[label, value, code]`. (The empty string is a key like any other.) */
export const BAD_KEYS = [
  ...NOT_STRINGS.map(([label, value]) => [label, value, "INVALID_KEY"]),
  ["32 KiB + 1 of ASCII", "x".repeat(32 * 1024 + 1), "INVALID_KEY"],
  ["32 KiB + 2 of UTF-8 in 2-byte characters", "é".repeat(16 * 1024 + 1), "INVALID_KEY"],
  ["1 MiB", "k".repeat(1 << 20), "INVALID_KEY"],
];

/** Bad namespaces and versions (key segments): `[label, value, code]`. */
export const BAD_SEGMENTS = [
  ...NOT_STRINGS.map(([label, value]) => [label, value, "INVALID_KEY"]),
  ["empty", "", "INVALID_KEY"],
  ["with ':'", "a:b", "INVALID_KEY"],
  ["only ':'", ":", "INVALID_KEY"],
  ["1 MiB", "n".repeat(1 << 20), "INVALID_KEY"],
];

/** Bad glob patterns: `[label, value, code]`. Malformed globs are valid (they match as in Redis). */
export const BAD_PATTERNS = [
  ...NOT_STRINGS.map(([label, value]) => [label, value, "INVALID_PATTERN"]),
  ["empty", "", "INVALID_PATTERN"],
  ["32 KiB + 1", "*".repeat(32 * 1024 + 1), "INVALID_PATTERN"],
];

/** Request data JSON cannot carry: `[label, value, code]`. */
export const BAD_DATA = [
  ["undefined", undefined, "UNSERIALIZABLE"],
  ["a bigint", 1n, "UNSERIALIZABLE"],
  ["a nested bigint", { n: [1n] }, "UNSERIALIZABLE"],
  ["a cycle", cycle, "UNSERIALIZABLE"],
  ["a function", () => 1, "UNSERIALIZABLE"],
  ["a symbol", Symbol("s"), "UNSERIALIZABLE"],
  ["a throwing toJSON", { toJSON() { throw new Error("no"); } }, "UNSERIALIZABLE"],
];

/** Values a cache with `maxBytes: MAX_BYTES` (and no sizeOf) refuses: `[label, value, code]`. */
export const MAX_BYTES = 1000;
export const BAD_VALUES = [
  ["undefined", undefined, "UNSERIALIZABLE"],
  ["a bigint", 1n, "UNSERIALIZABLE"],
  ["a cycle", cycle, "UNSERIALIZABLE"],
  ["a function", () => 1, "UNSERIALIZABLE"],
  ["over maxBytes", "v".repeat(MAX_BYTES), "VALUE_TOO_LARGE"],
  ["a 1 MiB string", "v".repeat(1 << 20), "VALUE_TOO_LARGE"],
];

/** Bad per-call options (`{ ttl }`): `[label, value, code]`. */
export const BAD_SET_OPTIONS = [
  ["a number", 5, "INVALID_OPTIONS"],
  ["a string", "ttl", "INVALID_OPTIONS"],
  ["an array", [], "INVALID_OPTIONS"],
  ["an unknown option", { tll: 5 }, "INVALID_OPTIONS"],
  ["ttl 0", { ttl: 0 }, "INVALID_OPTIONS"],
  ["ttl -1", { ttl: -1 }, "INVALID_OPTIONS"],
  ["ttl NaN", { ttl: Number.NaN }, "INVALID_OPTIONS"],
  ["ttl as a string", { ttl: "60" }, "INVALID_OPTIONS"],
  ["ttl as a bigint", { ttl: 60n }, "INVALID_OPTIONS"],
];

/** Bad generators: `[label, value, code]` (for getOrSet; MemoryCache also refuses async ones). */
export const BAD_GENERATORS = [
  ["undefined", undefined, "INVALID_OPTIONS"],
  ["null", null, "INVALID_OPTIONS"],
  ["a value", 5, "INVALID_OPTIONS"],
  ["an object", { call: () => 1 }, "INVALID_OPTIONS"],
];

/** Bad constructor options: `[label, value, code]` (for both classes). */
export const BAD_OPTIONS = [
  ["a number", 5, "INVALID_OPTIONS"],
  ["a string", "options", "INVALID_OPTIONS"],
  ["an unknown option", { foo: 1 }, "INVALID_OPTIONS"],
  ["ttl 0", { ttl: 0 }, "INVALID_OPTIONS"],
  ["ttl as a string", { ttl: "60" }, "INVALID_OPTIONS"],
  ["maxEntries 0", { maxEntries: 0 }, "INVALID_OPTIONS"],
  ["maxEntries 1.5", { maxEntries: 1.5 }, "INVALID_OPTIONS"],
  ["maxEntries as a string", { maxEntries: "10" }, "INVALID_OPTIONS"],
  ["maxBytes -1", { maxBytes: -1 }, "INVALID_OPTIONS"],
  ["maxBytes 0", { maxBytes: 0 }, "INVALID_OPTIONS"],
  ["cleanupInterval -1", { cleanupInterval: -1 }, "INVALID_OPTIONS"],
  ["keyFormat xml", { keyFormat: "xml" }, "INVALID_OPTIONS"],
  ["version ''", { version: "" }, "INVALID_OPTIONS"],
  ["version with ':'", { version: "a:b" }, "INVALID_OPTIONS"],
  ["sizeOf not a function", { sizeOf: 5 }, "INVALID_OPTIONS"],
];

/** What each kind of argument refuses. */
export const BAD = {
  key: BAD_KEYS,
  namespace: BAD_SEGMENTS,
  version: BAD_SEGMENTS,
  pattern: BAD_PATTERNS,
  data: BAD_DATA,
  value: BAD_VALUES,
  options: BAD_SET_OPTIONS,
  generator: BAD_GENERATORS,
};

/** A valid value for each kind of argument. */
export const VALID = {
  key: "k0",
  namespace: "ns",
  version: "v9",
  pattern: "nothing-matches-*",
  data: { q: "valid" },
  value: "a value",
  options: { ttl: 60 },
  generator: () => "generated",
};

/**
 * The data methods of both classes, with their argument kinds. `kinds` lists every argument;
 * a sweep replaces one at a time with each bad value of its kind. `sync` marks the methods that
 * Cache runs synchronously too (they throw rather than reject), `async` those that return a
 * promise on MemoryCache too (they reject); `classes`, when present, names the only classes that
 * have the method.
 */
export const METHODS = [
  { name: "get", kinds: ["key"] },
  { name: "set", kinds: ["key", "value", "options"] },
  { name: "has", kinds: ["key"] },
  { name: "delete", kinds: ["key"] },
  { name: "key", kinds: ["namespace", "data"], sync: true },
  { name: "lookup", kinds: ["namespace", "data"] },
  { name: "store", kinds: ["namespace", "data", "value", "options"] },
  { name: "getOrSet", kinds: ["namespace", "data", "generator", "options"] },
  { name: "getOrSetEntry", kinds: ["namespace", "data", "generator", "options"] },
  { name: "getOrSetStream", kinds: ["namespace", "data", "generator", "options"], async: true },
  { name: "deletePattern", kinds: ["pattern"] },
  { name: "invalidateNamespace", kinds: ["namespace"] },
  { name: "invalidateVersion", kinds: ["version"] },
  { name: "updateVersion", kinds: ["version"] },
];

/** requestKey(version, namespace, data, keyFormat). */
export const REQUEST_KEY = { kinds: ["version", "namespace", "data"] };
export const BAD_KEY_FORMATS = [
  ["xml", "xml", "INVALID_OPTIONS"],
  ["a number", 1, "INVALID_OPTIONS"],
  ["an object", { keyFormat: "jcs" }, "INVALID_OPTIONS"],
  ["JCS in capitals", "JCS", "INVALID_OPTIONS"],
];

/** A short description of a catalogue value for test messages. */
export function show(value) {
  if (typeof value === "string") return value.length > 24 ? `"${value.slice(0, 12)}…" (${value.length} units)` : JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "symbol" || typeof value === "function") return String(value).slice(0, 24);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
