// The demo's shared tier in headless Chromium: the page connects to a real redis-server behind
// the upstash-bridge (tests/js/upstash-server.mjs; the bridge answers CORS, so the page fetches
// it directly), its answers land in Redis, faults injected at the bridge show as a degraded
// cache that still answers from memory, and the token never shows up in the page's HTML, the
// address bar, storage, the console or a request URL.
// Any page error, console error or warning, failed request or HTTP error fails a test, except
// the bridge's own injected failures, which each test names. Screenshots: tests/artifacts/www-7-*.png, www-8-*.png.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, join } from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startUpstash } from "../js/upstash-server.mjs";
import { ROOT, errorCode, generate, launchChromium, openDemo, screenshot, startDemoServer, text, waitText } from "./helpers.mjs";

let server;
let browser;
let up;

before(async () => {
  ensureBridge();
  [server, browser, up] = await Promise.all([startDemoServer(), launchChromium(), startUpstash()]);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  up?.stop();
});

/** redis-server must be installed; the bridge binary is built when it is missing. */
function ensureBridge() {
  if (spawnSync("redis-server", ["--version"]).error) {
    throw new Error("redis-server is required for the shared-tier demo tests (apt-get install redis-server)");
  }
  if (process.env.CACHETTE_BRIDGE_BIN || existsSync(join(ROOT, "target", "debug", "upstash-bridge"))) return;
  const PATH = [join(homedir(), ".cargo", "bin"), process.env.PATH].join(delimiter);
  execFileSync("cargo", ["build", "-p", "upstash-bridge"], { cwd: ROOT, stdio: "inherit", env: { ...process.env, PATH } });
}

/**
 * Network failures that the bridge produces on purpose: connection resets (fault "reset") and
 * the given HTTP statuses, for requests to the bridge only.
 */
function bridgeFaults({ statuses = [] } = {}) {
  return ({ kind, text, url }) => {
    if (!url.startsWith(up.url)) return false;
    if (/net::ERR_(CONNECTION_RESET|EMPTY_RESPONSE|CONNECTION_CLOSED)/.test(text)) return true;
    return statuses.some((s) => (kind === "response" ? text.startsWith(`HTTP ${s}:`) : text.includes(`status of ${s}`)));
  };
}

/** Runs `fn(demo)` on a fresh demo page, then asserts that nothing unexpected went wrong in it. */
async function withDemo(fn, options) {
  const demo = await openDemo(browser, server.origin, options);
  try {
    await fn(demo);
    assert.deepEqual(demo.problems, []);
  } finally {
    await demo.close();
  }
}

/** Fills in the shared-tier form and connects, by the button or by Enter in the token field. */
async function connect(page, { url = up.url, token = up.token, enter = false } = {}) {
  await page.getByTestId("upstash-url").fill(url);
  await page.getByTestId("upstash-token").fill(token);
  if (enter) await page.getByTestId("upstash-token").press("Enter");
  else await page.getByTestId("upstash-connect").click();
}

/**
 * `token` is nowhere the page could leak it: not in the serialized HTML (an input's value is
 * a property, not an attribute, so it does not serialize), the address bar, the title, storage,
 * cookies, any console message, any problem recorded, or any request URL.
 */
async function assertTokenNowhere(demo, token) {
  const { page } = demo;
  const where = await page.evaluate((t) => {
    const stored = (s) => Object.keys(s).some((k) => k.includes(t) || s.getItem(k).includes(t));
    return {
      html: document.documentElement.outerHTML.includes(t),
      location: location.href.includes(t),
      title: document.title.includes(t),
      localStorage: stored(localStorage),
      sessionStorage: stored(sessionStorage),
      cookie: document.cookie.includes(t),
    };
  }, token);
  assert.deepEqual(where, { html: false, location: false, title: false, localStorage: false, sessionStorage: false, cookie: false });
  assert.ok(!page.url().includes(token), "address bar");
  assert.equal(await page.getByTestId("upstash-token").getAttribute("value"), null, "no value attribute on the token field");
  for (const list of ["messages", "problems", "expectedProblems", "requests"]) {
    const hits = demo[list].filter((m) => m.includes(token));
    assert.deepEqual(hits, [], `the token in ${list}`);
  }
}

const visible = (page, testid) => page.getByTestId(testid).isVisible();

