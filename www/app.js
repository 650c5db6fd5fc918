// The demo page: one Cache from the package's `cachette/web` entry (the memory tier, or memory +
// the shared Upstash tier once connected), a stand-in generator behind `getOrSetEntry` (its
// status shown: hit, miss, joined, stale; with the TTL and grace chosen on the page), live
// statistics and the cache's management calls; and a streamed explanation through
// `getOrSetStream` (rendered token by token on a miss, joined by a second request meanwhile,
// replayed on a hit).
// URL parameters (for tests and experiments): ?delay=<ms of the stand-in generator, default 1000>,
// ?tokenDelay=<ms between the streamed stand-in's tokens, default 40>.
// The Upstash URL and token are typed into the page only: the token lives in its password field
// and in the cache, and is never written to the page, the address bar, storage or the console.
// "Keep answers in this browser" (`persist`) is remembered in localStorage, so that it is still
// on after a reload; the other tabs' changes arrive through the cache's BroadcastChannel.
import { init, Cache, CacheError } from "cachette/web";
import { createChart } from "./chart.js";
import { generateSubtopics, streamExplanation } from "./generator.js";

const POPULAR_TOPICS = [
  "Python Programming",
  "Machine Learning",
  "Web Development",
  "Data Science",
  "Cloud Computing",
  "Cybersecurity",
];
const NAMESPACE = "subtopics";
const STREAM_NAMESPACE = "explain";
const STATS_EVERY_MS = 1000;
const HISTORY_ROWS = 8;
/** Every cache this page makes; `version` comes from the cache it replaces. */
const CACHE_OPTIONS = { ttl: 600, maxEntries: 100, cleanupInterval: 30, popularTopics: POPULAR_TOPICS };
/** The shared tier: a short timeout and one retry, so an unreachable Upstash shows quickly. */
const UPSTASH_TIMEOUT_MS = 3000;
const UPSTASH_RETRIES = 1;
/** The demo's IndexedDB database, and where the switch is remembered. */
const PERSIST = { name: "cachette-demo" };
const PERSIST_SETTING = "cachette-demo:persist";

/** @type {(testid: string) => any} The element with this data-testid. */
const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);
const delayMs = readDelay("delay", 1000);
const tokenDelayMs = readDelay("tokenDelay", 40);
const chart = createChart($("hit-rate-chart"));
let cache;
let statsTimer;
let generations = 0;
let explanations = 0;
let upstashHost = null; // host of the connected shared tier, null while memory only
const secrets = new Set(); // every token given to a cache, to blank out of any text shown
let statsSeq = 0; // refreshes started, so that a slow one never overwrites a newer one
let statsShown = 0;
let ticking = false;
let upstashOptions = null; // the shared tier's options while connected
let channel = null; // the persisted cache's channel, read to show the other tabs' changes

// --- start ---------------------------------------------------------------------------------

$("delay").textContent = String(delayMs);
$("token-delay").textContent = String(tokenDelayMs);
for (const topic of POPULAR_TOPICS) {
  const chip = button(topic, () => {
    $("topic-input").value = topic;
    generate(topic);
  });
  chip.className = "chip";
  $("popular-topics").append(chip);
  document.getElementById("popular-list").append(new Option(topic));
}

start();

async function start() {
  const status = $("generate-result");
  status.textContent = "Loading the WebAssembly module…";
  try {
    await init();
    $("persist-toggle").checked = persistWanted();
    cache = makeCache("v1");
    listenToTabs();
  } catch (e) {
    showError(status, e, "Cachette could not start");
    return;
  }
  status.textContent = "";
  wire();
  for (const b of document.querySelectorAll("button")) b.disabled = false;
  $("persist-toggle").disabled = false;
  showConnection();
  await refreshStats({ sample: true });
  startStatsTimer();
  document.body.dataset.ready = "true";
}

function startStatsTimer() {
  clearInterval(statsTimer);
  statsTimer = setInterval(tick, STATS_EVERY_MS);
}

