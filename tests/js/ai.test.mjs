// cachette/ai with the AI SDK (`ai`, the repository's pinned version) and its own mock model:
// generateText and streamText through wrapLanguageModel({ model, middleware: cacheMiddleware(cache) })
// on MemoryCache, Cache, and (one round trip) Cache over Upstash: hits, single-flight, key order,
// what is not cached, and Dates back as Dates.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { generateText, simulateReadableStream, streamText, wrapLanguageModel } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import { AI_ENTRY } from "./consumer.mjs";
import { Cache, MemoryCache, PROJECT, sleep } from "./package.mjs";
import { bridgeForTests } from "./upstash-server.mjs";

const { cacheMiddleware } = await import(pathToFileURL(join(PROJECT, AI_ENTRY)).href);
const bridge = bridgeForTests();

const STAMP = new Date("2026-01-02T03:04:05.678Z");
const usage = (input, output) => ({
  inputTokens: { total: input, noCache: input, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: output, text: output, reasoning: undefined },
});
const reason = (unified) => ({ unified, raw: unified });

/** A mock model answering with `text` (and `finish`), counting its calls. */
function mockModel({ text = "Rust is a language.", finish = "stop", streamParts, failStream } = {}) {
  return new MockLanguageModelV4({
    doGenerate: async () => ({
      content: [{ type: "text", text }],
      finishReason: reason(finish),
      usage: usage(5, 4),
      warnings: [],
      response: { id: "resp-1", timestamp: STAMP, modelId: "mock-1" },
    }),
    doStream: async () => ({
      stream: failStream
        ? new ReadableStream({ start: (c) => (c.enqueue({ type: "stream-start", warnings: [] }), c.error(new Error("connection reset"))) })
        : simulateReadableStream({
            chunkDelayInMs: 5,
            chunks: streamParts ?? [
              { type: "stream-start", warnings: [] },
              { type: "response-metadata", id: "resp-1", timestamp: STAMP, modelId: "mock-1" },
              { type: "text-start", id: "t" },
              ...text.split(" ").map((w, i) => ({ type: "text-delta", id: "t", delta: (i ? " " : "") + w })),
              { type: "text-end", id: "t" },
              { type: "finish", finishReason: reason(finish), usage: usage(5, 4) },
            ],
          }),
      response: { headers: { "x-model": "mock" } },
    }),
  });
}

const cached = (model, cache, options) => wrapLanguageModel({ model, middleware: cacheMiddleware(cache, options) });

async function streamed(model, options) {
  const r = streamText({ model, ...options });
  return { text: await r.text, usage: await r.usage, finishReason: await r.finishReason, response: await r.response };
}

const CLASSES = {
  MemoryCache: () => new MemoryCache({ cleanupInterval: 0 }),
  Cache: () => new Cache({ cleanupInterval: 0 }),
};

