// Shared by the www/ demo tests: the real demo server (scripts/serve.mjs) as a child process
// on a free port, Debian's Chromium through playwright-core, pages that record every page
// error, console error or warning, failed request and HTTP error, and the steps tests take on
// the page (generate, wait for a text, read an error code).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
export { launchChromium } from "../packaging/helpers.mjs";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const ARTIFACTS = join(ROOT, "tests", "artifacts");


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

/**
 * Opens the demo in a fresh context (a fresh cache) and waits until it is ready.
 * `problems` collects whatever must fail a test; `close()` ends the context.
 * `messages` holds every console message (any level) and `requests` every URL the page asked
 * for, so that tests can check what a page logged or sent.
 * `expected({ kind, text, url })` may claim a network problem a test causes on purpose (say, a
 * connection the Upstash bridge resets): claimed ones go to `expectedProblems` instead. Page
 * errors are never claimable.
 */
export async function openDemo(browser, origin, { query = "?delay=150", viewport, expected } = {}) {
  const context = await browser.newContext({ viewport: viewport ?? { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  const expectedProblems = [];
  const messages = [];
  const requests = [];
  const report = (kind, text, url) => (expected?.({ kind, text, url }) ? expectedProblems : problems).push(text);
  page.on("pageerror", (e) => problems.push(`page error: ${e.stack ?? e}`));
  page.on("console", (m) => {
    messages.push(`${m.type()}: ${m.text()}`);
    if (m.type() === "error" || m.type() === "warning") report("console", `console ${m.type()}: ${m.text()}`, m.location().url ?? "");
  });
  page.on("request", (r) => requests.push(r.url()));
  page.on("requestfailed", (r) => report("requestfailed", `request failed: ${r.url()} ${r.failure()?.errorText}`, r.url()));
  page.on("response", (r) => {
    if (r.status() >= 400) report("response", `HTTP ${r.status()}: ${r.url()}`, r.url());
  });
  await page.goto(`${origin}/${query}`);
  await page.waitForSelector("body[data-ready=true]", { timeout: 15_000 });
  return { page, problems, expectedProblems, messages, requests, close: () => context.close() };
}

/** Saves a full-page screenshot as tests/artifacts/www-<name>.png. */
export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `www-${name}.png`), fullPage: true });
}

export const byTestId = (id) => `[data-testid="${id}"]`;

export const text = (page, testid) => page.getByTestId(testid).textContent();

/** Asks for `topic` (typed, or by its chip) and waits for the answer: `{ outcome, latencyMs }`. */
export async function generate(page, topic, { chip = false } = {}) {
  const form = page.getByTestId("generate-form");
  const before = Number((await form.getAttribute("data-done")) ?? 0);
  if (chip) {
    await page.getByTestId("popular-topics").getByRole("button", { name: topic, exact: true }).click();
  } else {
    await page.getByTestId("topic-input").fill(topic);
    await page.getByTestId("generate").click();
  }
  await page.waitForFunction(
    (n) => Number(document.querySelector('[data-testid="generate-form"]').dataset.done ?? 0) > n,
    before,
    { timeout: 10_000 },
  );
  const answer = page.getByTestId("answer");
  return {
    outcome: await answer.getAttribute("data-outcome"),
    latencyMs: Number(await answer.getAttribute("data-latency-ms")),
    topic: await page.getByTestId("answer-topic").textContent(),
  };
}

/**
 * Asks for the streamed explanation of `topic` (Explain, or Ask twice with `twice`) and waits
 * until every stream of the click has ended: one `{ outcome, badge, tokens, state }` per
 * answer shown, `tokens` the words it rendered.
 */
export async function explainStreamed(page, topic, { twice = false } = {}) {
  const form = page.getByTestId("stream-form");
  const before = Number((await form.getAttribute("data-done")) ?? 0);
  await page.getByTestId("stream-topic-input").fill(topic);
  await page.getByTestId(twice ? "stream-twice" : "stream-explain").click();
  await page.waitForFunction(
    (n) => Number(document.querySelector('[data-testid="stream-form"]').dataset.done ?? 0) > n,
    before,
    { timeout: 15_000 },
  );
  return page.getByTestId("stream-answer").evaluateAll((answers) =>
    answers.map((a) => ({
      outcome: a.dataset.outcome,
      badge: a.querySelector('[data-testid="stream-outcome"]').textContent,
      tokens: [...a.querySelectorAll('[data-testid="stream-text"] span')].map((s) => s.textContent),
      state: a.dataset.state,
    })),
  );
}

/** Waits until the element's text satisfies `ok` (a RegExp or a string it must equal). */
export async function waitText(page, testid, ok, timeout = 5_000) {
  const source = ok instanceof RegExp ? { re: ok.source, flags: ok.flags } : { eq: ok };
  try {
    await page.waitForFunction(
      ([id, s]) => {
        const text = document.querySelector(`[data-testid="${id}"]`)?.textContent ?? "";
        return s.eq !== undefined ? text === s.eq : new RegExp(s.re, s.flags).test(text);
      },
      [testid, source],
      { timeout },
    );
  } catch {
    const text = await page.getByTestId(testid).textContent();
    assert.fail(`${testid}: ${JSON.stringify(text)} does not match ${ok}`);
  }
}

/** The CacheError code shown in a result line, once it shows one. */
export async function errorCode(page, testid) {
  await page.waitForSelector(`[data-testid="${testid}"][data-code]`, { timeout: 5_000 });
  const out = page.getByTestId(testid);
  const code = await out.getAttribute("data-code");
  assert.match(await out.textContent(), new RegExp(`^${code} \\S`), "the code is shown with the message");
  return code;
}