/** A timer tick: one chart sample; skipped while the previous one still waits (a slow Upstash). */
async function tick() {
  if (ticking) return;
  ticking = true;
  try {
    await refreshStats({ sample: true });
  } finally {
    ticking = false;
  }
}

function wire() {
  $("generate-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const topic = $("topic-input").value.trim();
    if (topic) generate(topic);
  });

  $("stream-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const topic = $("stream-topic-input").value.trim();
    if (topic) explainStreamed(topic, 1);
  });
  $("stream-twice").addEventListener("click", () => {
    const input = $("stream-topic-input");
    const topic = input.value.trim();
    if (topic) explainStreamed(topic, 2);
    else input.reportValidity();
  });

  $("invalidate-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const ns = $("namespace-input").value.trim();
    act($("invalidate-result"), async () => {
      const n = await cache.invalidateNamespace(ns);
      return `Invalidated namespace “${ns}”: ${plural(n, "key")} deleted.`;
    });
  });

  $("pattern-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const pattern = $("pattern-input").value;
    act($("pattern-result"), async () => {
      const n = await cache.deletePattern(pattern);
      return `Pattern ${pattern}: ${plural(n, "key")} deleted.`;
    });
  });

  $("bump-version").addEventListener("click", () =>
    act($("version-result"), async () => {
      const from = cache.version;
      const to = nextVersion(from);
      const n = await cache.updateVersion(to);
      const pattern = $("pattern-input");
      if (pattern.value === `${from}:${NAMESPACE}:*`) pattern.value = `${to}:${NAMESPACE}:*`;
      return `Version ${from} → ${to}: ${plural(n, "old key")} invalidated.`;
    }),
  );

  $("warm").addEventListener("click", warm);

  $("shutdown").addEventListener("click", () =>
    act($("shutdown-result"), async () => {
      cache.shutdown();
      clearInterval(statsTimer);
      return "The cache is shut down: every later call fails with SHUT_DOWN. Reload the page, or connect or disconnect the shared tier, for a new one.";
    }),
  );

  $("persist-toggle").addEventListener("change", () =>
    act($("persist-result"), async () => {
      const on = $("persist-toggle").checked;
      try {
        localStorage.setItem(PERSIST_SETTING, on ? "on" : "off");
      } catch {}
      replaceCache(makeCache(cache.version), upstashHost);
      return on
        ? "Answers are kept in this browser: reload, or open this page in another tab."
        : "Answers are kept in memory only (what IndexedDB holds stays there).";
    }),
  );

  $("upstash-form").addEventListener("submit", (event) => {
    event.preventDefault();
    connect();
  });
  $("upstash-disconnect").addEventListener("click", disconnect);
}

// --- shared tier ---------------------------------------------------------------------------

/** Replaces the cache with one on Upstash (URL and token from the form), memory as fallback. */
async function connect() {
  const url = $("upstash-url").value.trim();
  const token = $("upstash-token").value.trim();
  if (token) secrets.add(token); // before anything can echo it
  const out = $("upstash-result");
  setSharedBusy(true);
  await act(out, async () => {
    out.textContent = "Connecting…";
    // Made before the old cache goes: refused options (CacheError INVALID_OPTIONS) keep it.
    const options = { upstash: { url, token, timeoutMs: UPSTASH_TIMEOUT_MS, retries: UPSTASH_RETRIES }, fallback: true };
    const next = makeCache(cache.version, options);
    upstashOptions = options;
    const host = hostOf(url);
    replaceCache(next, host);
    const health = await next.health();
    if (next !== cache) return ""; // replaced again meanwhile
    if (health.status === "healthy") return `Connected to ${host}: it answered in ${formatMs(health.latencyMs)}.`;
    return `Connected to ${host}, but the shared tier is ${health.status}${health.error ? `: ${health.error}` : ""}. The memory tier serves meanwhile.`;
  });
  setSharedBusy(false);
}

/** Replaces the cache with a memory-only one. */
async function disconnect() {
  const out = $("upstash-result");
  const from = upstashHost;
  setSharedBusy(true);
  await act(out, async () => {
    upstashOptions = null;
    replaceCache(makeCache(cache.version), null);
    return `Disconnected from ${from}: a new cache, memory tier only. What was stored stays in Redis.`;
  });
  setSharedBusy(false);
}

