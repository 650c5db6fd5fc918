#!/usr/bin/env bash
# Builds the complete npm package `cachette` into pkg/ (gitignored):
#
#   1. cargo build --lib --target wasm32-unknown-unknown --release   (the size profile), twice:
#      the full module, and the memory-only one (--no-default-features: `MemoryCache` and
#      `requestKey`, for `cachette/memory`) in a target directory of its own
#   2. wasm-bindgen --target web    -> web/   (browsers, workerd, `cachette/web`)
#      wasm-bindgen --target nodejs -> node/  (Node.js, CommonJS, synchronous load)
#      (memory/web/ and memory/node/ for the memory-only module)
#   3. wasm-opt -Oz on each *_bg.wasm (binaryen from npm: node_modules/.bin/wasm-opt)
#   4. pkg/ = pkg-template/ + the generated files, package.json versioned from Cargo.toml;
#      memory/ holds the `cachette/memory` entries, made from the main ones without `Cache`
#   5. checks that `npm pack` ships exactly the files in pkg/, and prints the sizes
#
# Idempotent and quick when nothing changed: steps 2-3 are skipped while the cargo output,
# the tool versions and this script are unchanged, and pkg/ is left untouched (mtimes
# included) when the assembled package is identical to it.
#
# Needs: cargo + the wasm32-unknown-unknown target, wasm-bindgen $WASM_BINDGEN_VERSION on
# PATH, node/npm, and the root devDependencies installed (`./run build` sees to all of it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

WASM_BINDGEN_VERSION=${WASM_BINDGEN_VERSION:-0.2.130}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
WASM_IN=$TARGET_DIR/wasm32-unknown-unknown/release/cachette.wasm
MEMORY_TARGET_DIR=$TARGET_DIR/memory-only
MEMORY_WASM_IN=$MEMORY_TARGET_DIR/wasm32-unknown-unknown/release/cachette.wasm
STAGE=$TARGET_DIR/pkg-build           # wasm-bindgen + wasm-opt output, and the build key
TEMPLATE=$ROOT/pkg-template
OUT=$ROOT/pkg
WASM_OPT=$ROOT/node_modules/.bin/wasm-opt

# The features rustc enables by default for wasm32-unknown-unknown (and that wasm-bindgen's
# externref table needs), so wasm-opt may keep and use them. Supported by every engine we
# ship to (Node >= 18, workerd, Chrome/Edge, Firefox, Safari >= 15).
WASM_OPT_FLAGS=(
  -Oz
  --enable-bulk-memory --enable-bulk-memory-opt
  --enable-nontrapping-float-to-int
  --enable-sign-ext
  --enable-mutable-globals
  --enable-reference-types
  --enable-multivalue
  --enable-call-indirect-overlong
  --strip-debug --strip-producers
)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'build-pkg: %s\n' "$*" >&2; exit 1; }
sha() { sha256sum "$@" | cut -d' ' -f1; }

# --- 1. the wasm module --------------------------------------------------------------
log "cargo build --lib --target wasm32-unknown-unknown --release"
cargo build --lib --target wasm32-unknown-unknown --release
[ -f "$WASM_IN" ] || die "no $WASM_IN after cargo build"
log "cargo build --lib --target wasm32-unknown-unknown --release --no-default-features (memory-only)"
CARGO_TARGET_DIR=$MEMORY_TARGET_DIR cargo build --lib --target wasm32-unknown-unknown --release \
  --no-default-features
[ -f "$MEMORY_WASM_IN" ] || die "no $MEMORY_WASM_IN after cargo build"

# --- 2 + 3. bindings and size optimisation (skipped when their inputs are unchanged) ----
have_bindgen=$(wasm-bindgen --version 2>/dev/null || true)
[ "$have_bindgen" = "wasm-bindgen $WASM_BINDGEN_VERSION" ] ||
  die "need wasm-bindgen $WASM_BINDGEN_VERSION (found: ${have_bindgen:-none}); run ./run setup"
[ -x "$WASM_OPT" ] || die "no $WASM_OPT; run npm ci (./run setup does)"