test("connected to the shared tier: answers land in Redis; a reset connection degrades, then heals", async () => {
  await up.faults({ mode: "none" });
  await up.raw("FLUSHDB");
  await withDemo(
    async (demo) => {
      const { page } = demo;
      await waitText(page, "stat-backend", "memory");
      assert.equal(await text(page, "stat-fallback"), "–");
      assert.equal(await visible(page, "upstash-stats"), false);
      assert.equal(await page.getByTestId("upstash-disconnect").isDisabled(), true);
      assert.equal(await page.getByTestId("upstash-token").getAttribute("type"), "password");
      assert.equal(await page.getByTestId("upstash-token").getAttribute("autocomplete"), "off");

      await connect(page);
      await waitText(page, "upstash-result", /^Connected to 127\.0\.0\.1:\d+: it answered in \d+(\.\d+)? ms\.$/);
      assert.equal(await page.getByTestId("upstash-result").getAttribute("data-code"), null);
      assert.equal(await page.getByTestId("upstash-token").inputValue(), up.token, "the field keeps the token");
      const host = new URL(up.url).host;
      await waitText(page, "upstash-connection", `Connected to ${host}.`);
      await waitText(page, "stat-backend", "upstash");
      await waitText(page, "stat-health", "healthy");
      await waitText(page, "stats-state", "live");
      await waitText(page, "stat-fallback", "standby");
      assert.equal(await visible(page, "upstash-stats"), true);
      assert.equal(await visible(page, "stat-health-error"), false);
      assert.equal(await page.getByTestId("upstash-disconnect").isDisabled(), false);
      await waitText(page, "backend-note", /^Backend: Upstash at 127\.0\.0\.1:\d+/);

      // Miss, then hit; the answer is in Redis, under the key the page shows.
      const miss = await generate(page, "Distributed Systems");
      assert.equal(miss.outcome, "miss");
      const key = await text(page, "answer-key");
      assert.match(key, /^v1:subtopics:[0-9a-f]{32}$/);
      const items = await page.getByTestId("answer-subtopics").locator("li").allTextContents();
      assert.equal(items.length, 5);
      assert.deepEqual((await up.raw("KEYS", "*")).result, [key]);
      assert.deepEqual(JSON.parse((await up.raw("GET", key)).result), items, "Redis holds the answer as JSON");
      assert.equal((await generate(page, "Distributed Systems")).outcome, "hit");
      assert.deepEqual(await page.getByTestId("answer-subtopics").locator("li").allTextContents(), items);
      await waitText(page, "stat-keys-label", "Keys in Redis");
      await waitText(page, "stat-keys", "1");
      await waitText(page, "stat-hits", "1");
      await waitText(page, "stat-misses", "1");
      await waitText(page, "stat-keyspace-hits", /^[1-9]\d*$/);
      await waitText(page, "stat-round-trips", /^[1-9]\d*$/);
      assert.match(await text(page, "stat-used-memory"), /^\d+(\.\d)? (B|KiB|MiB)$/);
      assert.match(await text(page, "stat-evicted-keys"), /^\d+$/);
      assert.equal(await text(page, "stat-errors"), "0");
      await page.waitForFunction(() => Number(document.querySelector('[data-testid="hit-rate-chart"]').dataset.points) >= 2);
      await screenshot(page, "7-upstash-connected");
      await assertTokenNowhere(demo, up.token);

      // The bridge resets every connection: Generate still answers, from memory.
      await up.faults({ mode: "reset" });
      const during = await generate(page, "Distributed Systems");
      assert.equal(await page.getByTestId("generate-result").getAttribute("data-code"), null, await text(page, "generate-result"));
      assert.equal(during.topic, "Distributed Systems");
      assert.ok(["miss", "hit"].includes(during.outcome), during.outcome);
      assert.deepEqual(await page.getByTestId("answer-subtopics").locator("li").allTextContents(), items);
      await waitText(page, "stat-health", "degraded");
      await waitText(page, "stats-state", "degraded");
      await waitText(page, "stat-fallback", "active");
      await waitText(page, "stat-backend", "upstash");
      await waitText(page, "stat-health-error", /^Memory is serving: Upstash is unreachable/);
      await waitText(page, "upstash-connection", `Connected to ${host}: degraded, memory serves.`);
      await waitText(page, "stat-round-trips", "–");
      await waitText(page, "stat-errors", /^[1-9]\d*$/);
      assert.equal(await text(page, "stat-keys-label"), "Keys");
      assert.equal((await generate(page, "Distributed Systems")).outcome, "hit", "memory serves what it stored during the fault");
      await screenshot(page, "8-upstash-degraded");
      assert.ok(demo.expectedProblems.length > 0, "the resets reached the page");
      await assertTokenNowhere(demo, up.token);

      // The bridge answers again: healthy, and the answer comes from Redis.
      await up.faults({ mode: "none" });
      await waitText(page, "stat-health", "healthy");
      await waitText(page, "stats-state", "live");
      await waitText(page, "stat-fallback", "standby");
      await waitText(page, "stat-keys-label", "Keys in Redis");
      assert.equal(await visible(page, "stat-health-error"), false);
      await waitText(page, "upstash-connection", `Connected to ${host}.`);
      assert.equal((await generate(page, "Distributed Systems")).outcome, "hit");
      assert.equal((await up.raw("DBSIZE")).result, 1);
      await assertTokenNowhere(demo, up.token);
    },
    { expected: bridgeFaults() },
  );
});

