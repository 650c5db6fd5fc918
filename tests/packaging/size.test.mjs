// What a page ships for each entry, from the installed tarball, against its budget (gzip -9 of
// the esbuild bundle plus the .wasm it loads; bench/sizes.mjs measures, `npm run bench`
// prints the same figures). The budgets are not met yet: the test is marked TODO, so it reports
// the figures and the verdict on every run without failing it; the mark goes when they are met.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { BUDGETS, shippedSizes, sizeReport } from "../../bench/sizes.mjs";
import { consumerProject } from "./helpers.mjs";

const dir = consumerProject("size");
const sizes = await shippedSizes(join(dir, "node_modules", "cachette"));
console.log(sizeReport(sizes));

// The memory-only module leaves out Cache, the Upstash client and the async glue: about half.
test("cachette/memory exists and ships under 60% of the full entry", () => {
  assert.ok(sizes.memory !== null, "no cachette/memory entry");
  assert.ok(sizes.memory.bytes < 0.6 * sizes.full.bytes, `${sizes.memory.bytes} B vs ${sizes.full.bytes} B`);
});

const TODO = "budgets not met yet: see bench/sizes.mjs and the size report above";

test(`cachette/memory ships at most ${BUDGETS.memory} B gzip`, { todo: TODO }, () => {
  assert.ok(sizes.memory.bytes <= BUDGETS.memory, `${sizes.memory.bytes} B`);
});

test(`cachette ships at most ${BUDGETS.full} B gzip`, { todo: TODO }, () => {
  assert.ok(sizes.full.bytes <= BUDGETS.full, `${sizes.full.bytes} B`);
});
