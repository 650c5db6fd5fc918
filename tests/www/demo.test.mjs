// The www/ demo in headless Chromium, served by the real demo server (scripts/serve.mjs).
// Each test opens a fresh page (a fresh cache) with the stand-in generator at ?delay=150 (and
// the streamed stand-in at its default, 40 ms a word);
// any page error, console error or warning, failed request or HTTP error fails it.
// Screenshots of the main states go to tests/artifacts/www-*.png.
import { request } from "node:http";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { errorCode, explainStreamed, generate, launchChromium, openDemo, screenshot, startDemoServer, text, waitText } from "./helpers.mjs";
import { explanationOf } from "../../www/generator.js";

const DELAY_MS = 150;

let server;
let browser;

before(async () => {
  [server, browser] = await Promise.all([startDemoServer(), launchChromium()]);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Runs `fn({ page })` on a fresh demo page, then asserts that nothing went wrong in it. */
async function withDemo(fn, options) {
  const demo = await openDemo(browser, server.origin, options);
  try {
    await fn(demo);
    assert.deepEqual(demo.problems, []);
  } finally {
    await demo.close();
  }
}

function get(path) {
  return new Promise((resolve, reject) => {
    request(`${server.origin}${path}`, (res) => {
      let body = "";
      res.setEncoding("latin1");
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode, type: res.headers["content-type"], body }));
    })
      .on("error", reject)
      .end();
  });
}

test("the demo server prints its URL and serves www/ and pkg/ with the right types", async () => {
  assert.match(server.line, /^Cachette demo: http:\/\/127\.0\.0\.1:\d+\/$/);
  const expected = {
    "/": "text/html; charset=utf-8",
    "/app.js": "text/javascript; charset=utf-8",
    "/style.css": "text/css; charset=utf-8",
    "/favicon.svg": "image/svg+xml",
    "/pkg/web.js": "text/javascript; charset=utf-8",
    "/pkg/web/cachette.js": "text/javascript; charset=utf-8",
    "/pkg/web/cachette_bg.wasm": "application/wasm",
  };
  for (const [path, type] of Object.entries(expected)) {
    const r = await get(path);
    assert.equal(r.status, 200, path);
    assert.equal(r.type, type, path);
  }
  assert.equal((await get("/pkg/web/cachette_bg.wasm")).body.slice(0, 4), "\0asm");
  assert.equal((await get("/missing.js")).status, 404);
  for (const path of ["/%2e%2e/package.json", "/pkg/%2e%2e/%2e%2e/etc/passwd", "/..%2fpackage.json"]) {
    const r = await get(path);
    assert.ok(r.status === 403 || r.status === 404, `${path}: ${r.status}`);
  }
});

test("without ?delay the stand-in generator waits about 1 s, and says it is a stand-in", async () => {
  await withDemo(
    async ({ page }) => {
      assert.equal(await text(page, "delay"), "1000");
      assert.match(await text(page, "stand-in-notice"), /Stand-in generator, not an LLM/);
      assert.ok(await page.getByTestId("stand-in-notice").isVisible());
      const miss = await generate(page, "Topology");
      assert.equal(miss.outcome, "miss");
      assert.ok(miss.latencyMs >= 990 && miss.latencyMs < 3000, `${miss.latencyMs} ms`);
    },
    { query: "" },
  );
});

