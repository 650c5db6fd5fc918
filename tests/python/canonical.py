"""Python's own canonical JSON, the oracle for `keyFormat: "python"`.

Reads one JSON string literal per line (the request data's JSON text) and writes one JSON object
per line: {"python": json.dumps(json.loads(text), sort_keys=True), "md5": its MD5 hex}, or
{"error": "..."} where Python cannot write the value as JSON (a number that became infinite).
"""

import hashlib
import json
import sys


def main() -> None:
    out = []
    for line in sys.stdin:
        if not line.strip():
            continue
        text = json.loads(line)
        try:
            canonical = json.dumps(json.loads(text), sort_keys=True, allow_nan=False)
        except ValueError as e:
            out.append(json.dumps({"error": str(e)}))
            continue
        digest = hashlib.md5(canonical.encode("utf-8")).hexdigest()
        out.append(json.dumps({"python": canonical, "md5": digest}))
    sys.stdout.write("\n".join(out) + ("\n" if out else ""))


if __name__ == "__main__":
    main()
