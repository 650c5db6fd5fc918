// The Rust Worker's GET /api/explain (examples/worker: `cachette::worker::Cache::get_or_set_stream`,
// its stand-in's tokens as server-sent events) under workerd, against redis-server +
// upstash-bridge: a miss streams its tokens as they come, a concurrent request joins with the
// same events, the next one replays the recording (a hit) and Upstash holds it in the JS
// recording format; a failing generation ends with an `error` event and is not recorded; a
// joined reader outlives the client that started the generation; a recording made by the Rust
// Worker is a hit for the npm package's getOrSetStream over the same Upstash, and the other way.
// Each isolate is a worker of its own Miniflare, bound to the bridge; `failing` has the test-only
// var STAND_IN_FAIL_AT, which makes the stand-in fail in place of that token.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Miniflare } from "miniflare";
import { ROOT } from "../packaging/helpers.mjs";
import { WORKERS, freshTopic, secrets, startUpstash } from "./helpers.mjs";

// The npm package as built in pkg/ (`./run test_workers` builds it), for recordings shared with
// JavaScript over Upstash.
const { Cache } = await import(pathToFileURL(join(ROOT, "pkg", "node.mjs")).href);

const FAIL_AT = 3;

let up;
let mf;
const workers = {};
before(async () => {
  up = await startUpstash();
  const w = WORKERS.rust;
  const isolates = { main: secrets(up), failing: secrets(up, { STAND_IN_FAIL_AT: String(FAIL_AT) }) };
  mf = new Miniflare({
    workers: Object.entries(isolates).map(([name, bindings]) => ({
      name,
      modules: w.modules(),
      modulesRoot: w.modulesRoot,
      compatibilityDate: "2026-04-01",
      bindings,
    })),
  });
  await mf.ready;
  for (const name of Object.keys(isolates)) workers[name] = await mf.getWorker(name);
});
after(async () => {
  await mf?.dispose();
  up?.stop();
});

const explainPath = (topic) => `/api/explain?topic=${encodeURIComponent(topic)}`;

/** The stand-in's tokens for `topic`, as examples/worker (and the JS Worker) split them. */
function standInTokens(topic) {
  const text =
    `${topic}, explained by a stand-in for a model. ` +
    `In short, ${topic} is a set of ideas, tools and habits. ` +
    `Start with its core concepts, practise them on small examples, then study its common pitfalls.`;
  return text.split(/(?= )/);
}

/** The server-sent events of a stream of `tokens` that ends cleanly. */
const expectedEvents = (tokens) => [
  ...tokens.map((t) => `data: ${JSON.stringify(t)}`),
  `event: end\ndata: ${JSON.stringify({ tokens: tokens.length })}`,
];

/** A response's body as server-sent events, read one at a time: `next()` resolves to the next
 *  event's text (without its blank line), or null at the end of the body. */
function events(res) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  return {
    async next() {
      for (;;) {
        const end = buffered.indexOf("\n\n");
        if (end >= 0) {
          const event = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          return event;
        }
        const { value, done } = await reader.read();
        if (done) {
          assert.equal(buffered, "", "the body ends with a whole event");
          return null;
        }
        buffered += decoder.decode(value, { stream: true });
      }
    },
    async rest() {
      const all = [];
      for (let e = await this.next(); e !== null; e = await this.next()) all.push(e);
      return all;
    },
    cancel: () => reader.cancel(),
  };
}

/** Resolves once Upstash holds `topic`'s recording: it is written after the stream's end went
 *  out (until then, a request joins the finished generation). */
async function recordedInUpstash(topic) {
  const keys = new Cache({ cleanupInterval: 0, version: "v1" });
  const key = keys.key("explain", { topic });
  keys.shutdown();
  for (let i = 0; (await up.raw("EXISTS", key)).result !== 1; i++) {
    assert.ok(i < 200, `the recording of ${topic} reaches Upstash`);
    await new Promise((res) => setTimeout(res, 10));
  }
}

/** The first answer for `topic` that is a hit, once its recording is in Upstash; an answer
 *  before that joins the finished generation (until its task has seen the write through) and
 *  must give the same events. Resolves to the hit's events. */
async function hitAfterRecording(topic, want) {
  await recordedInUpstash(topic);
  for (let i = 0; ; i++) {
    const r = await explain("main", topic);
    const all = await r.events.rest();
    assert.deepEqual(all, want, `the ${r.status} answer's events`);
    if (r.status === "hit") return all;
    assert.equal(r.status, "joined", "never a second generation");
    assert.ok(i < 100, "a hit once the recording is stored");
    await new Promise((res) => setTimeout(res, 10));
  }
}

async function explain(isolate, topic) {
  const res = await workers[isolate].fetch(`http://worker.test${explainPath(topic)}`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /^text\/event-stream/);
  return { status: res.headers.get("x-cache"), events: events(res) };
}

