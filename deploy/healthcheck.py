"""Container health check without curl (the rasa and rasa-sdk images have Python, not curl).

    python healthcheck.py URL [JSON_KEY]

Exit 0 when URL answers 200 (and, with JSON_KEY, when the JSON body has that key set to a true
value, e.g. ``model_ready`` on Rasa's /webhooks/handoff/); exit 1 otherwise, with the reason."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    url = argv[1]
    key = argv[2] if len(argv) == 3 else None
    try:
        with urllib.request.urlopen(url, timeout=4) as resp:
            body = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        print(f"unhealthy: {url} answered {exc.code}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: {url} answered {status}", file=sys.stderr)
        return 1
    if key is not None:
        try:
            data = json.loads(body)
        except ValueError:
            print(f"unhealthy: {url} did not answer JSON", file=sys.stderr)
            return 1
        if not (isinstance(data, dict) and data.get(key)):
            print(f"unhealthy: {url}: {key} is not true yet ({data!r:.200})", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
