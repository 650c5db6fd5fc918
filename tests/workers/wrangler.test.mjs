// The example Workers as Wrangler projects (`npm run dev`, `npm run deploy`, `npm run types`):
// each package.json pins wrangler and has the scripts, each wrangler.toml points at real files,
// the committed worker-configuration.d.ts (the `Env` of `wrangler types`) is what wrangler would
// write now (`wrangler types --check`), the JS Worker type-checks against it (tsc, JSDoc), and
// `./run dev-worker` knows both. `./run test_workers` installs each example's wrangler
// (`npm ci`) and builds both Workers first.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { ROOT, tempDir } from "../packaging/helpers.mjs";

const execFileAsync = promisify(execFile);

const RUN = readFileSync(join(ROOT, "run"), "utf8");
/** A `NAME=value` line of the task runner (`WRANGLER_VERSION=4.86.0`). */
const runSetting = (name) => RUN.match(new RegExp(`^${name}=(\\S+)$`, "m"))?.[1];
const WRANGLER_VERSION = runSetting("WRANGLER_VERSION");
const WORKER_BUILD_VERSION = runSetting("WORKER_BUILD_VERSION");

const EXAMPLES = {
  js: { dir: join(ROOT, "examples", "worker-js"), main: "src/index.js", typesScript: "wrangler types" },
  rust: {
    dir: join(ROOT, "examples", "worker"),
    main: "build/index.js",
    typesScript: "wrangler types --include-runtime=false",
  },
};

/** Wrangler offline and quiet, as `./run dev-worker` runs it. */
const WRANGLER_ENV = { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" };

/** The top-level `key = "string"` of a wrangler.toml (before its first table). */
function topLevel(toml, key) {
  const head = toml.split(/^\[/m)[0];
  return head.match(new RegExp(`^${key}\\s*=\\s*"([^"]*)"`, "m"))?.[1];
}

/** The `required` secrets of a wrangler.toml's `[secrets]` table. */
function requiredSecrets(toml) {
  const list = toml.match(/^\[secrets\]\s*\nrequired\s*=\s*\[([^\]]*)\]/m)?.[1];
  return list === undefined ? undefined : [...list.matchAll(/"([^"]+)"/g)].map((m) => m[1]);
}

test("the task runner pins wrangler and worker-build", () => {
  assert.match(WRANGLER_VERSION ?? "", /^\d+\.\d+\.\d+$/);
  assert.match(WORKER_BUILD_VERSION ?? "", /^\d+\.\d+\.\d+$/);
  assert.match(RUN, /^ {2}dev-worker\) shift; task_dev_worker "\$@" ;;$/m, "./run dev-worker is dispatched");
  for (const [kind, { dir }] of Object.entries(EXAMPLES)) {
    const rel = dir.slice(ROOT.length + 1);
    assert.ok(RUN.includes(`${kind}) dir=${rel} ;;`), `./run dev-worker ${kind} runs ${rel}`);
  }
});