test("rust /api/explain: a miss streams its tokens as they come, a concurrent request joins, the next is a hit", { timeout: 60_000 }, async () => {
  const topic = freshTopic("Streams");
  const want = expectedEvents(standInTokens(topic));
  const miss = await explain("main", topic);
  assert.equal(miss.status, "miss");
  // Incremental delivery, shown by behaviour: events are read from the miss's body while its
  // generation is still under way, since a request made after them still joins it (a generation
  // is forgotten, and recorded, only once its source has ended).
  const first = [await miss.events.next(), await miss.events.next()];
  assert.deepEqual(first, want.slice(0, 2));
  const joined = await explain("main", topic);
  assert.equal(joined.status, "joined", "the generation was still running after two events had been read");
  const [missRest, joinedEvents] = await Promise.all([miss.events.rest(), joined.events.rest()]);
  assert.deepEqual([...first, ...missRest], want);
  assert.deepEqual(joinedEvents, want, "the joined request gets the chunks so far, then the live ones");
  await hitAfterRecording(topic, want);
});

test("rust /api/explain: the recording is the JS format, stored in Upstash", async () => {
  const topic = freshTopic("Recorded");
  const tokens = standInTokens(topic);
  const r = await explain("main", topic);
  assert.equal(r.status, "miss");
  await r.events.rest();
  await recordedInUpstash(topic);
  const keys = (await up.raw("KEYS", "v1:explain:*")).result;
  const values = await Promise.all(keys.map(async (k) => (await up.raw("GET", k)).result));
  const recordings = values.map((v) => JSON.parse(v)).filter((v) => v.chunks?.[0] === tokens[0]);
  assert.equal(recordings.length, 1, JSON.stringify(values).slice(0, 500));
  assert.deepEqual(recordings[0], { "cachette/stream": 1, chunks: tokens, bytes: [] });
});

test("rust /api/explain and the npm package's getOrSetStream share recordings over Upstash", async () => {
  const js = new Cache({ cleanupInterval: 0, version: "v1", upstash: { url: up.url, token: up.token } });
  const text = async (stream) => {
    const out = [];
    for await (const chunk of stream) out.push(chunk);
    return out;
  };
  const never = () => {
    throw new Error("a hit does not generate");
  };
  try {
    // Recorded by the Rust Worker, replayed by JavaScript.
    const fromRust = freshTopic("Rust to JS");
    const r = await explain("main", fromRust);
    assert.equal(r.status, "miss");
    await r.events.rest();
    await recordedInUpstash(fromRust);
    const hit = await js.getOrSetStream("explain", { topic: fromRust }, never);
    assert.equal(hit.status, "hit");
    assert.deepEqual(await text(hit.stream), standInTokens(fromRust));
    // Recorded by JavaScript, replayed by the Rust Worker.
    const fromJs = freshTopic("JS to Rust");
    const tokens = standInTokens(fromJs);
    const miss = await js.getOrSetStream("explain", { topic: fromJs }, async function* () {
      yield* tokens;
    });
    assert.equal(miss.status, "miss");
    assert.deepEqual(await text(miss.stream), tokens);
    // The same key in both languages.
    await recordedInUpstash(fromJs);
    const replayed = await explain("main", fromJs);
    assert.equal(replayed.status, "hit", "the Rust Worker replays the JS recording");
    assert.deepEqual(await replayed.events.rest(), expectedEvents(tokens));
  } finally {
    js.shutdown();
  }
});

test("rust /api/explain: a failing generation ends every reader with an error event and is not recorded", { timeout: 60_000 }, async () => {
  const topic = freshTopic("Failing");
  const tokens = standInTokens(topic).slice(0, FAIL_AT);
  for (const attempt of ["first", "second"]) {
    const r = await explain("failing", topic);
    assert.equal(r.status, "miss", `${attempt} request: nothing was recorded`);
    const all = await r.events.rest();
    assert.deepEqual(all.slice(0, -1), tokens.map((t) => `data: ${JSON.stringify(t)}`));
    const last = all.at(-1);
    assert.match(last, /^event: error\ndata: /);
    const body = JSON.parse(last.slice(last.indexOf("data: ") + 6));
    assert.equal(body.error.code, "GENERATOR_FAILED");
    assert.match(body.error.message, new RegExp(`failed at token ${FAIL_AT}`));
  }
});

test("rust /api/explain: the first client leaves midway: the joined request still gets every event, and it is recorded", { timeout: 60_000 }, async () => {
  const topic = freshTopic("Left");
  const want = expectedEvents(standInTokens(topic));
  const first = await explain("main", topic);
  assert.equal(first.status, "miss");
  assert.equal(await first.events.next(), want[0]);
  const joined = await explain("main", topic);
  assert.equal(joined.status, "joined");
  // The request running the generation goes away: the generation was handed to its
  // waitUntil, and the joined reader still holds it. (Whether the disconnection reaches the
  // Worker through Miniflare before the end is not certain: the test passes either way. The
  // abandonment of a generation every reader has left is checked in-process by the api-worker,
  // GET /stream.)
  await first.events.cancel();
  assert.deepEqual(await joined.events.rest(), want);
  await hitAfterRecording(topic, want);
});

test("rust /api/explain: the topic is validated as /api/subtopics validates it", async () => {
  for (const path of ["/api/explain", "/api/explain?topic=", `/api/explain?topic=${"x".repeat(201)}`]) {
    const res = await workers.main.fetch(`http://worker.test${path}`);
    assert.equal(res.status, 400, path);
    const body = await res.json();
    assert.equal(body.error.code, "BAD_REQUEST", path);
  }
});