test("first Generate is a miss, the second a faster hit; the statistics follow", async () => {
  await withDemo(async ({ page }) => {
    await waitText(page, "stats-state", "live");
    assert.equal(await text(page, "stat-hits"), "0");
    assert.equal(await text(page, "stat-misses"), "0");
    assert.equal(await text(page, "stat-keys"), "0 / 100");
    assert.equal(await text(page, "stat-version"), "v1");
    await screenshot(page, "1-initial");

    const miss = await generate(page, "Quantum Computing");
    assert.equal(miss.outcome, "miss");
    assert.ok(miss.latencyMs >= DELAY_MS - 5, `a miss waits for the generator: ${miss.latencyMs} ms`);
    assert.equal(await text(page, "answer-outcome"), "MISS");
    const items = await page.getByTestId("answer-subtopics").locator("li").allTextContents();
    assert.equal(items.length, 5);
    assert.ok(items.every((s) => s.includes("Quantum Computing")), items.join(" | "));
    assert.match(await text(page, "answer-key"), /^v1:subtopics:[0-9a-f]{32}$/);
    await waitText(page, "stat-misses", "1");
    await waitText(page, "stat-keys", "1 / 100");
    assert.equal(await text(page, "stat-hits"), "0");

    const hit = await generate(page, "Quantum Computing");
    assert.equal(hit.outcome, "hit");
    assert.ok(hit.latencyMs < miss.latencyMs, `hit ${hit.latencyMs} ms, miss ${miss.latencyMs} ms`);
    assert.equal(await text(page, "answer-outcome"), "HIT");
    assert.deepEqual(await page.getByTestId("answer-subtopics").locator("li").allTextContents(), items);
    await waitText(page, "stat-hits", "1");
    await waitText(page, "stat-hit-rate", "50.0%");
    assert.equal(await text(page, "stat-misses"), "1");
    assert.equal(await text(page, "stat-keys"), "1 / 100");
    assert.match(await text(page, "stat-p99"), /^\d+(\.\d+)? ms$/);
    assert.equal(await page.locator('[data-testid="history"] tbody tr').count(), 2);

    // The chart gains a point every second.
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="hit-rate-chart"]').dataset.points) >= 2);
    await screenshot(page, "2-after-hit");
  });
});

test("concurrent requests for one topic share one generator call", async () => {
  await withDemo(async ({ page }) => {
    await page.getByTestId("topic-input").fill("Compilers");
    await page.evaluate(() => {
      const button = document.querySelector('[data-testid="generate"]');
      button.click();
      button.click();
    });
    await page.waitForFunction(() => document.querySelector('[data-testid="generate-form"]').dataset.done === "2");
    const outcomes = await page.locator('[data-testid="history"] tbody tr').evaluateAll((rows) =>
      rows.map((r) => r.dataset.outcome).sort(),
    );
    assert.deepEqual(outcomes, ["joined", "miss"]);
    await waitText(page, "stat-keys", "1 / 100");
  });
});

