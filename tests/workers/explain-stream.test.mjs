// The JS Worker's streamed endpoint, GET /api/explain?topic=… (server-sent events through
// getOrSetStream), under workerd (Miniflare) against upstash-bridge + redis-server.
//
// Incremental delivery is proven without clocks: the `paced` isolate binds STAND_IN_PACE to a
// gate in this process (a Miniflare function service binding), and the Worker's stand-in waits
// for the gate before each token. The test lets tokens through one at a time and reads each
// event from the response while the next token is still held, so every event provably left the
// Worker before the tokens after it were made.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Miniflare } from "miniflare";
import { WORKERS, freshTopic, secrets, startUpstash } from "./helpers.mjs";

const explainPath = (topic) => `/api/explain?topic=${encodeURIComponent(topic)}`;

/** The request key the Worker's cache uses for `topic` (version v1, namespace explain): the md5
 *  of the canonical JSON of `{ topic }` (a plain ASCII topic is its own JSON string). */
const explainKey = (topic) => `v1:explain:${createHash("md5").update(JSON.stringify({ topic })).digest("hex")}`;

/**
 * The gate behind STAND_IN_PACE. Per topic: `open(topic, n)` lets tokens 0..n-1 through (all of
 * them by default; `hold(topic)` first lets none), `fail(topic, i)` answers 500 for token i (the
 * stand-in then fails), `asked(topic)` lists the token indices the stand-in has asked for, in
 * order (one generation asks each index once), and `waitAsked(topic, i)` resolves once token i
 * has been asked for.
 */
function paceGate() {
  const topics = new Map();
  const state = (topic) => {
    if (!topics.has(topic)) topics.set(topic, { allowed: Infinity, failAt: -1, asked: [], waiting: [] });
    return topics.get(topic);
  };
  const settle = (s) => {
    s.waiting = s.waiting.filter((w) => !w.ready() || (w.resolve(), false));
  };
  return {
    hold(topic) {
      state(topic).allowed = 0;
    },
    open(topic, n = Infinity) {
      const s = state(topic);
      s.allowed = n;
      settle(s);
    },
    fail(topic, i) {
      state(topic).failAt = i;
    },
    asked: (topic) => [...state(topic).asked],
    waitAsked(topic, i) {
      const s = state(topic);
      return new Promise((resolve) => {
        s.waiting.push({ ready: () => s.asked.includes(i), resolve });
        settle(s);
      });
    },
    /** The service binding: answers once the token asked for is let through. */
    async binding(request) {
      const url = new URL(request.url);
      const s = state(url.searchParams.get("topic"));
      const i = Number(url.searchParams.get("token"));
      s.asked.push(i);
      if (i === s.failAt) return new Response("failed on purpose", { status: 500 });
      await new Promise((resolve) => {
        s.waiting.push({ ready: () => i < s.allowed, resolve });
        settle(s);
      });
      return new Response(null, { status: 204 });
    },
  };
}

/**
 * Reads a text/event-stream body event by event: `next()` resolves to the next event,
 * `{ event, data }` (`event` "message" when unnamed, `data` parsed as JSON), or null at the end
 * of the body; `all()` reads the rest. `reads` counts the body's chunks so far.
 */
function sseReader(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  const events = [];
  const out = { reads: 0 };
  /** One event, or null for a block of comments only (the Worker's `: keep-alive`). */
  const parse = (block) => {
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) event = line.slice(7);
      else if (line.startsWith("data: ")) data.push(line.slice(6));
      else if (!line.startsWith(":")) assert.fail(`unexpected line in an event: ${JSON.stringify(line)}`);
    }
    return data.length ? { event, data: JSON.parse(data.join("\n")) } : null;
  };
  out.next = async () => {
    for (;;) {
      if (events.length) return events.shift();
      const { value, done } = await reader.read();
      if (done) {
        assert.equal(buffer, "", "the body ends after a whole event");
        return null;
      }
      out.reads += 1;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = parse(buffer.slice(0, end));
        if (event !== null) events.push(event);
        buffer = buffer.slice(end + 2);
      }
    }
  };
  out.all = async () => {
    const rest = [];
    for (let e; (e = await out.next()) !== null; ) rest.push(e);
    return rest;
  };
  out.cancel = () => reader.cancel();
  return out;
}

/** The answer's text: the tokens of the unnamed events, joined. */
const textOf = (events) => events.filter((e) => e.event === "message").map((e) => e.data).join("");