/** Whether "Keep answers in this browser" is on (remembered across reloads). */
function persistWanted() {
  try {
    return localStorage.getItem(PERSIST_SETTING) === "on";
  } catch {
    return false;
  }
}

/** A cache with the page's options, the shared tier's (`shared`) and `persist` when on. */
function makeCache(version, shared = upstashOptions) {
  const persist = $("persist-toggle").checked ? { persist: PERSIST } : {};
  return new Cache({ version, ...CACHE_OPTIONS, ...(shared ?? {}), ...persist });
}

/**
 * Shows what other tabs of this page change in the persisted cache: the cache drops those keys
 * from its memory itself; this listens to the same channel (its messages name keys and
 * patterns, never values) to say so on the page.
 */
function listenToTabs() {
  if (typeof BroadcastChannel !== "function") return;
  channel = new BroadcastChannel(`cachette:${PERSIST.name}`);
  channel.onmessage = (event) => {
    if (!$("persist-toggle").checked || event.data?.from !== "cachette") return;
    for (const m of event.data.messages ?? []) {
      const what =
        m.type === "pattern" ? `removed ${m.pattern}` : m.type === "delete" ? `deleted ${m.key}` : m.type === "clear" ? "cleared the cache" : null;
      if (what) showResult($("persist-result"), `Another tab ${what}.`);
    }
  };
}

/** Makes `next` the page's cache and shuts the old one down; the chart starts over. */
function replaceCache(next, host) {
  const old = cache;
  cache = next;
  upstashHost = host;
  old.shutdown();
  chart.reset();
  showResult($("shutdown-result"), "");
  showConnection();
  startStatsTimer();
}

/** The connection line: the host, and how the shared tier is doing (from the last health). */
function showConnection(status) {
  const connected = upstashHost !== null;
  const card = $("shared-tier");
  card.dataset.connected = String(connected);
  if (connected && status) card.dataset.health = status;
  else delete card.dataset.health;
  const state = { degraded: ": degraded, memory serves", unhealthy: ": unhealthy" }[status] ?? "";
  $("upstash-connection").textContent = connected ? `Connected to ${upstashHost}${state}.` : "Not connected: memory tier only.";
  $("upstash-disconnect").disabled = !connected;
}

function setSharedBusy(busy) {
  $("upstash-connect").disabled = busy;
  $("upstash-disconnect").disabled = busy || upstashHost === null;
}

/** The host of a URL the cache accepted (never its user info, path or query). */
function hostOf(url) {
  try {
    return new URL(url).host || "the server";
  } catch {
    return "the server";
  }
}

// --- generate ------------------------------------------------------------------------------

async function generate(topic) {
  const status = $("generate-result");
  showResult(status, `Asking for “${topic}”…`);
  const started = performance.now();
  try {
    // The entry's status says how the answer came: from the cache (hit), generated (miss),
    // from a generation already running (joined), or, within the grace period, the expired
    // answer at once while one refresh runs (stale).
    const entry = await cache.getOrSetEntry(NAMESPACE, { topic }, () => generateSubtopics(topic, delayMs), callOptions());
    const ms = performance.now() - started;
    showResult(status, "");
    showAnswer({ topic, subtopics: entry.value, outcome: entry.status, age: entry.age, ms, key: entry.key });
  } catch (e) {
    showError(status, e, `Generating “${topic}” failed`);
  }
  $("generate-form").dataset.done = String(++generations); // requests answered, for tests
  await refreshStats();
}

/** The TTL and grace chosen on the page, as `getOrSetEntry` options. */
function callOptions() {
  const grace = $("grace-select").value;
  return {
    ttl: $("ttl-select").value,
    grace,
    staleWhileRevalidate: grace !== "0s",
    staleIfError: grace !== "0s",
  };
}

/** The stand-in generator for `warm` (a getOrSet meanwhile joins its generation). */
function warmOne(topic) {
  return generateSubtopics(topic, delayMs);
}