test("Explain (streamed): a miss renders the words as they arrive, the next ask is a HIT replaying them", async () => {
  await withDemo(async ({ page }) => {
    const topic = "Distributed Systems";
    const tokens = explanationOf(topic);
    assert.equal(await text(page, "token-delay"), "40");
    assert.match(await text(page, "stream-notice"), /Stand-in generator, not an LLM/);

    // In the page: the word count each time a change to the answer's DOM has changed it.
    await page.evaluate(() => {
      window.streamSteps = [];
      const box = document.querySelector('[data-testid="stream-answers"]');
      new MutationObserver(() => {
        const n = box.querySelector('[data-testid="stream-text"]')?.childElementCount ?? 0;
        if (n !== (window.streamSteps.at(-1) ?? 0)) window.streamSteps.push(n);
      }).observe(box, { childList: true, subtree: true });
    });
    await page.getByTestId("stream-topic-input").fill(topic);
    await page.getByTestId("stream-explain").click();

    // From the test: the word count at each of several waits, each wait ending when the count
    // has grown (or the stream has ended). A stream rendered as it arrives is seen part-way
    // several times; one rendered at the end would jump from 0 to all.
    const answer = page.getByTestId("stream-answer");
    const seen = [];
    for (;;) {
      const { n, state } = await answer.evaluate((a) => ({ n: Number(a.dataset.tokens), state: a.dataset.state }));
      seen.push(n);
      if (state !== "waiting" && state !== "streaming") break;
      if (seen.filter((m) => m > 0).length === 3) await screenshot(page, "9-streaming"); // part-way
      await page.waitForFunction(
        (last) => {
          const a = document.querySelector('[data-testid="stream-answer"]');
          return Number(a.dataset.tokens) > last || !["waiting", "streaming"].includes(a.dataset.state);
        },
        n,
        { timeout: 10_000 },
      );
    }
    assert.equal(await answer.getAttribute("data-state"), "done");
    assert.equal(seen.at(-1), tokens.length);
    const partial = [...new Set(seen.filter((n) => n > 0 && n < tokens.length))];
    assert.ok(partial.length >= 3, `the answer was seen part-way ${partial.length} times: ${seen.join(", ")}`);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i] >= seen[i - 1], `never shrinks: ${seen.join(", ")}`);
    // Each word was added to the page on its own, in order: 1, 2, ..., n.
    assert.deepEqual(await page.evaluate(() => window.streamSteps), tokens.map((_, i) => i + 1));

    assert.equal(await answer.getAttribute("data-outcome"), "miss");
    assert.equal(await text(page, "stream-outcome"), "MISS");
    assert.equal(await page.getByTestId("stream-outcome").getAttribute("class"), "badge miss");
    assert.deepEqual(await page.getByTestId("stream-text").locator("span").allTextContents(), tokens);
    assert.equal(await text(page, "stream-text"), tokens.join(""));
    assert.match(await text(page, "stream-key"), /^v1:explain:[0-9a-f]{32}$/);
    assert.match(await text(page, "stream-latency"), new RegExp(`^first word .+ · ${tokens.length} words in .+$`));

    const hit = await explainStreamed(page, topic);
    assert.deepEqual(hit, [{ outcome: "hit", badge: "HIT", tokens, state: "done" }]);
    assert.equal(await page.getByTestId("stream-outcome").getAttribute("class"), "badge hit");
    assert.match(await text(page, "stream-latency"), new RegExp(`^${tokens.length} words in .+$`));
    await waitText(page, "stat-hits", "1");
    assert.equal(await text(page, "stat-misses"), "1");
    await waitText(page, "stat-keys", "1 / 100");
  });
});

test("Explain (streamed): Ask twice, the second request JOINS the first one's generation", async () => {
  await withDemo(async ({ page }) => {
    const topic = "Consensus Protocols";
    const tokens = explanationOf(topic);
    const both = await explainStreamed(page, topic, { twice: true });
    assert.deepEqual(both.map((a) => a.outcome), ["miss", "joined"]);
    assert.equal(both[0].badge, "MISS");
    assert.match(both[1].badge, /^JOINED/);
    for (const a of both) {
      assert.equal(a.state, "done");
      assert.deepEqual(a.tokens, tokens, "both show the same words");
    }
    assert.deepEqual(
      await page.getByTestId("stream-outcome").evaluateAll((badges) => badges.map((b) => b.className)),
      ["badge miss", "badge hit"],
      "the badges are styled as the answer's",
    );
    await waitText(page, "stat-keys", "1 / 100", 5_000);
    await screenshot(page, "10-streamed-joined");

    // The recording is now cached: asking twice again is two replays.
    const again = await explainStreamed(page, topic, { twice: true });
    assert.deepEqual(again.map((a) => [a.outcome, a.badge]), [["hit", "HIT"], ["hit", "HIT"]]);
    for (const a of again) assert.deepEqual(a.tokens, tokens);
  });
});

test("grace: past its TTL the answer is served STALE at once while one refresh runs, then HIT", async () => {
  await withDemo(async ({ page }) => {
    await page.getByTestId("ttl-select").selectOption("2s");
    assert.equal(await page.getByTestId("grace-select").inputValue(), "1m");
    assert.equal((await generate(page, "Operating Systems")).outcome, "miss");
    await new Promise((r) => setTimeout(r, 2_100));
    const stale = await generate(page, "Operating Systems");
    assert.equal(stale.outcome, "stale");
    assert.equal(await text(page, "answer-outcome"), "STALE · refreshing");
    await page.waitForTimeout(DELAY_MS + 100); // the background refresh
    assert.equal((await generate(page, "Operating Systems")).outcome, "hit");
    await screenshot(page, "5-stale");
    await page.getByTestId("grace-select").selectOption("0s");
    await new Promise((r) => setTimeout(r, 2_100));
    assert.equal((await generate(page, "Operating Systems")).outcome, "miss", "without grace an expired answer is a miss");
  });
});

