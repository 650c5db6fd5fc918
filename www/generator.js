// The stand-in for an LLM: deterministic subtopics derived from the topic text, returned
// after an artificial delay so that a cache miss costs what a model call would, and a
// deterministic explanation streamed token by token, as a streaming model call would send it.
// Same topic in, same list (and the same tokens) out; no network, no model.

const TEMPLATES = [
  "What {t} is, in one paragraph",
  "A short history of {t}",
  "Core concepts of {t}",
  "{t} in practice: a worked example",
  "Common mistakes in {t}",
  "Tools and libraries for {t}",
  "How {t} relates to neighbouring fields",
  "Measuring results in {t}",
  "Open questions in {t}",
  "A learning path for {t}",
  "{t} for complete beginners",
  "Advanced techniques in {t}",
];

/** FNV-1a, 32 bits: a stable seed from the topic. */
function hash(text) {
  let h = 0x811c9dc5;
  for (const ch of text) {
    h ^= ch.codePointAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** Five subtopics for `topic`, always the same five in the same order. */
export function subtopicsOf(topic) {
  const pool = [...TEMPLATES];
  let seed = hash(topic.toLowerCase());
  const picked = [];
  while (picked.length < 5) {
    seed = Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) >>> 0; // a step of a small mixer
    picked.push(pool.splice(seed % pool.length, 1)[0].replaceAll("{t}", topic));
  }
  return picked;
}

/** `subtopicsOf(topic)` after `delayMs` milliseconds, as a slow model call would. */
export function generateSubtopics(topic, delayMs) {
  return new Promise((resolve) => setTimeout(() => resolve(subtopicsOf(topic)), delayMs));
}

/**
 * The stand-in's explanation of `topic` as tokens: the words of a text made from its
 * subtopics, each word but the first with its leading space (joined, they are the text).
 */
export function explanationOf(topic) {
  // A subtopic inside a sentence: its first letter in lower case, unless it starts with the topic.
  const inner = (s) => (s.startsWith(topic) ? s : s[0].toLowerCase() + s.slice(1));
  const [first, second, third, fourth, fifth] = subtopicsOf(topic).map(inner);
  const text =
    `${topic}, explained by a stand-in for a model. ` +
    `Begin with ${first}; then ${second}. ` +
    `Next comes ${third}, and after it ${fourth}. ` +
    `Finish with ${fifth}.`;
  return text.split(/(?= )/);
}

/**
 * `explanationOf(topic)` as a streaming model sends it: an async iterable of its tokens,
 * one every `tokenDelayMs` milliseconds; it stops when `signal` aborts.
 */
export async function* streamExplanation(topic, tokenDelayMs, signal) {
  for (const token of explanationOf(topic)) {
    await new Promise((resolve) => setTimeout(resolve, tokenDelayMs));
    signal?.throwIfAborted();
    yield token;
  }
}