const OUTCOME_LABEL = {
  hit: "HIT",
  miss: "MISS",
  joined: "JOINED · generation in flight",
  stale: "STALE · refreshing",
  "stale-error": "STALE · generator failed",
};
const OUTCOME_CLASS = { hit: "hit", joined: "hit", miss: "miss", stale: "stale", "stale-error": "stale" };

function showAnswer({ topic, subtopics, outcome, age, ms, key }) {
  const answer = $("answer");
  answer.hidden = false;
  answer.dataset.outcome = outcome;
  answer.dataset.latencyMs = ms.toFixed(3);
  $("answer-topic").textContent = topic;
  $("answer-outcome").textContent = OUTCOME_LABEL[outcome];
  $("answer-outcome").className = `badge ${OUTCOME_CLASS[outcome]}`;
  $("answer-latency").textContent = outcome === "miss" ? formatMs(ms) : `${formatMs(ms)} · ${age.toFixed(1)} s old`;
  $("answer-key").textContent = key;
  $("answer-subtopics").replaceChildren(...subtopics.map((s) => Object.assign(document.createElement("li"), { textContent: s })));

  const body = $("history").tBodies[0];
  body.querySelector(".empty")?.remove();
  const row = body.insertRow(0);
  row.dataset.outcome = outcome;
  row.insertCell().textContent = topic;
  const badge = Object.assign(document.createElement("span"), {
    className: `badge small ${OUTCOME_CLASS[outcome]}`,
    textContent: OUTCOME_LABEL[outcome],
  });
  row.insertCell().append(badge);
  const cell = row.insertCell();
  cell.className = "num";
  cell.textContent = formatMs(ms);
  while (body.rows.length > HISTORY_ROWS) body.deleteRow(-1);
}

// --- streamed explanation ------------------------------------------------------------------

/**
 * Asks for the streamed explanation of `topic` `times` times at once (2: "Ask twice"). Every
 * call starts before any is awaited, so the later ones join the first one's generation when it
 * is a miss. Each answer renders its tokens as they arrive.
 */
async function explainStreamed(topic, times) {
  const out = $("stream-result");
  showResult(out, "");
  const views = Array.from({ length: times }, () => streamView(topic));
  $("stream-answers").replaceChildren(...views.map((v) => v.article));
  const started = performance.now();
  const calls = views.map(() =>
    cache.getOrSetStream(STREAM_NAMESPACE, { topic }, ({ signal }) => streamExplanation(topic, tokenDelayMs, signal)),
  );
  await Promise.all(
    calls.map(async (call, i) => {
      const view = views[i];
      try {
        const { stream, status, key } = await call;
        view.begin(status, key);
        const reader = stream.getReader();
        for (let r; !(r = await reader.read()).done; ) view.append(r.value, performance.now() - started);
        view.end(performance.now() - started);
      } catch (e) {
        view.fail();
        showError(out, e, `Explaining “${topic}” failed`);
      }
    }),
  );
  $("stream-form").dataset.done = String(++explanations); // clicks answered, for tests
  await refreshStats();
}

/**
 * One streamed answer on the page: `begin(status, key)` shows the badge, `append(token, ms)`
 * adds a token (one <span> each), `end(ms)` and `fail()` finish it. The article's data-state
 * is "waiting", "streaming", "done" or "failed"; data-tokens counts the tokens shown.
 */
