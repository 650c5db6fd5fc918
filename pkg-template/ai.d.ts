// Types of `cachette/ai`: an AI SDK (`ai` 7.x, an optional peer dependency) language-model
// middleware over a Cache or MemoryCache. The SDK's own types are read from "ai" (its
// `LanguageModelMiddleware`), so that they follow the installed SDK.
import type { LanguageModelMiddleware } from "ai";
import type { Cache, Duration, MemoryCache } from "./index.js";

type WrapGenerate = NonNullable<LanguageModelMiddleware["wrapGenerate"]>;
type WrapStream = NonNullable<LanguageModelMiddleware["wrapStream"]>;

/** What a model's `doGenerate` resolves to (the provider spec's `LanguageModelV4GenerateResult`). */
export type GenerateResult = Awaited<ReturnType<WrapGenerate>>;

/** One part of a model's `doStream` stream (the provider spec's `LanguageModelV4StreamPart`). */
export type StreamPart = Awaited<ReturnType<WrapStream>>["stream"] extends ReadableStream<infer P> ? P : never;

/** What `shouldCache` is shown for a stream that ended cleanly: its `finish` part, and every part. */
export interface StreamSummary {
    finishReason: Extract<StreamPart, { type: "finish" }>["finishReason"];
    usage: Extract<StreamPart, { type: "finish" }>["usage"];
    providerMetadata?: Extract<StreamPart, { type: "finish" }>["providerMetadata"];
    /** The stream's parts, in order. */
    parts: StreamPart[];
}

/** Options of `cacheMiddleware`. */
export interface CacheMiddlewareOptions {
    /** The namespace of the request keys (default `"ai"`): `cache.invalidateNamespace("ai")` drops them all. */
    namespace?: string;
    /** The entries' TTL (`Infinity`: never expires); default: the cache's `ttl`. */
    ttl?: Duration;
    /** How long past its TTL an entry is kept; default: the cache's `grace`. */
    grace?: Duration;
    /**
     * Called with a finished, successful result (a `doGenerate` result, or a stream's
     * `StreamSummary`); `false` keeps it out of the cache (the caller still gets it). Results
     * whose finish reason is `"error"` or `"interrupted"`, and streams with an `error` part or
     * without a `finish` part, are never cached.
     */
    shouldCache?: (result: GenerateResult | StreamSummary) => boolean;
}

/** The middleware: `wrapGenerate` and `wrapStream`, for `wrapLanguageModel`. */
export type CacheMiddleware = LanguageModelMiddleware & {
    readonly specificationVersion: "v4";
    wrapGenerate: WrapGenerate;
    wrapStream: WrapStream;
};

/**
 * An AI SDK language-model middleware that caches `doGenerate` results (`cache.getOrSet`) and
 * `doStream` streams (`cache.getOrSetStream`, replayed part by part on a hit) under
 * `cache.key(namespace, { provider, modelId, type, params })`, `type` `"generate"` or
 * `"stream"` and `params` the call options without `abortSignal` and `headers`. Concurrent equal
 * calls share one model call.
 */
export declare function cacheMiddleware(cache: Cache<any> | MemoryCache<any>, options?: CacheMiddlewareOptions): CacheMiddleware;
