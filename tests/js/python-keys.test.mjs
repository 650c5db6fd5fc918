// keyFormat "python" from JavaScript: a JS value's python key is the key a Python service
// computes for the JSON that JavaScript sends, md5(json.dumps(json.loads(JSON.stringify(data)),
// sort_keys=True)). Checked on the rows of python-text.jsonl that JSON.stringify would write, and
// against python3 itself on random JS values (seeded; CACHETTE_PY_DIFF_COUNT and
// CACHETTE_PY_DIFF_SEED vary the run).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "../packaging/helpers.mjs";
import { MemoryCache, requestKey, vectors, expectCacheError } from "./package.mjs";
import { rng } from "./random.mjs";

const rows = vectors("python-text.jsonl");

/** JSON text without insignificant whitespace. */
function minify(text) {
  let out = "";
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      out += c;
      if (c === "\\") out += text[++i];
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (!" \t\n\r".includes(c)) {
      out += c;
    }
  }
  return out;
}

test("python-text.jsonl: 300 rows", () => {
  assert.equal(rows.length, 300);
});

test("python-text.jsonl: requestKey(..., 'python') on every row JSON.stringify would write", () => {
  const mem = new MemoryCache({ keyFormat: "python", cleanupInterval: 0 });
  const wrong = [];
  let checked = 0;
  for (const row of rows) {
    if (row.error) continue;
    const data = JSON.parse(row.text);
    if (JSON.stringify(data) !== minify(row.text)) continue; // not what JavaScript sends
    checked++;
    const want = `v1:ns:${row.md5_python}`;
    for (const got of [requestKey("v1", "ns", data, "python"), mem.key("ns", data)]) {
      if (got !== want) wrong.push(`line ${row.line}: ${row.text} -> ${got}, want ${want} (${row.python})`);
    }
  }
  mem.shutdown();
  assert.deepEqual(wrong, []);
  assert.ok(checked >= 100, `only ${checked} rows are JSON.stringify's text`);
});

test("numbers: JSON.stringify's text decides int or float, as in a Python service", () => {
  const key = (data) => requestKey("v1", "ns", data, "python");
  // 1e16 + 2 is written 10000000000000002, a Python int; 1e21 is written 1e+21, a float.
  assert.equal(key({ n: 1e16 + 2 }), requestKey("v1", "ns", { n: 10000000000000002 }, "python"));
  assert.notEqual(key(5), key(5.5));
  assert.equal(key(-0), key(0)); // JSON.stringify(-0) is "0"
  assert.equal(key(NaN), key(null)); // JSON.stringify(NaN) is "null"
  expectCacheError(assert, (() => {
    try {
      key(10n);
    } catch (e) {
      return e;
    }
  })(), "UNSERIALIZABLE");
});


const PIECES = ["a", "b", "Z", "0", " ", "*", "?", "[", ":", "é", "ß", "中", "한", "😀", "𝄞", "\u007f",
  "\u2028", "\ue000", "\ufeff", "\uffff", "\n", "\t", '"', "\\", "/", "\b", "\f", "\r", "\u0000",
  "\u001f", "\ud800", "\udfff", "\udc00\ud800"];

function makeValue(random, depth) {
  const pick = (items) => items[Math.floor(random() * items.length)];
  const string = () => {
    let s = "";
    const n = Math.floor(random() * (random() < 0.2 ? 12 : 5));
    for (let i = 0; i < n; i++) s += pick(PIECES);
    return s;
  };
  const number = () => {
    switch (Math.floor(random() * 10)) {
      case 0: return pick([0, -0, 1, -1, 5, 0.5, 1e16, 1e16 + 2, 2 ** 53, 2 ** 53 + 2, -(2 ** 60), 1e21,
        1e22, 1e-7, 1e-4, 1e-5, 5e-324, Number.MAX_VALUE, Number.MIN_VALUE, 0.1 + 0.2, NaN, Infinity]);
      case 1: return Math.floor(random() * 2000) - 1000;
      case 2: return Math.floor((random() - 0.5) * 2 ** 53);
      // Integral doubles beyond 2^53: JSON.stringify writes digits up to 1e21, then e-notation.
      case 3: return Math.floor((random() - 0.5) * 10 ** (16 + random() * 8));
      case 4: return (random() - 0.5) * 10 ** Math.floor(random() * 40 - 20);
      case 5: return (random() - 0.5) * 10 ** Math.floor(random() * 600 - 300);
      case 6: return Math.round(random() * 1e6) / 100;
      default: return (random() - 0.5) * 1e6;
    }
  };
  const kind = Math.floor(random() * (depth >= 4 ? 5 : 8));
  switch (kind) {
    case 0: case 1: case 4: return number();
    case 2: return string();
    case 3: return pick([null, true, false]);
    case 5: {
      const n = Math.floor(random() * 5);
      return Array.from({ length: n }, () => (random() < 0.05 ? undefined : makeValue(random, depth + 1)));
    }
    default: {
      const o = {};
      const n = Math.floor(random() * 6);
      for (let i = 0; i < n; i++) o[string()] = makeValue(random, depth + 1);
      return o;
    }
  }
}

/** Whether `v` holds an integral number beyond 2^53 that JSON.stringify writes as digits. */
function hasBigInteger(v) {
  if (typeof v === "number") return Number.isInteger(v) && Math.abs(v) > 2 ** 53 && Math.abs(v) < 1e21;
  if (v && typeof v === "object") return Object.values(v).some(hasBigInteger);
  return false;
}

/** Python's answer for each JSON text, from tests/python/canonical.py. */
function python(texts) {
  const script = join(ROOT, "tests", "python", "canonical.py");
  const input = texts.map((t) => JSON.stringify(t)).join("\n") + "\n";
  const run = spawnSync("python3", [script], { input, encoding: "utf8", maxBuffer: 1 << 30 });
  assert.equal(run.status, 0, `python3 failed: ${run.error ?? run.stderr}`);
  const answers = run.stdout.trim().split("\n").map((line) => JSON.parse(line));
  assert.equal(answers.length, texts.length);
  return answers;
}

test("differential: python keys of random JS values equal what python3 computes", () => {
  const count = Number(process.env.CACHETTE_PY_DIFF_COUNT ?? 12000);
  const seed = Number(process.env.CACHETTE_PY_DIFF_SEED ?? 0x5eed);
  const random = rng(seed);
  const values = Array.from({ length: count }, () => makeValue(random, 0));
  const texts = values.map((v) => JSON.stringify(v));
  const answers = python(texts);
  const mismatches = [];
  let beyond = 0;
  for (let i = 0; i < count; i++) {
    if (hasBigInteger(values[i])) beyond++;
    const answer = answers[i];
    let got;
    try {
      got = requestKey("v", "ns", values[i], "python");
    } catch (e) {
      got = `threw ${e.code}: ${e.message}`;
    }
    if (got !== `v:ns:${answer.md5}`) mismatches.push(`${texts[i]}\n  python ${answer.python}\n  got ${got}`);
  }
  console.log(`python differential (JS values, seed ${seed}): ${count} values, ` +
    `${beyond} with integral numbers beyond 2^53, ${mismatches.length} mismatches`);
  assert.deepEqual(mismatches.slice(0, 20), []);
  assert.ok(beyond > count / 20, `only ${beyond} values exercise integers beyond 2^53`);
});