function streamView(topic) {
  const badge = node("span", { className: "badge" }, "stream-outcome");
  const latency = node("span", { className: "latency" }, "stream-latency");
  const header = node("header");
  header.append(node("h3", { textContent: topic }), badge, latency);
  const text = node("p", { className: "stream-text" }, "stream-text");
  text.setAttribute("aria-busy", "true");
  const key = node("code", {}, "stream-key");
  const keyLine = node("p", { className: "key", textContent: "Key " });
  keyLine.append(key);
  const article = node("article", { className: "answer streamed" }, "stream-answer");
  article.append(header, text, keyLine);
  article.dataset.state = "waiting";
  article.dataset.tokens = "0";
  let firstMs;
  const finish = (state) => {
    article.dataset.state = state;
    text.setAttribute("aria-busy", "false");
  };
  return {
    article,
    begin(status, cacheKey) {
      article.dataset.outcome = status;
      article.dataset.state = "streaming";
      badge.textContent = OUTCOME_LABEL[status];
      badge.className = `badge ${OUTCOME_CLASS[status]}`;
      key.textContent = cacheKey;
    },
    append(token, ms) {
      firstMs ??= ms;
      text.append(node("span", { textContent: token }));
      article.dataset.tokens = String(text.childElementCount);
    },
    end(ms) {
      finish("done");
      const words = plural(text.childElementCount, "word");
      latency.textContent =
        article.dataset.outcome === "hit" ? `${words} in ${formatMs(ms)}` : `first word ${formatMs(firstMs ?? ms)} · ${words} in ${formatMs(ms)}`;
    },
    fail() {
      finish("failed");
      badge.textContent = "FAILED";
      badge.className = "badge failed";
    },
  };
}

// --- warm ----------------------------------------------------------------------------------

async function warm() {
  const progress = $("warm-progress");
  const out = $("warm-result");
  const trigger = $("warm");
  trigger.disabled = true; // one warm at a time
  progress.max = POPULAR_TOPICS.length;
  progress.value = 0;
  await act(out, async () => {
    out.textContent = "Warming…";
    const r = await cache.warm(
      { [NAMESPACE]: warmOne },
      {
        concurrency: 3,
        onProgress: ({ done, total, topic, outcome }) => {
          progress.max = total;
          progress.value = done;
          out.textContent = `${done}/${total} · ${topic}: ${outcome}`;
          refreshStats();
        },
      },
    );
    progress.value = progress.max; // also when there was nothing to report
    const summary = `Warmed ${r.warmed}, skipped ${r.skipped} (already cached), failed ${r.failed}.`;
    if (r.failed === 0) return summary;
    // Failed topics are reported, not thrown: show the first one, with its code.
    const { topic = "?", error } = r.errors[0] ?? {};
    const message = `${summary} First failure, “${topic}”: ${error?.message ?? error}`;
    throw error instanceof CacheError ? new CacheError(error.code, message, { cause: error }) : new Error(message);
  });
  trigger.disabled = false;
}

// --- statistics ----------------------------------------------------------------------------

/** Shows the current statistics; `sample` also adds a point to the chart (once a second). */
async function refreshStats({ sample = false } = {}) {
  const c = cache;
  const seq = ++statsSeq;
  let s, health;
  try {
    [s, health] = await Promise.all([c.stats(), c.health()]);
  } catch (e) {
    if (c !== cache || seq < statsShown) return;
    statsShown = seq;
    if (e instanceof CacheError && e.code === "SHUT_DOWN") {
      clearInterval(statsTimer);
      showStatsState("unhealthy", "unhealthy", e.message);
    } else {
      showStatsState("error", "error", describe(e));
    }
    return;
  }
  if (c !== cache || seq < statsShown) return; // a newer cache, or a newer answer, is shown
  statsShown = seq;
  showStatsState(health.status, health.status === "healthy" ? "live" : health.status, health.error);
  $("stat-hit-rate").textContent = `${s.hitRatePercent.toFixed(1)}%`;
  $("stat-hits").textContent = String(s.hits);
  $("stat-misses").textContent = String(s.misses);
  // On Upstash, `keys` counts Redis (DBSIZE); in memory (and during a fallback) the memory tier.
  const inRedis = s.backend === "upstash" && s.upstash !== undefined;
  $("stat-keys-label").textContent = inRedis ? "Keys in Redis" : "Keys";
  $("stat-keys").textContent = inRedis ? String(s.keys) : `${s.keys} / ${s.maxEntries}`;
  $("stat-evictions").textContent = String(s.evictions);
  $("stat-p99").textContent = formatMs(s.p99LatencyMs);
  $("stat-version").textContent = s.version;
  $("version").textContent = s.version;
  showBackend(s, health);
  if (upstashHost !== null) showConnection(health.status);
  if (sample) chart.push(s.hitRatePercent);
}