for (const [kind, ex] of Object.entries(EXAMPLES)) {
  const pkg = JSON.parse(readFileSync(join(ex.dir, "package.json"), "utf8"));
  const toml = readFileSync(join(ex.dir, "wrangler.toml"), "utf8");

  test(`${kind}: package.json pins wrangler and has dev, deploy and types`, () => {
    assert.equal(pkg.private, true);
    assert.equal(pkg.devDependencies?.wrangler, WRANGLER_VERSION, "wrangler pinned exactly, as in ./run");
    assert.equal(pkg.scripts?.dev, "wrangler dev");
    assert.equal(pkg.scripts?.deploy, "wrangler deploy");
    assert.equal(pkg.scripts?.types, ex.typesScript);
    const lock = JSON.parse(readFileSync(join(ex.dir, "package-lock.json"), "utf8"));
    assert.equal(lock.packages["node_modules/wrangler"]?.version, WRANGLER_VERSION, "the lock holds the pinned wrangler");
    const installed = JSON.parse(readFileSync(join(ex.dir, "node_modules", "wrangler", "package.json"), "utf8"));
    assert.equal(installed.version, WRANGLER_VERSION, "npm ci installed the pinned wrangler");
    const ignored = readFileSync(join(ex.dir, ".gitignore"), "utf8").split("\n");
    for (const entry of ["/node_modules", "/.wrangler", "/.dev.vars*"]) {
      assert.ok(ignored.includes(entry), `.gitignore has ${entry}`);
    }
  });

  test(`${kind}: wrangler.toml points at real files and declares the secrets`, () => {
    assert.equal(topLevel(toml, "main"), ex.main);
    assert.match(topLevel(toml, "compatibility_date") ?? "", /^\d{4}-\d{2}-\d{2}$/);
    assert.deepEqual(requiredSecrets(toml), ["UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN", "ADMIN_TOKEN"]);
    if (kind === "js") {
      assert.ok(existsSync(join(ex.dir, ex.main)), `${ex.main} exists`);
      assert.doesNotMatch(toml, /^\[build\]/m, "Wrangler bundles src/index.js itself");
    } else {
      // The build command installs the pinned worker-build and runs it; its output is `main`.
      const command = toml.match(/^\[build\]\s*\ncommand\s*=\s*"([^"]*)"/m)?.[1];
      assert.equal(
        command,
        `cargo install -q worker-build --version ${WORKER_BUILD_VERSION} --locked && worker-build --release`,
      );
      assert.ok(existsSync(join(ex.dir, "Cargo.toml")), "Cargo.toml beside wrangler.toml");
      assert.ok(existsSync(join(ex.dir, ex.main)), `${ex.main} exists (built by worker-build)`);
    }
  });

  test(`${kind}: worker-configuration.d.ts is what \`${ex.typesScript}\` writes now`, async () => {
    const types = join(ex.dir, "worker-configuration.d.ts");
    const header = readFileSync(types, "utf8").split("\n")[1];
    assert.equal(
      header.match(/^\/\/ Generated by Wrangler by running `(.*)` \(hash: [0-9a-f]+\)$/)?.[1],
      ex.typesScript,
      "generated by the package's types script",
    );
    const text = readFileSync(types, "utf8");
    for (const name of requiredSecrets(toml)) {
      assert.ok(new RegExp(`^\\t\\t${name}: string;$`, "m").test(text), `Env has ${name}`);
    }
    // `wrangler types --check` compares the Env's hash and the runtime types' header with what it
    // would generate from wrangler.toml. For the Rust Worker, a copy of wrangler.toml without
    // its [build] table (so that wrangler does not run worker-build again while other test files
    // load build/) and with `main` made absolute (the entry already built) is checked instead.
    const copy = (extra = "") => {
      const file = join(tempDir("wrangler-types"), "wrangler.toml");
      const text = toml
        .replace(/^\[build\]\s*\ncommand\s*=.*\n/m, "")
        .replace(/^main = "(.*)"$/m, `main = ${JSON.stringify(join(ex.dir, ex.main))}`)
        .replace(/"ADMIN_TOKEN"\]/, `"ADMIN_TOKEN"${extra}]`);
      writeFileSync(file, text);
      return file;
    };
    const check = (config) =>
      execFileAsync(join(ex.dir, "node_modules", ".bin", "wrangler"), ["types", "--check", "-c", config, types], {
        cwd: ex.dir,
        env: WRANGLER_ENV,
        timeout: 120_000,
      });
    const { stdout } = await check(kind === "rust" ? copy() : join(ex.dir, "wrangler.toml"));
    assert.match(stdout, /are up to date/);
    // And it fails when wrangler.toml changed since: one more secret makes the Env out of date.
    await assert.rejects(check(copy(', "NEW_SECRET"')), (e) => {
      assert.match(`${e.stdout}${e.stderr}`, /out of date/);
      return true;
    });
  });
}

test("js: src/index.js type-checks against the generated Env (tsc --checkJs, tsconfig.json)", async () => {
  const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
  assert.ok(existsSync(tsc), "typescript is a devDependency of the repository");
  const dir = EXAMPLES.js.dir;
  const config = JSON.parse(readFileSync(join(dir, "tsconfig.json"), "utf8").replace(/^\s*\/\/.*$/gm, ""));
  assert.equal(config.compilerOptions.checkJs, true);
  assert.ok(config.include.includes("worker-configuration.d.ts"));
  assert.match(readFileSync(join(dir, "src", "index.js"), "utf8"), /@param \{Env\} env/);
  try {
    await execFileAsync(process.execPath, [tsc, "-p", dir], { cwd: dir, timeout: 120_000 });
  } catch (e) {
    assert.fail(`tsc -p examples/worker-js failed:\n${e.stdout}${e.stderr}`);
  }
});