let up;
let mf;
const gate = paceGate();
const fetchers = new Map();

/** Resolves once Redis holds `key` (polled; a bounded number of tries). */
async function stored(key) {
  for (let i = 0; (await up.raw("EXISTS", key)).result !== 1; i++) {
    assert.ok(i < 400, `${key} never reached Redis`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** GET `path` on isolate `name`: the Response, its body unread. */
async function open(name, path, init) {
  if (!fetchers.has(name)) fetchers.set(name, await mf.getWorker(name));
  return fetchers.get(name).fetch(`http://worker.test${path}`, init);
}

before(async () => {
  up = await startUpstash();
  await up.raw("FLUSHDB");
  const w = WORKERS.js;
  const worker = (name, serviceBindings = {}) => ({
    name,
    modules: w.modules(),
    modulesRoot: w.modulesRoot,
    compatibilityDate: "2026-04-01",
    bindings: secrets(up),
    serviceBindings,
  });
  mf = new Miniflare({
    workers: [worker("paced", { STAND_IN_PACE: (request) => gate.binding(request) }), worker("unpaced")],
  });
  await mf.ready;
});

after(async () => {
  await mf?.dispose();
  await up?.stop();
});

describe(`${WORKERS.js.label}: GET /api/explain (server-sent events)`, () => {
  // A stream that never ends fails its test through this limit (it bounds hangs, nothing else).
  const HANG = { timeout: 30_000 };

  test("a miss streams event by event, a concurrent request joins, the next request replays", HANG, async () => {
    const topic = freshTopic("Borrow checking");
    gate.hold(topic);
    const first = await open("paced", explainPath(topic));
    assert.equal(first.status, 200);
    assert.equal(first.headers.get("content-type"), "text/event-stream; charset=utf-8");
    assert.equal(first.headers.get("cache-control"), "no-store");
    assert.equal(first.headers.get("x-cache"), "miss");
    const a = sseReader(first.body);

    // Token by token: each event is read while the stand-in waits at the gate for the next
    // token, so it reached the client before the token after it existed.
    const received = [];
    for (let i = 0; i < 4; i++) {
      gate.open(topic, i + 1);
      const event = await a.next();
      assert.equal(event.event, "message", JSON.stringify(event));
      assert.equal(typeof event.data, "string");
      received.push(event);
      await gate.waitAsked(topic, i + 1); // the generator now waits before token i + 1 ...
      assert.deepEqual(gate.asked(topic), [0, 1, 2, 3, 4].slice(0, i + 2)); // ... and made no more
    }
    assert.ok(a.reads >= 4, `${a.reads} body reads for 4 events`);
    assert.equal(textOf(received).split(" ")[0], topic.split(" ")[0], "the answer starts with the topic");

    // A request while the generation is held joins it: the events so far, then the live ones.
    const second = await open("paced", explainPath(topic));
    assert.equal(second.status, 200);
    assert.equal(second.headers.get("x-cache"), "joined");
    const b = sseReader(second.body);
    const joinedSoFar = [];
    for (let i = 0; i < received.length; i++) joinedSoFar.push(await b.next());
    assert.deepEqual(joinedSoFar, received, "the joined stream replays the events so far");

    gate.open(topic);
    const [restA, restB] = await Promise.all([a.all(), b.all()]);
    const eventsA = [...received, ...restA];
    const eventsB = [...joinedSoFar, ...restB];
    assert.deepEqual(eventsB, eventsA, "the joined request got the same events");
    const tokens = eventsA.length - 1;
    assert.ok(tokens > 10, `${tokens} tokens`);
    assert.deepEqual(eventsA.at(-1), { event: "end", data: { tokens } });
    assert.ok(eventsA.slice(0, -1).every((e) => e.event === "message"));
    assert.match(textOf(eventsA), new RegExp(`^${topic}, explained by a stand-in`));
    assert.deepEqual(gate.asked(topic), [...Array(tokens).keys()], "one generation, each token made once");

    // The recording is written to Upstash once the source has ended, a write that may land
    // after the last event: wait until Redis has it, then the next request replays it.
    await stored(explainKey(topic));
    const third = await open("paced", explainPath(topic));
    assert.equal(third.headers.get("x-cache"), "hit");
    assert.equal(third.headers.get("content-type"), "text/event-stream; charset=utf-8");
    assert.deepEqual(await sseReader(third.body).all(), eventsA, "the hit replays the same events");
    assert.equal(gate.asked(topic).length, tokens, "a hit runs no generator");
  });

  test("the first client leaves midway: the joined request still gets every event", HANG, async () => {
    const topic = freshTopic("Drop semantics");
    gate.hold(topic);
    gate.open(topic, 2);
    const first = await open("paced", explainPath(topic));
    assert.equal(first.headers.get("x-cache"), "miss");
    const a = sseReader(first.body);
    const head = [await a.next(), await a.next()];
    const second = await open("paced", explainPath(topic));
    assert.equal(second.headers.get("x-cache"), "joined");
    const b = sseReader(second.body);
    assert.deepEqual([await b.next(), await b.next()], head);

    // The request that runs the generation goes away while the stand-in waits before token 2.
    // Its waitUntil keeps the generation alive; without it, workerd would drop the generation
    // with the request and the joined request would wait forever. The pause gives the
    // disconnection time to reach workerd before the gate opens (the test passes whether or
    // not it has; it only tests less when it has not).
    await a.cancel();
    await new Promise((r) => setTimeout(r, 200));
    gate.open(topic);
    const events = [...head, ...(await b.all())];
    const tokens = events.length - 1;
    assert.deepEqual(events.at(-1), { event: "end", data: { tokens } });
    assert.match(textOf(events), new RegExp(`^${topic}, explained by a stand-in`));
    assert.deepEqual(gate.asked(topic), [...Array(tokens).keys()]);
  });

  test("a generation that fails midway ends each stream with an error event and caches nothing", HANG, async () => {
    const topic = freshTopic("Panics");
    gate.fail(topic, 3);
    gate.hold(topic);
    gate.open(topic, 2);
    const first = await open("paced", explainPath(topic));
    assert.equal(first.headers.get("x-cache"), "miss");
    const a = sseReader(first.body);
    const head = [await a.next(), await a.next()];
    const second = await open("paced", explainPath(topic));
    assert.equal(second.headers.get("x-cache"), "joined");
    const b = sseReader(second.body);
    gate.open(topic);
    const [restA, eventsB] = await Promise.all([a.all(), b.all()]);
    // Token 2 was made; token 3 failed.
    assert.equal(restA.length, 2, JSON.stringify(restA));
    assert.equal(restA[0].event, "message");
    const failure = restA[1];
    assert.equal(failure.event, "error");
    assert.equal(failure.data.error.code, "GENERATOR_FAILED");
    assert.match(failure.data.error.message, /token 3/);
    assert.deepEqual(eventsB, [...head, ...restA], "the joined request saw the same events and the same failure");
    assert.deepEqual(gate.asked(topic), [0, 1, 2, 3]);

    gate.fail(topic, -1);
    const again = await open("paced", explainPath(topic));
    assert.equal(again.headers.get("x-cache"), "miss", "nothing was cached");
    const events = await sseReader(again.body).all();
    assert.equal(events.at(-1).event, "end");
  });

  test("unpaced, the stand-in sleeps between tokens: a miss, then a hit with the same events", HANG, async () => {
    const topic = freshTopic("Lifetimes");
    const miss = await open("unpaced", explainPath(topic));
    assert.equal(miss.headers.get("x-cache"), "miss");
    const events = await sseReader(miss.body).all();
    assert.ok(events.length > 10);
    assert.equal(events.at(-1).event, "end");
    await stored(explainKey(topic));
    const hit = await open("unpaced", explainPath(topic));
    assert.equal(hit.headers.get("x-cache"), "hit");
    assert.deepEqual(await sseReader(hit.body).all(), events);
    assert.deepEqual(gate.asked(topic), [], "the unpaced isolate never calls the gate");
  });

  test("topic is validated as for /api/subtopics; other methods are refused", async () => {
    for (const path of ["/api/explain", "/api/explain?topic=", "/api/explain?topic=%20%20", `/api/explain?topic=${"x".repeat(201)}`]) {
      const r = await open("unpaced", path);
      assert.equal(r.status, 400, path);
      assert.match(r.headers.get("content-type"), /^application\/json/);
      assert.equal((await r.json()).error.code, "BAD_REQUEST", path);
    }
    const ok = await open("unpaced", `/api/explain?topic=${"é".repeat(200)}`);
    assert.equal(ok.status, 200, "200 characters are allowed");
    await ok.body.cancel();
    const post = await open("unpaced", "/api/explain?topic=x", { method: "POST" });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET");
    await post.body?.cancel();
  });
});