test("invalidating the namespace makes the next Generate a miss", async () => {
  await withDemo(async ({ page }) => {
    assert.equal((await generate(page, "Databases")).outcome, "miss");
    assert.equal((await generate(page, "Databases")).outcome, "hit");
    assert.equal(await page.getByTestId("namespace-input").inputValue(), "subtopics");
    await page.getByTestId("invalidate").click();
    await waitText(page, "invalidate-result", "Invalidated namespace “subtopics”: 1 key deleted.");
    await waitText(page, "stat-keys", "0 / 100");
    assert.equal((await generate(page, "Databases")).outcome, "miss");
    await waitText(page, "stat-misses", "2");
  });
});

test("Keep answers in this browser: a reload keeps them, tabs share invalidations and generations", async () => {
  await withDemo(async ({ page }) => {
    const toggle = page.getByTestId("persist-toggle");
    await toggle.check();
    await waitText(page, "persist-result", "Answers are kept in this browser: reload, or open this page in another tab.");
    assert.equal((await generate(page, "Compilers")).outcome, "miss");
    // A reload: the switch is still on and the answer comes from IndexedDB.
    await page.reload();
    await page.waitForSelector("body[data-ready=true]", { timeout: 15_000 });
    assert.equal(await toggle.isChecked(), true);
    assert.equal((await generate(page, "Compilers")).outcome, "hit");

    // A second tab of the page.
    const other = await page.context().newPage();
    const otherProblems = [];
    other.on("pageerror", (e) => otherProblems.push(String(e)));
    await other.goto(page.url());
    await other.waitForSelector("body[data-ready=true]", { timeout: 15_000 });
    assert.equal((await generate(other, "Compilers")).outcome, "hit", "the other tab reads the kept answer");
    // An invalidation in the first tab shows in the second, whose next ask is a miss.
    await page.getByTestId("invalidate").click();
    await waitText(page, "invalidate-result", "Invalidated namespace “subtopics”: 1 key deleted.");
    await waitText(other, "persist-result", "Another tab removed v1:subtopics:*.");
    assert.equal((await generate(other, "Compilers")).outcome, "miss");
    // The same new topic asked in both tabs at once: generated once. The other tab joins the
    // generation (or, on a machine slow enough that its click comes after the first tab's answer,
    // reads it: a hit); it never generates too.
    const both = await Promise.all([generate(page, "Type systems"), generate(other, "Type systems")]);
    const outcomes = both.map((b) => b.outcome).sort();
    assert.ok(["joined,miss", "hit,miss"].includes(String(outcomes)), `one generation: ${outcomes}`);
    assert.deepEqual(otherProblems, []);
    await other.close();
  }, { query: "?delay=1000" }); // a generation long enough for the second tab to ask meanwhile
});