# Bindings for web and nodejs of module $1 into $2/web and $2/node, each optimised.
bind() {
  local wasm_in=$1 out=$2 t
  # The web glue gets no built-in default path (`new URL("cachette_bg.wasm", import.meta.url)`):
  # the entries pass the location explicitly, and workerd bundles see no import.meta.url.
  wasm-bindgen "$wasm_in" --out-dir "$out/web" --out-name cachette --target web \
    --typescript --omit-default-module-path
  wasm-bindgen "$wasm_in" --out-dir "$out/node" --out-name cachette --target nodejs \
    --typescript
  "$WASM_OPT" "${WASM_OPT_FLAGS[@]}" "$out/web/cachette_bg.wasm" -o "$out/web/opt.wasm"
  if cmp -s "$out/web/cachette_bg.wasm" "$out/node/cachette_bg.wasm"; then
    # The usual case: both targets get the same module; optimise it once.
    cp "$out/web/opt.wasm" "$out/node/opt.wasm"
  else
    "$WASM_OPT" "${WASM_OPT_FLAGS[@]}" "$out/node/cachette_bg.wasm" -o "$out/node/opt.wasm"
  fi
  for t in web node; do
    mv "$out/$t/opt.wasm" "$out/$t/cachette_bg.wasm"
    # The optimised module must still compile in V8 with the glue's imports.
    node -e '
      const fs = require("fs");
      const m = new WebAssembly.Module(fs.readFileSync(process.argv[1]));
      const mods = new Set(WebAssembly.Module.imports(m).map((i) => i.module));
      for (const name of mods) if (name !== "./cachette_bg.js") {
        console.error("unexpected import module " + name); process.exit(1);
      }' "$out/$t/cachette_bg.wasm"
  done
}

key=$( { sha "$WASM_IN" "$MEMORY_WASM_IN"; echo "$have_bindgen"; sha "$ROOT/scripts/build-pkg.sh";
         sha "$ROOT/node_modules/binaryen/package.json"; } | sha - )
if [ "$(cat "$STAGE/key" 2>/dev/null || true)" = "$key" ] &&
   [ -f "$STAGE/web/cachette_bg.wasm" ] && [ -f "$STAGE/node/cachette_bg.wasm" ] &&
   [ -f "$STAGE/memory/web/cachette_bg.wasm" ] && [ -f "$STAGE/memory/node/cachette_bg.wasm" ]; then
  log "wasm-bindgen + wasm-opt: up to date"
else
  rm -rf "$STAGE"
  mkdir -p "$STAGE"
  log "wasm-bindgen --target web, --target nodejs; wasm-opt ${WASM_OPT_FLAGS[*]}"
  bind "$WASM_IN" "$STAGE"
  bind "$MEMORY_WASM_IN" "$STAGE/memory"
  echo "$key" >"$STAGE/key"
fi

# --- 4. assemble the package ----------------------------------------------------------
NEW=$STAGE/pkg.new
rm -rf "$NEW"
mkdir -p "$NEW/web" "$NEW/node"
cp -R "$TEMPLATE/." "$NEW/"
# memory-cache.cjs, the CommonJS twin of memory-cache.js on the nodejs glue (so that Node's ESM
# and CJS entries share one wasm instance): the same source, its import line and export rewritten.
node -e '
  const fs = require("fs");
  const [from, to] = process.argv.slice(1);
  let src = fs.readFileSync(from, "utf8");
  const swap = (a, b) => {
    const parts = src.split(a);
    if (parts.length !== 2) throw new Error(`memory-cache.js: expected exactly one ${JSON.stringify(a)}`);
    src = parts.join(b);
  };
  swap(`import { MemorySlots, Removal } from "./web/cachette.js";`, `const { MemorySlots, Removal } = require("./node/cachette.js");`);
  swap("\nexport class MemoryCache ", "\nclass MemoryCache ");
  swap("\nexport function requestKey(", "\nfunction requestKey(");
  swap("\nexport function withStreams(", "\nfunction withStreams(");
  fs.writeFileSync(to, `"use strict";\n// Generated from memory-cache.js by scripts/build-pkg.sh: edit that file.\n` +
    src + "\nexports.MemoryCache = MemoryCache;\nexports.requestKey = requestKey;\nexports.withStreams = withStreams;\n");' "$TEMPLATE/memory-cache.js" "$NEW/memory-cache.cjs"
