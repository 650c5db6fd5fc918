// `./run test_js` setup: packs pkg/ and installs it into one throwaway consumer project that
// every tests/js/*.test.mjs file then shares (CACHETTE_JS_PROJECT); prints the project's path.
// Needs CACHETTE_TMP=<dir> and CACHETTE_KEEP_TMP=1: the caller owns and removes <dir>.
import { installConsumer } from "./consumer.mjs";

if (process.env.CACHETTE_KEEP_TMP !== "1" || !process.env.CACHETTE_TMP) {
  console.error("install.mjs: set CACHETTE_TMP=<dir> and CACHETTE_KEEP_TMP=1 (see ./run test_js)");
  process.exit(2);
}
process.stdout.write(installConsumer());