test("warming fills the progress bar and accounts for every popular topic", async () => {
  await withDemo(async ({ page }) => {
    const topics = await page.getByTestId("popular-topics").getByRole("button").allTextContents();
    assert.ok(topics.length >= 3, topics.join(", "));
    assert.equal((await generate(page, topics[0], { chip: true })).outcome, "miss");

    // Record every value the progress bar takes.
    await page.evaluate(() => {
      const bar = document.querySelector('[data-testid="warm-progress"]');
      window.progressSeen = [];
      new MutationObserver(() => window.progressSeen.push([bar.value, bar.max])).observe(bar, {
        attributes: true,
        attributeFilter: ["value"],
      });
    });
    await page.getByTestId("warm").click();
    await waitText(page, "warm-result", /^Warmed \d+/, 10_000);

    const [value, max] = await page.getByTestId("warm-progress").evaluate((bar) => [bar.value, bar.max]);
    assert.equal(max, topics.length);
    assert.equal(value, max, "the bar is full");
    const seen = await page.evaluate(() => window.progressSeen);
    const values = seen.map(([v]) => v).filter((v) => v > 0);
    assert.deepEqual(values.slice(0, topics.length), topics.map((_, i) => i + 1), `progress: ${JSON.stringify(seen)}`);

    const m = /^Warmed (\d+), skipped (\d+) \(already cached\), failed (\d+)\.$/.exec(await text(page, "warm-result"));
    assert.ok(m, await text(page, "warm-result"));
    const [warmed, skipped, failed] = m.slice(1).map(Number);
    assert.equal(warmed + skipped + failed, topics.length);
    assert.deepEqual({ warmed, skipped, failed }, { warmed: topics.length - 1, skipped: 1, failed: 0 });
    await waitText(page, "stat-keys", `${topics.length} / 100`);

    assert.equal((await generate(page, topics[1], { chip: true })).outcome, "hit");
    await screenshot(page, "3-after-warming");
  });
});

test("delete by pattern: a malformed glob matches as Redis reads it", async () => {
  await withDemo(async ({ page }) => {
    await generate(page, "Graph Theory");
    // Redis reads an unclosed class as a class: "[abc" matches the one-letter keys a, b, c.
    await page.getByTestId("pattern-input").fill("[abc");
    await page.getByTestId("delete-pattern").click();
    await waitText(page, "pattern-result", "Pattern [abc: 0 keys deleted.");
    assert.equal(await page.getByTestId("pattern-result").getAttribute("data-code"), null);
    await waitText(page, "stat-keys", "1 / 100");
  });
});

test("delete by pattern: the empty pattern shows INVALID_PATTERN, a good one the count deleted", async () => {
  await withDemo(async ({ page }) => {
    await generate(page, "Graph Theory");
    await generate(page, "Linear Algebra");
    await waitText(page, "stat-keys", "2 / 100");

    const pattern = page.getByTestId("pattern-input");
    await pattern.fill("");
    await page.getByTestId("delete-pattern").click();
    assert.equal(await errorCode(page, "pattern-result"), "INVALID_PATTERN");
    assert.match(await text(page, "pattern-result"), /empty/);
    await screenshot(page, "4-error");

    await pattern.fill("v1:subtopics:*");
    await page.getByTestId("delete-pattern").click();
    await waitText(page, "pattern-result", "Pattern v1:subtopics:*: 2 keys deleted.");
    assert.equal(await page.getByTestId("pattern-result").getAttribute("data-code"), null);
    await waitText(page, "stat-keys", "0 / 100");
  });
});

test("bumping the version makes the next Generate a miss and shows the new version", async () => {
  await withDemo(async ({ page }) => {
    await generate(page, "Cryptography");
    assert.equal((await generate(page, "Cryptography")).outcome, "hit");
    assert.equal(await text(page, "version"), "v1");

    await page.getByTestId("bump-version").click();
    await waitText(page, "version-result", "Version v1 → v2: 1 old key invalidated.");
    await waitText(page, "stat-version", "v2");
    await waitText(page, "version", "v2");
    assert.equal(await page.getByTestId("pattern-input").inputValue(), "v2:subtopics:*");

    assert.equal((await generate(page, "Cryptography")).outcome, "miss");
    assert.match(await text(page, "answer-key"), /^v2:subtopics:[0-9a-f]{32}$/);
    assert.equal((await generate(page, "Cryptography")).outcome, "hit");
  });
});