# ai.cjs, the CommonJS twin of ai.js (which imports nothing and keeps no state), so that
# `require("cachette/ai")` loads in every Node without require(esm) and has CommonJS types.
node -e '
  const fs = require("fs");
  const [from, to] = process.argv.slice(1);
  const src = fs.readFileSync(from, "utf8");
  const parts = src.split("\nexport function cacheMiddleware(");
  if (parts.length !== 2) throw new Error("ai.js: expected exactly one `export function cacheMiddleware(`");
  const body = parts.join("\nfunction cacheMiddleware(");
  if (/^\s*(import|export)\b/m.test(body)) throw new Error("ai.js: an import or export is left for ai.cjs");
  fs.writeFileSync(to, `"use strict";\n// Generated from ai.js by scripts/build-pkg.sh: edit that file.\n` +
    body + "\nexports.cacheMiddleware = cacheMiddleware;\n");' "$TEMPLATE/ai.js" "$NEW/ai.cjs"
cp "$STAGE/web/cachette.js" "$STAGE/web/cachette.d.ts" "$STAGE/web/cachette_bg.wasm" "$NEW/web/"
cp "$STAGE/node/cachette.js" "$STAGE/node/cachette_bg.wasm" "$NEW/node/"
# The nodejs glue is CommonJS inside a `"type": "module"` package.
printf '{\n  "type": "commonjs"\n}\n' >"$NEW/node/package.json"
# cachette/memory: the memory-only module beside copies of memory-cache.{js,cjs} (their relative
# imports then reach it), and the main entries without `Cache`.
mkdir -p "$NEW/memory/web" "$NEW/memory/node"
cp "$NEW/memory-cache.js" "$NEW/memory-cache.cjs" "$NEW/memory/"
cp "$STAGE/memory/web/cachette.js" "$STAGE/memory/web/cachette_bg.wasm" "$NEW/memory/web/"
cp "$STAGE/memory/node/cachette.js" "$STAGE/memory/node/cachette_bg.wasm" "$NEW/memory/node/"
printf '{\n  "type": "commonjs"\n}\n' >"$NEW/memory/node/package.json"
node -e '
  const fs = require("fs");
  const [pkg] = process.argv.slice(1);
  const CACHE = `import { Cache } from "./web/cachette.js";\nshutdownOnFree(Cache);\nwithStreams(Cache);\nexport { Cache };\n`;
  const PERSISTED_CACHE = `import { Cache as WasmCache } from "./web/cachette.js";\nshutdownOnFree(WasmCache);\nwithStreams(WasmCache);\n` +
    `// \`persist\`: IndexedDB and tabs sharing one cache (browsers only; see persist.js).\n` +
    `const Cache = withPersistence(WasmCache);\nexport { Cache };\n`;
  const edits = {
    "browser.js": [[`import { CacheError, shutdownOnFree } from "./error.js";`, `import { CacheError } from "../error.js";`],
                   [PERSISTED_CACHE, ``], [`import { withPersistence } from "./persist.js";\n`, ``]],
    "workerd.js": [[`import { CacheError, shutdownOnFree } from "./error.js";`, `import { CacheError } from "../error.js";`],
                   [CACHE, ``]],
    "node.cjs": [[`const { CacheError, shutdownOnFree } = require("./error.cjs")`, `const { CacheError } = require("../error.cjs")`],
                 [`exports.Cache = require("./memory-cache.cjs").withStreams(shutdownOnFree(wasm.Cache));\n`, ``]],
    "node.mjs": [[`export const { Cache, MemoryCache,`, `export const { MemoryCache,`]],
  };
  for (const [file, swaps] of Object.entries(edits)) {
    let src = fs.readFileSync(`${pkg}/${file}`, "utf8");
    for (const [a, b] of swaps) {
      const parts = src.split(a);
      if (parts.length !== 2) throw new Error(`${file}: expected exactly one ${JSON.stringify(a)}`);
      src = parts.join(b);
    }
    const head = file.endsWith(".cjs") && src.startsWith(`"use strict";\n`) ? `"use strict";\n` : "";
    fs.writeFileSync(`${pkg}/memory/${file}`, head +
      `// cachette/memory: made from ../${file} by scripts/build-pkg.sh, without Cache.\n` + src.slice(head.length));
  }' "$NEW"
