// A real redis-server and the upstash-bridge in front of it, on free loopback ports, for the
// JS tests of the shared tier. The caller stops both with `stop()`.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer, connect } from "node:net";
import { join } from "node:path";
import { after, before } from "node:test";
import { ROOT } from "../packaging/helpers.mjs";

export const TOKEN = "js-test-token-9f2c-secret";

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const c = connect(port, "127.0.0.1");
    c.once("connect", () => (c.destroy(), resolve(true)));
    c.once("error", () => resolve(false));
  });
}

/** Starts redis-server + upstash-bridge; resolves to `{ url, token, faults, raw, stop }`. */
export async function startUpstash() {
  const bin = process.env.CACHETTE_BRIDGE_BIN || join(ROOT, "target", "debug", "upstash-bridge");
  if (!existsSync(bin)) throw new Error(`${bin} is missing: cargo build -p upstash-bridge`);
  const redisPort = await freePort();
  const redis = spawn("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: "ignore",
  });
  for (let i = 0; !(await canConnect(redisPort)); i++) {
    if (i > 200) throw new Error("redis-server did not start");
    await new Promise((r) => setTimeout(r, 25));
  }
  const bridge = spawn(bin, ["--listen", "127.0.0.1:0", "--redis-url", `redis://127.0.0.1:${redisPort}`, "--token", TOKEN], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise((resolve, reject) => {
    let out = "";
    bridge.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/(http:\/\/127\.0\.0\.1:\d+)\/?\s*\n/);
      if (m) resolve(m[1]);
    });
    bridge.once("exit", (code) => reject(new Error(`upstash-bridge exited with ${code}`)));
  });
  const post = async (path, body) => {
    const r = await fetch(url + path, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: r.status, body: await r.json() };
  };
  // The bridge answers before its first Redis connection is up: wait for a real PONG.
  for (let i = 0; ; i++) {
    const r = await post("", ["PING"]);
    if (r.status === 200) break;
    if (i > 400) throw new Error(`the bridge never reached Redis: ${JSON.stringify(r.body)}`);
    await new Promise((res) => setTimeout(res, 25));
  }
  return {
    url,
    stop: () => {
      bridge.kill();
      redis.kill();
    },
    token: TOKEN,
    /** Sets the bridge's fault injection, e.g. `{ mode: "reset" }`. */
    faults: async (f) => {
      const r = await post("/__bridge/faults", f);
      if (r.status !== 200) throw new Error(`fault control: ${r.status}`);
    },
    /** One command straight to the bridge (plain JSON replies). */
    raw: async (...command) => (await post("", command)).body,
  };
}

/**
 * For a test file of the shared tier: starts redis-server and the bridge before the file's tests
 * and stops them after, collecting unhandled rejections meanwhile. Returns `{ up, unhandled }`;
 * `up` (what startUpstash resolves to) is set once the bridge runs.
 */
export function bridgeForTests() {
  const ctx = { up: null, unhandled: [] };
  const onUnhandled = (reason) => ctx.unhandled.push(reason);
  before(async () => {
    ctx.up = await startUpstash();
    process.on("unhandledRejection", onUnhandled);
  });
  after(() => {
    ctx.up?.stop();
    process.off("unhandledRejection", onUnhandled);
  });
  return ctx;
}
