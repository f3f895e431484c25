"""`make bench` in miniature (`scripts/bench.sh --quick -- --stages`): the harness still runs end to
end on the real stack (floor, bot turns against the stock channel, forwarding, hand-off latency,
memory, the stage stamps) and what it measured adds up. It asserts no speed: speed lives in the
benchmark's own table, never in a timed test."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


@pytest.mark.timeout(1500)
def test_the_quick_benchmark_runs_end_to_end_and_loses_nothing() -> None:
    proc = subprocess.run(["scripts/bench.sh", "--quick", "--", "--stages"], cwd=REPO, capture_output=True,
                          text=True, timeout=1400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = REPO / ".cache" / "bench" / "last-quick"
    results = json.loads((run / "results.json").read_text())

    floor = results["floor"]
    assert floor["levels"] and all(level["echo"]["n"] > 0 for level in floor["levels"].values())
    # The durable relay really committed every line it relayed, and lost none.
    durable = [level["relay_durable"] for level in floor["levels"].values()]
    relayed = sum(d["v2a"]["n"] + d["a2v"]["n"] for d in durable)
    assert relayed > 0 and all(d["lost_v2a"] == 0 and d["lost_a2v"] == 0 for d in durable)
    with sqlite3.connect(floor["durable_db"]) as db:
        assert db.execute("SELECT count(*) FROM lines").fetchone()[0] >= relayed
    product = results["product"]
    assert product["bot_turns"]["ours"]["n"] > 0 and product["bot_turns"]["stock"]["n"] > 0
    assert product["bot_turns"]["ours"]["missing"] == 0 and product["bot_turns"]["stock"]["missing"] == 0
    for n, level in product["levels"].items():
        assert level["rounds"] > 0, n
        assert level["lost_v2a"] == 0 and level["lost_a2v"] == 0, n
        assert not level["v2a"]["errors"] and not level["a2v"]["errors"], n
    assert product["handoff"]["idle"]["action_end_to_sse"]["n"] > 0 and not product["handoff"]["idle"]["errors"]

    # Every forwarded message (of the levels and of the mixed load) was stamped at every step.
    stages = product["stages"]
    rounds = sum(level["rounds"] for level in product["levels"].values())
    for direction in ("v", "a"):
        assert stages[direction]["n"] >= rounds, direction
        rows = {row["stage"]: row for row in stages[direction]["parts"]}
        assert len(rows) == 6 and all(row["p50"] >= 0 for row in rows.values())

    report = (run / "benchmarks.md").read_text()
    assert "## Targets" in report and "Forwarding p99 at" in report
    assert (run / "bench" / "forwarding.png").stat().st_size > 1000
