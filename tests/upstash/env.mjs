// The Upstash REST endpoint the tests talk to: UPSTASH_REDIS_REST_URL / UPSTASH_REDIS_REST_TOKEN
// from the environment (`./run test_bridge` sets them through scripts/upstash-env.sh run), or a
// throwaway redis-server + upstash-bridge started here through the same script.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const script = fileURLToPath(new URL("../../scripts/upstash-env.sh", import.meta.url));

/** Parses `export NAME=value` lines as printed by `printf 'export %s=%q'`. */
function parseExports(text) {
  const vars = {};
  for (const line of text.split("\n")) {
    const m = /^export ([A-Z_]+)=(.*)$/.exec(line);
    if (m) vars[m[1]] = m[2] === "''" ? "" : m[2].replace(/\\(.)/g, "$1");
  }
  return vars;
}

/**
 * @returns {Promise<{url: string, token: string, readOnlyToken?: string, stop: () => void}>}
 */
export async function upstashEnv() {
  const { UPSTASH_REDIS_REST_URL: url, UPSTASH_REDIS_REST_TOKEN: token } = process.env;
  if (url && token) {
    return {
      url,
      token,
      readOnlyToken: process.env.UPSTASH_REDIS_REST_READONLY_TOKEN || undefined,
      stop() {},
    };
  }
  const vars = parseExports(
    execFileSync("bash", [script, "start"], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }),
  );
  return {
    url: vars.UPSTASH_REDIS_REST_URL,
    token: vars.UPSTASH_REDIS_REST_TOKEN,
    readOnlyToken: vars.UPSTASH_REDIS_REST_READONLY_TOKEN,
    stop() {
      execFileSync("bash", [script, "stop"], { env: { ...process.env, ...vars }, stdio: "inherit" });
    },
  };
}

/** Sets a bridge fault (`POST /__bridge/faults`), e.g. `{ mode: "reset", count: 1 }`. */
export async function setFault(env, fault) {
  const res = await fetch(`${env.url}/__bridge/faults`, {
    method: "POST",
    headers: { authorization: `Bearer ${env.token}`, "content-type": "application/json" },
    body: JSON.stringify(fault),
  });
  if (!res.ok) throw new Error(`setting fault ${JSON.stringify(fault)}: ${res.status} ${await res.text()}`);
  return res.json();
}