/** Backend, health, fallback and, on Upstash, the figures Redis reports. */
function showBackend(s, health) {
  const shared = s.backend === "upstash";
  $("stat-backend").textContent = s.backend;
  $("stat-health").textContent = health.status;
  $("stat-health").dataset.status = health.status;
  const fallback = shared ? (s.fallbackActive ? "active" : "standby") : "–";
  $("stat-fallback").textContent = fallback;
  $("stat-fallback").dataset.fallback = fallback;
  const error = $("stat-health-error");
  error.hidden = !health.error;
  error.textContent = health.error ? `${health.status === "degraded" ? "Memory is serving: " : ""}${redact(health.error)}` : "";
  $("backend-note").textContent = shared
    ? `Backend: Upstash at ${upstashHost}, with the memory tier in WebAssembly as its fallback.`
    : "Backend: memory tier in WebAssembly.";

  $("upstash-stats").hidden = !shared;
  if (!shared) return;
  const u = s.upstash; // absent while Upstash does not answer
  const figure = (testid, value) => ($(testid).textContent = value === undefined ? "–" : value);
  figure("stat-keyspace-hits", u?.keyspaceHits);
  figure("stat-keyspace-misses", u?.keyspaceMisses);
  figure("stat-evicted-keys", u?.evictedKeys);
  figure("stat-used-memory", u && formatBytes(u.usedMemoryBytes));
  figure("stat-round-trips", u?.roundTrips);
  figure("stat-errors", s.errors);
}

function showStatsState(state, label, detail = "") {
  $("stats").dataset.state = state;
  $("stats-state").textContent = label;
  $("stats-state").title = redact(detail ?? "");
}

// --- helpers -------------------------------------------------------------------------------

/** Runs `fn` and shows what it resolves to, or its error, in `out`; then refreshes the stats. */
async function act(out, fn) {
  showResult(out, "");
  try {
    showResult(out, await fn());
  } catch (e) {
    showError(out, e);
  }
  await refreshStats();
}

function showResult(out, text) {
  out.className = "result";
  delete out.dataset.code;
  out.textContent = redact(text);
}

/** A readable error with its CacheError code; anything else is labelled unexpected. */
function showError(out, error, context) {
  out.className = "result error";
  const code = error instanceof CacheError ? error.code : "UNEXPECTED";
  out.dataset.code = code;
  const tag = Object.assign(document.createElement("code"), { textContent: code });
  const text = `${context ? `${context}: ` : ""}${error?.message ?? String(error)}`;
  out.replaceChildren(tag, " ", redact(text));
}

function describe(error) {
  return redact(error instanceof CacheError ? `${error.code}: ${error.message}` : String(error?.message ?? error));
}

/**
 * `text` with every token given to a cache blanked out. The package never puts a token in its
 * messages; this keeps the page from showing one should any other text ever carry it.
 */
function redact(text) {
  let out = String(text);
  for (const secret of secrets) if (secret.length >= 4) out = out.replaceAll(secret, "[token]");
  return out;
}

/** A new `tag` element with `props` assigned, and `data-testid` if given. */
function node(tag, props = {}, testid) {
  const e = Object.assign(document.createElement(tag), props);
  if (testid) e.dataset.testid = testid;
  return e;
}

function button(text, onClick) {
  const b = Object.assign(document.createElement("button"), { type: "button", textContent: text, disabled: true });
  b.addEventListener("click", onClick);
  return b;
}

function nextVersion(version) {
  const m = /^(.*?)(\d+)$/.exec(version);
  return m ? `${m[1]}${Number(m[2]) + 1}` : `${version}-2`;
}

/** A delay in milliseconds from URL parameter `name` (0 to 60000), else `fallback`. */
function readDelay(name, fallback) {
  const raw = new URLSearchParams(location.search).get(name);
  const ms = raw === null ? NaN : Number(raw);
  return Number.isFinite(ms) && ms >= 0 ? Math.min(ms, 60_000) : fallback;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 ** 2).toFixed(1)} MiB`;
}

function formatMs(ms) {
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  return `${Math.round(ms)} ms`;
}