test("after shut down every action shows SHUT_DOWN", async () => {
  await withDemo(async ({ page }) => {
    await generate(page, "Operating Systems");
    await page.getByTestId("shutdown").click();
    await waitText(page, "shutdown-result", /shut down/);
    await waitText(page, "stats-state", "unhealthy");

    await page.getByTestId("topic-input").fill("Operating Systems");
    await page.getByTestId("generate").click();
    assert.equal(await errorCode(page, "generate-result"), "SHUT_DOWN");
    await page.getByTestId("invalidate").click();
    assert.equal(await errorCode(page, "invalidate-result"), "SHUT_DOWN");
    await page.getByTestId("delete-pattern").click();
    assert.equal(await errorCode(page, "pattern-result"), "SHUT_DOWN");
    await page.getByTestId("bump-version").click();
    assert.equal(await errorCode(page, "version-result"), "SHUT_DOWN");
    await page.getByTestId("warm").click();
    assert.equal(await errorCode(page, "warm-result"), "SHUT_DOWN");
    await page.getByTestId("stream-topic-input").fill("Operating Systems");
    await page.getByTestId("stream-explain").click();
    assert.equal(await errorCode(page, "stream-result"), "SHUT_DOWN");
    assert.equal(await page.getByTestId("stream-answer").getAttribute("data-state"), "failed");
    // Shutting down twice is allowed and changes nothing.
    await page.getByTestId("shutdown").click();
    await waitText(page, "shutdown-result", /shut down/);
    await screenshot(page, "5-shut-down");
  });
});

test("on a phone-sized screen the page is one column without horizontal scrolling", async () => {
  await withDemo(
    async ({ page }) => {
      await generate(page, "Rust");
      const { scrollWidth, innerWidth } = await page.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth,
        innerWidth: window.innerWidth,
      }));
      assert.ok(scrollWidth <= innerWidth, `scrollWidth ${scrollWidth} > ${innerWidth}`);
      const ask = await page.locator("section.ask").boundingBox();
      const stats = await page.getByTestId("stats").boundingBox();
      assert.ok(stats.y >= ask.y + ask.height, "statistics below the form");
      const manage = await page.locator("section.manage").boundingBox();
      const shared = await page.getByTestId("shared-tier").boundingBox();
      assert.ok(shared.y >= manage.y + manage.height, "the shared-tier settings come last");
      // One-word values stay on one line, inside their cells, whatever the health.
      await waitText(page, "stat-backend", "memory");
      const cramped = await page.evaluate(() => {
        const words = { "stat-backend": ["upstash", "memory"], "stat-health": ["healthy", "degraded", "unhealthy"], "stat-fallback": ["standby", "active"] };
        const bad = [];
        for (const [id, list] of Object.entries(words)) {
          const dd = document.querySelector(`[data-testid="${id}"]`);
          const shown = dd.textContent;
          for (const word of list) {
            dd.textContent = word;
            const range = document.createRange();
            range.selectNodeContents(dd);
            if (range.getClientRects().length !== 1 || dd.scrollWidth > dd.clientWidth) bad.push(`${id}: ${word}`);
          }
          dd.textContent = shown;
        }
        return bad;
      });
      assert.deepEqual(cramped, []);
      await screenshot(page, "6-phone");
    },
    { viewport: { width: 390, height: 844 } },
  );
});

test("on the narrowest phones the statistics' one-word values still fit", async () => {
  await withDemo(
    async ({ page }) => {
      await waitText(page, "stat-backend", "memory");
      const scroll = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(scroll <= 320, `scrollWidth ${scroll} > 320`);
      const cramped = await page.evaluate(() =>
        ["stat-backend", "stat-health", "stat-fallback"].flatMap((id) => {
          const dd = document.querySelector(`[data-testid="${id}"]`);
          dd.textContent = "unhealthy"; // the longest value any of them can show
          const range = document.createRange();
          range.selectNodeContents(dd);
          return range.getClientRects().length !== 1 || dd.scrollWidth > dd.clientWidth ? [id] : [];
        }),
      );
      assert.deepEqual(cramped, []);
    },
    { viewport: { width: 320, height: 640 } },
  );
});
