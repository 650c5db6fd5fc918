// The stand-in for an LLM: deterministic subtopics derived from the topic text, returned
// after an artificial delay so that a cache miss costs what a model call would.
// Same topic in, same list out; no network, no model.

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