for (const [name, make] of Object.entries(CLASSES)) {
  describe(`cachette/ai on ${name}`, () => {
    test("generateText twice: one model call, the same text, usage and finish reason; timestamp a Date", async () => {
      const cache = make();
      const mock = mockModel();
      const model = cached(mock, cache);
      const first = await generateText({ model, prompt: "What is Rust?" });
      const second = await generateText({ model, prompt: "What is Rust?" });
      assert.equal(mock.doGenerateCalls.length, 1);
      assert.equal(second.text, "Rust is a language.");
      assert.deepEqual([second.text, second.usage, second.finishReason], [first.text, first.usage, first.finishReason]);
      assert.ok(second.response.timestamp instanceof Date);
      assert.equal(second.response.timestamp.getTime(), STAMP.getTime());
      assert.equal(second.response.id, "resp-1");
      cache.shutdown();
    });

    test("streamText twice, then two at once: one doStream call; identical text, usage, finish reason", async () => {
      const cache = make();
      const mock = mockModel();
      const model = cached(mock, cache, { namespace: "llm", ttl: "1h" });
      const first = await streamed(model, { prompt: "What is Rust?" });
      await sleep(10); // the recording is stored once the source has ended
      const second = await streamed(model, { prompt: "What is Rust?" });
      assert.equal(mock.doStreamCalls.length, 1);
      assert.equal(second.text, "Rust is a language.");
      assert.deepEqual([second.text, second.usage, second.finishReason], [first.text, first.usage, first.finishReason]);
      assert.ok(second.response.timestamp instanceof Date, "response-metadata's timestamp is revived");
      assert.equal(second.response.timestamp.getTime(), STAMP.getTime());
      assert.equal(second.response.headers["x-model"], "mock", "doStream's response is kept");

      const fresh = mockModel({ text: "Go is a language too." });
      const both = cached(fresh, cache);
      const [a, b] = await Promise.all([0, 1].map(() => streamed(both, { prompt: "What is Go?" })));
      assert.equal(fresh.doStreamCalls.length, 1, "concurrent calls share one model call");
      assert.deepEqual([a.text, b.text], ["Go is a language too.", "Go is a language too."]);
      assert.deepEqual(a.usage, b.usage);
      cache.shutdown();
    });

    test("settings and tools in another key order share the entry; another prompt misses", async () => {
      const cache = make();
      const mock = mockModel();
      const model = cached(mock, cache);
      const schema = (props) => ({ type: "object", properties: props, required: Object.keys(props) });
      const tool = (spec) => ({ type: "function", name: "weather", ...spec });
      const call = (prompt, providerOptions, tools) =>
        model.doGenerate({ prompt: [{ role: "user", content: [{ type: "text", text: prompt }] }], temperature: 0.2, providerOptions, tools });
      await call("Weather?", { mock: { effort: "low", seed: 1 } }, [tool({ description: "d", inputSchema: schema({ city: { type: "string" }, day: { type: "number" } }) })]);
      await call("Weather?", { mock: { seed: 1, effort: "low" } }, [{ inputSchema: { required: ["city", "day"], properties: { day: { type: "number" }, city: { type: "string" } }, type: "object" }, name: "weather", description: "d", type: "function" }]);
      assert.equal(mock.doGenerateCalls.length, 1);
      await generateText({ model, prompt: "What is Rust?", temperature: 0.5, topP: 0.9, abortSignal: new AbortController().signal, headers: { "x-request-id": "1" } });
      await generateText({ model, prompt: "What is Rust?", topP: 0.9, temperature: 0.5, headers: { "x-request-id": "2" } });
      assert.equal(mock.doGenerateCalls.length, 2, "abortSignal and headers are not part of the key");
      await generateText({ model, prompt: "What is Go?", temperature: 0.5, topP: 0.9 });
      assert.equal(mock.doGenerateCalls.length, 3);
      cache.shutdown();
    });

    test("an errored stream is not cached: an error part, or a source that fails", async () => {
      const cache = make();
      const errorPart = mockModel({
        streamParts: [
          { type: "stream-start", warnings: [] },
          { type: "text-start", id: "t" },
          { type: "text-delta", id: "t", delta: "Half" },
          { type: "error", error: new Error("rate limited") },
          { type: "finish", finishReason: reason("error"), usage: usage(5, 1) },
        ],
      });
      const model = cached(errorPart, cache);
      for (let i = 0; i < 2; i++) {
        const errors = [];
        const r = streamText({ model, prompt: "What is Rust?", onError: ({ error }) => errors.push(error) });
        await r.consumeStream();
        assert.equal(errors[0]?.message, "rate limited");
        await sleep(10);
      }
      assert.equal(errorPart.doStreamCalls.length, 2, "the next call calls the model again");

      const failing = mockModel({ failStream: true });
      const broken = cached(failing, cache);
      for (let i = 0; i < 2; i++) {
        const error = await streamText({ model: broken, prompt: "What is Go?" }).text.then(() => null, (e) => e);
        assert.equal(error?.message, "connection reset", "the model's own error, not GENERATOR_FAILED");
        await sleep(10);
      }
      assert.equal(failing.doStreamCalls.length, 2);
      cache.shutdown();
    });

    test("a failing doGenerate reaches the caller as thrown, and nothing is cached", async () => {
      const cache = make();
      const mock = mockModel();
      const answer = mock.doGenerate;
      const boom = new Error("model overloaded");
      mock.doGenerate = async () => (mock.doGenerate = answer, Promise.reject(boom));
      const model = cached(mock, cache);
      const error = await generateText({ model, prompt: "What is Rust?", maxRetries: 0 }).then(() => null, (e) => e);
      assert.equal(error, boom);
      assert.equal((await generateText({ model, prompt: "What is Rust?" })).text, "Rust is a language.");
      assert.equal((await generateText({ model, prompt: "What is Rust?" })).text, "Rust is a language.");
      assert.equal((await cache.stats()).keys, 1);
      cache.shutdown();
    });

    test("shouldCache refusing (finish reason length) caches nothing, generate or stream", async () => {
      const cache = make();
      const seen = [];
      const shouldCache = (result) => (seen.push(result.finishReason.unified), result.finishReason.unified !== "length");
      const mock = mockModel({ finish: "length" });
      const model = cached(mock, cache, { shouldCache });
      for (let i = 0; i < 2; i++) {
        assert.equal((await generateText({ model, prompt: "What is Rust?" })).finishReason, "length");
        assert.equal((await streamed(model, { prompt: "What is Rust?" })).finishReason, "length");
        await sleep(10);
      }
      assert.deepEqual([mock.doGenerateCalls.length, mock.doStreamCalls.length], [2, 2]);
      assert.deepEqual(seen, ["length", "length", "length", "length"]);
      assert.equal((await cache.stats()).keys, 0);
      cache.shutdown();
    });
  });
}

test("cachette/ai over Upstash: a generateText round trip through the JSON codec, Dates revived", async () => {
  await bridge.up.raw("FLUSHDB");
  const make = () => new Cache({ cleanupInterval: 0, upstash: { url: bridge.up.url, token: bridge.up.token } });
  const writer = make();
  const mock = mockModel();
  const first = await generateText({ model: cached(mock, writer, { namespace: "llm", ttl: "1h" }), prompt: "What is Rust?" });
  writer.shutdown();
  const reader = make(); // another instance: the answer comes from Redis
  const second = await generateText({ model: cached(mock, reader, { namespace: "llm", ttl: "1h" }), prompt: "What is Rust?" });
  assert.equal(mock.doGenerateCalls.length, 1);
  assert.deepEqual([second.text, second.usage, second.finishReason], [first.text, first.usage, first.finishReason]);
  assert.ok(second.response.timestamp instanceof Date);
  assert.equal(second.response.timestamp.getTime(), STAMP.getTime());
  assert.equal((await bridge.up.raw("KEYS", "v1:llm:*")).result.length, 1);
  reader.shutdown();
});

test("cacheMiddleware checks its arguments", () => {
  const cache = new MemoryCache({ cleanupInterval: 0 });
  assert.throws(() => cacheMiddleware({}), TypeError);
  for (const bad of [{ tll: 5 }, { shouldCache: true }, { namespace: 3 }, []]) {
    assert.throws(() => cacheMiddleware(cache, bad), (e) => e.name === "CacheError" && e.code === "INVALID_OPTIONS", JSON.stringify(bad));
  }
  assert.throws(() => cacheMiddleware(cache, { namespace: "a:b" }), (e) => e.name === "CacheError");
  const mw = cacheMiddleware(cache);
  assert.equal(mw.specificationVersion, "v4");
  cache.shutdown();
});
