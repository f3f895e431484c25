"""Where a forwarded message's time goes, from ``bench.run --stages``: joins the client's
(sent, seen) times with the gateway's stage stamps (bench/stages/sitecustomize.py) by the
message's key. All clocks are ``time.time()`` on one machine.

    python bench/stages/report.py DIR [DIR ...]   (DIR: a phase's stages directory)"""

from __future__ import annotations

import glob
import json
import os
import sys
from collections import defaultdict
from typing import Any

V_PARTS = [  # (label, from, to)
    ("client send → gateway handler", "sent", "v_in"),
    ("handler: store, publish, ack", "v_in", "v_acked"),
    ("ack → first SSE stream takes it", "v_acked", "v_sse_first"),
    ("first → last of the SSE streams", "v_sse_first", "v_sse_last"),
    ("last SSE stream → client sees it", "v_sse_last", "seen"),
]
A_PARTS = [
    ("client POST → agent_reply", "sent", "a_in"),
    ("agent_reply: store, publish", "a_in", "a_stored"),
    ("stored → visitor relay takes it", "a_stored", "a_relay"),
    ("relay: emit to the socket", "a_relay", "a_emitted"),
    ("emitted → visitor sees it", "a_emitted", "seen"),
]


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(p * len(xs))) - 1))] if xs else float("nan")


def analyse(directory: str) -> dict[str, Any]:
    stamps: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for path in glob.glob(os.path.join(directory, "gateway-*.jsonl")):
        with open(path) as fh:
            for line in fh:
                stage, key, t = json.loads(line)
                stamps[key][stage].append(t)
    sent: list[tuple[str, str, float, float]] = []
    for path in glob.glob(os.path.join(directory, "client-*.jsonl")):
        with open(path) as fh:
            sent += [tuple(json.loads(line)) for line in fh]  # type: ignore[misc]
    out: dict[str, Any] = {}
    for direction, parts in (("v", V_PARTS), ("a", A_PARTS)):
        rows = []
        for d, key, t_sent, t_seen in sent:
            if d != direction or key not in stamps:
                continue
            s = stamps[key]
            at = {"sent": t_sent, "seen": t_seen, **{k: min(v) for k, v in s.items()}}
            if "v_sse" in s:
                at["v_sse_first"], at["v_sse_last"] = min(s["v_sse"]), max(s["v_sse"])
            if all(a in at and b in at for _l, a, b in parts):
                rows.append({"total": (t_seen - t_sent) * 1000,
                             **{label: (at[b] - at[a]) * 1000 for label, a, b in parts}})
        if not rows:
            continue
        rows.sort(key=lambda r: r["total"])
        slow = rows[-max(1, len(rows) // 100):]  # the slowest 1 %
        out[direction] = {
            "n": len(rows),
            "parts": [
                {"stage": label, "p50": round(_pct([r[label] for r in rows], 0.5), 2),
                 "p99": round(_pct([r[label] for r in rows], 0.99), 2),
                 "slowest_1pct_mean": round(sum(r[label] for r in slow) / len(slow), 2)}
                for label in ["total"] + [p[0] for p in parts]
            ],
        }
    return out


def table(result: dict[str, Any], title: str = "") -> str:
    lines = []
    for direction, name in (("v", "visitor → agent SSE"), ("a", "agent POST → visitor")):
        if direction not in result:
            continue
        r = result[direction]
        lines += [f"{title}{name} (n={r['n']}), ms", "", "| stage | p50 | p99 | mean of the slowest 1 % |",
                  "|---|---|---|---|"]
        lines += [f"| {p['stage']} | {p['p50']} | {p['p99']} | {p['slowest_1pct_mean']} |" for p in r["parts"]]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    for d in sys.argv[1:]:
        print(table(analyse(d), f"{d}: "))