# The .d.cts twins of the declaration files, for the `require` condition: under a
# `"type": "module"` package a .d.ts is read as ES module types, which would mislabel the
# CommonJS entries (node.cjs, memory/node.cjs, ai.cjs). The same declarations, each relative
# `./x.js` specifier pointing at the twin `./x.cjs` (whose types are x.d.cts).
node -e '
  const fs = require("fs");
  const path = require("path");
  const [pkg, ...files] = process.argv.slice(1);
  const twins = new Set(files.map((f) => f.replace(/\.d\.ts$/, ".d.cts")));
  for (const file of files) {
    const src = fs.readFileSync(`${pkg}/${file}`, "utf8");
    const twin = file.replace(/\.d\.ts$/, ".d.cts");
    const out = src.replace(/(["\x27])(\.\.?\/[^"\x27]*?)\.js\1/g, (_, q, spec) => {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), `${spec}.d.cts`));
      if (!twins.has(target)) throw new Error(`${file}: ${spec}.js has no .d.cts twin (${target})`);
      return `${q}${spec}.cjs${q}`;
    });
    if (/(["\x27])\.\.?\/[^"\x27]*\.(m?js|d\.ts)\1/.test(out)) throw new Error(`${file}: a relative ESM specifier is left`);
    fs.writeFileSync(`${pkg}/${twin}`,
      `// Generated from ${path.posix.basename(file)} by scripts/build-pkg.sh: the same types for require() (CommonJS).\n` + out);
  }' "$NEW" index.d.ts ai.d.ts memory/index.d.ts web/cachette.d.ts
# A .gitignore (or .npmignore) inside the package would silently drop files from `npm pack`.
find "$NEW" \( -name .gitignore -o -name .npmignore \) -delete

version=$(cargo metadata --no-deps --format-version 1 --offline |
  node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
    const p = JSON.parse(s).packages.find((p) => p.name === "cachette");
    process.stdout.write(p.version);
  });')
[ -n "$version" ] || die "could not read the crate version from Cargo.toml"
node -e '
  const fs = require("fs");
  const [file, version] = process.argv.slice(1);
  const pkg = JSON.parse(fs.readFileSync(file, "utf8"));
  pkg.version = version;
  fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + "\n");' "$NEW/package.json" "$version"

if [ -d "$OUT" ] && diff -r -q "$NEW" "$OUT" >/dev/null 2>&1; then
  rm -rf "$NEW"
  log "pkg/: up to date (cachette@$version)"
else
  # --- 5a. `npm pack` must ship every file of the package, and nothing else ----------
  (cd "$NEW" && find . -type f | sed 's|^\./||' | sort) >"$STAGE/files.tree"
  (cd "$NEW" && npm pack --dry-run --json --ignore-scripts 2>/dev/null) |
    node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      for (const f of JSON.parse(s)[0].files) console.log(f.path);
    });' | sort >"$STAGE/files.packed"
  if ! diff -u "$STAGE/files.tree" "$STAGE/files.packed" >&2; then
    die "npm pack would not ship exactly pkg/'s files (above: - only in pkg/, + only packed)"
  fi
  rm -rf "$OUT"
  mv "$NEW" "$OUT"
  log "pkg/: assembled cachette@$version ($(wc -l <"$STAGE/files.packed") files, npm pack checked)"
fi

# --- 5b. sizes --------------------------------------------------------------------------
gz() { gzip -9 -c "$1" | wc -c; }
row() { printf '  %-28s %9s B  %9s B gzip -9\n' "$1" "$2" "$3"; }
echo "Sizes (pkg/):"
for f in web/cachette_bg.wasm web/cachette.js node/cachette_bg.wasm node/cachette.js; do
  row "$f" "$(wc -c <"$OUT/$f")" "$(gz "$OUT/$f")"
done
# What a browser downloads for `cachette`: the wasm, the web glue and the small entry files.
web_files=(web/cachette_bg.wasm web/cachette.js browser.js memory-cache.js error.js persist.js)
raw=0 zipped=0
for f in "${web_files[@]}"; do
  raw=$((raw + $(wc -c <"$OUT/$f"))) zipped=$((zipped + $(gz "$OUT/$f")))
done
row "web total (wasm+glue+entry)" "$raw" "$zipped"
raw=0 zipped=0
for f in memory/web/cachette_bg.wasm memory/web/cachette.js memory/browser.js memory/memory-cache.js error.js; do
  raw=$((raw + $(wc -c <"$OUT/$f"))) zipped=$((zipped + $(gz "$OUT/$f")))
done
row "memory/ total (cachette/memory)" "$raw" "$zipped"
