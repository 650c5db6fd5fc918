// Shared by the www/ demo tests: the real demo server (scripts/serve.mjs) as a child process
// on a free port, Debian's Chromium through playwright-core, and pages that record every
// page error, console error or warning, failed request and HTTP error.
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const ARTIFACTS = join(ROOT, "tests", "artifacts");

const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** Starts `node scripts/serve.mjs` on a free port; resolves to `{ origin, line, stop() }`. */
export function startDemoServer() {
  const child = spawn(process.execPath, [join(ROOT, "scripts", "serve.mjs")], {
    env: { ...process.env, PORT: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const stop = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
    });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error("no URL line within 10 s")), 10_000);
    function fail(error) {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`scripts/serve.mjs: ${error.message}\n${output}`));
    }
    child.on("error", fail);
    child.on("exit", (code) => fail(new Error(`exited with ${code}`)));
    child.stderr.on("data", (d) => (output += d));
    child.stdout.on("data", (d) => {
      output += d;
      const m = /^Cachette demo: (http:\/\/127\.0\.0\.1:\d+)\/$/m.exec(output);
      if (m) {
        clearTimeout(timer);
        child.removeAllListeners("exit");
        resolve({ origin: m[1], line: m[0], stop });
      }
    });
  });
}

export function launchChromium() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
}

/**
 * Opens the demo in a fresh context (a fresh cache) and waits until it is ready.
 * `problems` collects whatever must fail a test; `close()` ends the context.
 */
export async function openDemo(browser, origin, { query = "?delay=150", viewport } = {}) {
  const context = await browser.newContext({ viewport: viewport ?? { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.stack ?? e}`));
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on("response", (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  await page.goto(`${origin}/${query}`);
  await page.waitForSelector("body[data-ready=true]", { timeout: 15_000 });
  return { page, problems, close: () => context.close() };
}

/** Saves a full-page screenshot as tests/artifacts/www-<name>.png. */
export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `www-${name}.png`), fullPage: true });
}

export const byTestId = (id) => `[data-testid="${id}"]`;