test("refused settings keep the cache; a wrong token degrades; two pages share Redis; Disconnect goes back to memory", async () => {
  await up.faults({ mode: "none" });
  await up.raw("FLUSHDB");
  const wrong = `${up.token}-wrong-2b7e`;
  await withDemo(
    async (demo) => {
      const { page } = demo;
      const address = page.url();

      // A URL the cache refuses: INVALID_OPTIONS, and the memory cache carries on.
      assert.equal((await generate(page, "Networking")).outcome, "miss");
      await connect(page, { url: "ftp://127.0.0.1/" });
      assert.equal(await errorCode(page, "upstash-result"), "INVALID_OPTIONS");
      assert.match(await text(page, "upstash-result"), /upstash\.url/);
      assert.equal(await text(page, "upstash-connection"), "Not connected: memory tier only.");
      assert.equal((await generate(page, "Networking")).outcome, "hit", "the old cache is still in use");
      await waitText(page, "stat-backend", "memory");

      // A token the server refuses (sent with Enter): degraded, the reason shown, no token shown.
      await connect(page, { token: wrong, enter: true });
      await waitText(page, "upstash-result", /^Connected to 127\.0\.0\.1:\d+, but the shared tier is degraded: .*refused the token.*\. The memory tier serves meanwhile\.$/);
      await waitText(page, "stat-health", "degraded");
      await waitText(page, "stat-health-error", /refused the token/);
      await waitText(page, "upstash-connection", /^Connected to 127\.0\.0\.1:\d+: degraded, memory serves\.$/);
      assert.equal(page.url(), address, "submitting the form leaves the address alone");
      await assertTokenNowhere(demo, wrong);

      // The right token: healthy; an answer made here...
      await connect(page);
      await waitText(page, "upstash-result", /: it answered in /);
      await waitText(page, "stat-health", "healthy");
      assert.equal((await generate(page, "Compilers")).outcome, "miss");
      assert.equal((await up.raw("DBSIZE")).result, 1);

      // ...is a hit in another page (another cache) connected to the same Redis.
      await withDemo(
        async (other) => {
          await connect(other.page);
          await waitText(other.page, "stat-health", "healthy");
          assert.equal((await generate(other.page, "Compilers")).outcome, "hit");
          await assertTokenNowhere(other, up.token);
        },
        { expected: bridgeFaults() },
      );

      // Disconnect: a new memory-only cache; Redis keeps what it has.
      await page.getByTestId("upstash-disconnect").click();
      await waitText(page, "upstash-result", /^Disconnected from 127\.0\.0\.1:\d+: a new cache, memory tier only\./);
      await waitText(page, "upstash-connection", "Not connected: memory tier only.");
      await waitText(page, "stat-backend", "memory");
      await waitText(page, "stat-health", "healthy");
      await waitText(page, "stat-keys", "0 / 100");
      await waitText(page, "stat-fallback", "–");
      await waitText(page, "backend-note", "Backend: memory tier in WebAssembly.");
      assert.equal(await visible(page, "upstash-stats"), false);
      assert.equal(await page.getByTestId("upstash-disconnect").isDisabled(), true);
      assert.equal((await generate(page, "Compilers")).outcome, "miss", "memory starts empty");
      assert.equal((await up.raw("DBSIZE")).result, 1);
      await assertTokenNowhere(demo, up.token);
      await assertTokenNowhere(demo, wrong);
    },
    { expected: bridgeFaults({ statuses: [401] }) },
  );
});

test("after Shut down, Connect starts a new cache on the shared tier", async () => {
  await up.faults({ mode: "none" });
  await withDemo(
    async (demo) => {
      const { page } = demo;
      await page.getByTestId("shutdown").click();
      await waitText(page, "stats-state", "unhealthy");
      await connect(page);
      await waitText(page, "upstash-result", /: it answered in /);
      await waitText(page, "stats-state", "live");
      assert.equal(await text(page, "shutdown-result"), "");
      assert.equal((await generate(page, "Shut Down Recovery")).outcome, "miss");
      assert.equal((await generate(page, "Shut Down Recovery")).outcome, "hit");
      await assertTokenNowhere(demo, up.token);
    },
    { expected: bridgeFaults() },
  );
});
