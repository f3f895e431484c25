"""Turns the raw results of ``make bench`` into the table it prints and into docs/benchmarks.md
with its plots (docs/bench/*.png). Runs in the bench venv (matplotlib).

    python bench/report.py RESULTS.json [--md docs/benchmarks.md] [--png-dir docs/bench]"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def f(x: Any, nd: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, (int, float)):
        return f"{x:.{nd}f}" if abs(x) < 1000 else f"{x:,.0f}"
    return str(x)


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None or b is None or not b:
        return None
    return a / b


def verdict(r: Optional[float], limit: float) -> str:
    if r is None:
        return "n/a"
    return "**pass**" if r <= limit else "**FAIL**"


def worst_p99(fwd: dict[str, Any]) -> Optional[float]:
    vals = [fwd[d].get("p99") for d in ("v2a", "a2v") if fwd.get(d, {}).get("n")]
    return max(vals) if vals else None


def errors(level: dict[str, Any]) -> int:
    """Refused or timed-out acks and HTTP calls, dropped sockets and SSE streams."""
    n = sum(level.get("v2a", {}).get("errors", {}).values()) + sum(level.get("a2v", {}).get("errors", {}).values())
    n += sum(level.get("ack", {}).get("errors", {}).values())
    return n + level.get("dropped_visitors", 0) + level.get("sse_stream_errors", 0)


def lost(level: dict[str, Any]) -> int:
    """Messages never seen at the other end (after the 30 s deadline and 30 s more)."""
    return level.get("lost_v2a", 0) + level.get("lost_a2v", 0)


def late(level: dict[str, Any]) -> int:
    """Messages seen only after the 30 s deadline."""
    return level.get("timeouts_v2a", 0) + level.get("timeouts_a2v", 0) - lost(level)


def problems(level: dict[str, Any]) -> int:
    return errors(level) + lost(level) + late(level)


def md_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    floor, prod = res["floor"], res["product"]
    levels = [int(n) for n in prod["levels"]]
    rows = []
    n500 = 500 if 500 in levels else max(levels)
    lvl, flv = prod["levels"][str(n500)], floor["levels"][str(n500)]
    ours, ref = worst_p99(lvl), flv["echo"].get("p99")
    r = ratio(ours, ref)
    rows.append({"target": f"Forwarding p99 at {n500} conversations ≤ 2× floor echo p99",
                 "measured": f"{f(ours)} ms (worst direction) vs floor {f(ref)} ms", "ratio": r, "limit": 2.0,
                 "verdict": verdict(r, 2.0)})
    mixed, fmixed = prod["mixed"]["forwarding"], floor["mixed"]["echo"]
    ours, ref = worst_p99(mixed), fmixed.get("p99")
    if not mixed.get("a2v", {}).get("n") or not mixed.get("v2a", {}).get("n"):
        ours = None
    r = ratio(ours, ref)
    m = prod["plan"]["mixed"]
    rows.append({"target": f"Forwarding p99 with {m['bot']} bot visitors busy next to {m['human']} human-owned ≤ 2× floor",
                 "measured": f"{f(ours)} ms vs floor {f(ref)} ms (same mix on the floor server)", "ratio": r,
                 "limit": 2.0, "verdict": verdict(r, 2.0)})
    bt = prod["bot_turns"]
    r = ratio(bt["ours"].get("p50"), bt["stock"].get("p50"))
    b2b = bt.get("back_to_back") or {}
    b2b_txt = (f"; back to back: {f(b2b['ours'].get('p50'))} vs {f(b2b['stock'].get('p50'))} ms "
               f"({f(ratio(b2b['ours'].get('p50'), b2b['stock'].get('p50')), 2)}×)" if b2b else "")
    pause_txt = f" ({f(bt['pause_s'], 1)} s between a visitor's lines)" if bt.get("pause_s") else ""
    rows.append({"target": "Bot-turn median through our channel ≤ 1.05× stock socket.io channel",
                 "measured": f"{f(bt['ours'].get('p50'))} ms vs stock {f(bt['stock'].get('p50'))} ms{pause_txt}{b2b_txt}",
                 "ratio": r, "limit": 1.05, "verdict": verdict(r, 1.05)})
    h = prod["handoff"]["idle"]["action_end_to_sse"]
    p95 = h.get("p95")
    rows.append({"target": "Hand-off visible to agents ≤ 50 ms p95 after the action completes",
                 "measured": f"p95 {f(p95)} ms (p50 {f(h.get('p50'))}, n={h.get('n', 0)})",
                 "ratio": ratio(p95, 50.0), "limit": 1.0, "verdict": verdict(ratio(p95, 50.0), 1.0)})
    top = max(levels)
    bad = problems(prod["levels"][str(top)])
    lv = prod["levels"][str(top)]
    errs = {**lv["v2a"]["errors"], **{f"reply {k}": v for k, v in lv["a2v"]["errors"].items()}}
    rows.append({"target": f"No error and no lost message at {top} concurrent conversations",
                 "measured": f"{errors(lv)} errors {errs or ''}, {lost(lv)} lost, {late(lv)} later than 30 s "
                             f"({lv['rounds']} rounds)",
                 "ratio": None, "limit": None,
                 "verdict": "**pass**" if bad == 0 and top >= 1000 else ("**FAIL**" if bad else "n/a (quick run)")})
    so = res.get("scale_out")
    if so and so.get("levels"):
        n = 500 if "500" in so["levels"] else max(int(k) for k in so["levels"])
        lv = so["levels"][str(n)]
        ref = floor["levels"].get(str(n), {}).get("echo", {}).get("p99")
        ours = worst_p99(lv)
        r = ratio(ours, ref)
        rows.append({"target": f"Scale-out: forwarding p99 at {n} conversations with two gateways (PostgreSQL, Redis, "
                               f"nginx) ≤ 2× floor echo p99",
                     "measured": f"{f(ours)} ms (worst direction) vs floor {f(ref)} ms; {problems(lv)} errors+lost+late",
                     "ratio": r, "limit": 2.0, "verdict": verdict(r, 2.0)})
    else:
        rows.append({"target": "Scale-out: the forwarding numbers with two gateway instances and Redis",
                     "measured": "not measured in this run (`bench.run --scale-out` needs PostgreSQL, Redis and nginx)",
                     "ratio": None, "limit": None, "verdict": "n/a"})
    return rows


def scale_out_md(res: dict[str, Any]) -> str:
    so = res.get("scale_out")
    if not so or not so.get("levels"):
        return ("Not measured in this run: `python -m bench.run --scale-out` (which `make bench` runs when "
                "`scripts/services.sh` can provide PostgreSQL, Redis and nginx) measures it.")
    floor, prod = res["floor"], res.get("product", {})
    rows = []
    for n in sorted(int(k) for k in so["levels"]):
        lv = so["levels"][str(n)]
        single = prod.get("levels", {}).get(str(n))
        fl = floor["levels"].get(str(n), {})
        cpu = lv.get("gateway_cpu_s", 0) + lv.get("gateway2_cpu_s", 0)
        rows.append([str(n), *lat(lv["v2a"]), *lat(lv["a2v"]),
                     f(worst_p99(single)) if single else "–",
                     f(fl.get("echo", {}).get("p99")), f(ratio(worst_p99(lv), fl.get("echo", {}).get("p99")), 1) + "×",
                     str(lv["rounds"]), f"{errors(lv)} / {lost(lv)} / {late(lv)}",
                     f"{f(1000 * lv.get('gateway_cpu_s', 0) / max(1, 2 * lv['rounds']), 2)} + "
                     f"{f(1000 * lv.get('gateway2_cpu_s', 0) / max(1, 2 * lv['rounds']), 2)} = "
                     f"{f(1000 * cpu / max(1, 2 * lv['rounds']), 2)}",
                     f(lv.get("loadavg", [None])[0], 2)])
    table = md_table(["N", "v→a p50", "p95", "p99", "a→v p50", "p95", "p99", "one gateway (SQLite) worst p99",
                      "floor echo p99", "worst p99 / floor p99", "rounds", "errors / lost / late",
                      "gateways' CPU ms/msg (1 + 2)", "load avg"], rows)
    return f"""Two gateway processes (`python -m handoff_channel serve`) on one PostgreSQL store and the Redis bus,
behind nginx with the production routing (`deploy/nginx-native.sh`, as tests/e2e/test_production.py runs it);
one `rasa run` and one action server behind both (the forwarding path does not go through Rasa). nginx's
stickiness hashes the client address, and every client here is 127.0.0.1, so the harness pins each client
with the `handoff_gateway` cookie (`deploy/nginx-gateway-maps.conf`): agent *i* on gateway *i* mod 2, visitor
*j* on gateway ⌊*j* / {prod.get('plan', so['plan'])['agents']}⌋ mod 2. Half the conversations have their visitor and their agent on different
instances, so their messages cross the Redis bus; every agent's SSE stream gets every event, half of them
through Redis. Same client, pacing and think times as the single-gateway levels above.

{table}
"""


def pct_core(d: dict[str, Any], key: str) -> str:
    wall = d.get("wall_s") or 0
    return f(100 * d.get(key, 0) / wall) + " %" if wall else "–"


def store_busy(prod: dict[str, Any]) -> str:
    prof = prod.get("profile") or {}
    busy = dict(prof.get("threads_pct_of_time") or [])
    share = busy.get("handoff-store_0")
    if share is None:
        return ""
    return (f" What queues is our code: py-spy found the store's one worker thread (SQLite has one writer) "
            f"outside its idle frame in {f(share)} % of its samples at N={prof.get('level')} "
            f"(see *Where the gateway's time goes*), so messages wait for it; the event loop was busy in "
            f"{f(busy.get('MainThread'))} %.")


def durable_note(fl: dict[str, Any], echo: dict[str, Any]) -> str:
    """The floor's durable relay (the relay plus one committed SQLite row per line) against the echo."""
    if "relay_durable" not in fl:
        return ""
    d = worst_p99(fl["relay_durable"])
    return (f"With each line committed to SQLite first (the *durable relay*, still without auth, the inbox's "
            f"state or Rasa) its worst p99 is {f(d)} ms, {f(ratio(d, echo.get('p99')), 1)}× the echo. ")


def why_md(res: dict[str, Any]) -> str:
    """For each target this run missed: what the floor itself does at the same load, and where the
    machine's two cores went, so a failure on this hardware can be told from one in our code."""
    floor, prod = res["floor"], res["product"]
    out = []
    levels = [int(n) for n in prod["levels"]]
    n = 500 if 500 in levels else max(levels)
    lv, fl = prod["levels"][str(n)], floor["levels"][str(n)]
    echo, relay = fl["echo"], fl["relay"]
    worst = worst_p99(lv)
    if worst is not None and echo.get("p99") and worst > 2 * echo["p99"]:
        rv, ra = relay["v2a"].get("p99"), relay["a2v"].get("p99")
        relay_worst = max(x for x in (rv, ra) if x is not None)
        relay_ratio = ratio(relay_worst, echo["p99"])
        out.append(
            f"* **Forwarding at N={n}.** The floor's own *relay* (the same two paths with nothing stored, "
            f"authenticated or sent to Rasa: every visitor line pushed to all {prod['plan']['agents']} SSE streams, "
            f"every reply an HTTP POST) has p99 {f(rv)} ms (v→a) and {f(ra)} ms (a→v), against the echo's "
            f"{f(echo.get('p99'))} ms: "
            + (f"{f(relay_ratio, 1)}× the floor already, before any of our code. " if relay_ratio and relay_ratio > 2
               else f"{f(relay_ratio, 1)}× the floor in this run, within the target (with 20 s levels the relay's p99 "
                    f"was up to 3× the echo's). ")
            + durable_note(fl, echo)
            + f"The target compares with the echo, a single socket round "
            f"trip. Our worst p99 is {f(worst)} ms, {f(ratio(worst, relay_worst), 1)}× "
            f"the bare relay. CPU over the level (% of one core; the machine has {res['machine']['cores']}, "
            f"load average {f(lv.get('loadavg', [None])[0], 2)} at its end): client {pct_core(lv, 'client_cpu_s')}, "
            f"gateway {pct_core(lv, 'gateway_cpu_s')}, Rasa (recording the human stretch) {pct_core(lv, 'rasa_cpu_s')}; "
            f"the floor relay's server used {pct_core(relay, 'server_cpu_s')} and its client "
            f"{pct_core(relay, 'client_cpu_s')}. Per forwarded message the gateway spends "
            f"{f(1000 * lv.get('gateway_cpu_s', 0) / max(1, 2 * lv['rounds']), 2)} ms of CPU, the bare relay "
            f"{f(1000 * relay.get('server_cpu_s', 0) / max(1, 2 * relay['rounds']), 2)} ms. "
            f"What the tail was made of, found in turn: Rasa recording the human stretch and the gateway feeding "
            f"it ([ab-runs §8](bench/ab-runs.md); since then batched for 60 s, §9, and predicted in one TensorFlow "
            f"call per batch, §10); the gateway reading a claimed conversation's waiting lines back from the store "
            f"on every new line (§11 c); and the garbage collector's middle generation walking every socket's "
            f"waiting tasks and timers every few seconds, 10-40 ms each time (§11 d). Both of the last two are "
            f"fixed; lowering Rasa's CPU priority changed nothing (§11 a). What remains is the gateway's own work "
            f"per message (store, SSE fan-out, the pipe) on a loop it shares with 500 sockets."
            + store_busy(prod))
    mx, fmx = prod.get("mixed"), floor.get("mixed")
    if mx and fmx:
        worst = worst_p99(mx["forwarding"])
        e = fmx["echo"].get("p99")
        if worst is not None and e and worst > 2 * e:
            out.append(
                f"* **Forwarding next to the busy bot.** Our worst p99 {f(worst)} ms vs the floor's echo {f(e)} ms and "
                f"its relay {f(worst_p99(fmx['relay']))} ms under the same mix. CPU over the mixed load (% of one "
                f"core): client {pct_core(mx, 'client_cpu_s')}, gateway {pct_core(mx, 'gateway_cpu_s')}, Rasa "
                f"{pct_core(mx, 'rasa_cpu_s')} (bot turns of {prod['plan']['mixed']['bot']} visitors and the "
                f"human stretch); the floor run had no Rasa at all (server {pct_core(fmx, 'server_cpu_s')}, client "
                f"{pct_core(fmx, 'client_cpu_s')}). The gateway's forwarding never waits for Rasa, but on "
                f"{res['machine']['cores']} cores shared with Rasa's inference, the client and other tenants "
                f"(load average {f(mx.get('loadavg', [None])[0], 2)}), it waits for a core, and its event loop "
                f"also stores and relays the 150 bot-owned visitors' turns.")
    so = res.get("scale_out") or {}
    if so.get("levels"):
        sn = 500 if "500" in so["levels"] else max(int(k) for k in so["levels"])
        slv = so["levels"][str(sn)]
        sref = floor["levels"].get(str(sn), {}).get("echo", {}).get("p99")
        sworst = worst_p99(slv)
        if sworst is not None and sref and sworst > 2 * sref:
            small = [int(k) for k in so["levels"] if int(k) < sn]
            lower = (f" At N={max(small)} the same deployment's worst p99 was "
                     f"{f(worst_p99(so['levels'][str(max(small))]))} ms." if small else "")
            out.append(
                f"* **Scale-out.** Worst p99 {f(sworst)} ms at N={sn}.{lower} Two gateways, PostgreSQL, Redis, nginx, "
                f"Rasa and the client share {res['machine']['cores']} cores here: over the level the gateways used "
                f"{pct_core(slv, 'gateway_cpu_s')} + {pct_core(slv, 'gateway2_cpu_s')} of a core, Rasa "
                f"{pct_core(slv, 'rasa_cpu_s')}, the client {pct_core(slv, 'client_cpu_s')}, with PostgreSQL, Redis "
                f"and nginx on top (load average {f(slv.get('loadavg', [None])[0], 2)} at the end). Per forwarded "
                f"message the two gateways spend "
                f"{f(1000 * (slv.get('gateway_cpu_s', 0) + slv.get('gateway2_cpu_s', 0)) / max(1, 2 * slv['rounds']), 2)} ms "
                f"of CPU between them, against {f(1000 * lv.get('gateway_cpu_s', 0) / max(1, 2 * lv['rounds']), 2)} ms "
                f"for the one SQLite gateway: every event also crosses Redis to both, and each PostgreSQL "
                f"transaction is a few network round trips from a worker thread (an inbox's stream no longer "
                f"reads the store when another instance's event is still crossing Redis: "
                f"[ab-runs §12](bench/ab-runs.md)). The machine runs out of CPU, "
                f"and messages queue; production puts the gateways, PostgreSQL and Rasa on their own cores "
                f"(docs/scaling.md).")
    h = prod.get("handoff", {}).get("idle", {}).get("action_end_to_sse", {})
    if h.get("p95") and h["p95"] > 50:
        base = next((r for r in res.get("ab", {}).get("runs", []) if r.get("code") != "working tree"), None)
        bh = (base or {}).get("handoff", {}).get("idle", {}).get("action_end_to_sse", {})
        out.append(
            f"* **Hand-off visible to agents.** p95 {f(h['p95'])} ms over {h.get('n')} hand-offs (p50 {f(h.get('p50'))})"
            + (f"; the older code ({base.get('code')}) in the same run: p95 {f(bh.get('p95'))} ms (p50 "
               f"{f(bh.get('p50'))})" if bh.get("p95") else "")
            + ". With 30 samples the p95 is the 2nd-worst hand-off, and it moves with the machine's load.")
    bt = prod.get("bot_turns")
    if bt and bt["ours"].get("p50") and bt["stock"].get("p50") and bt["ours"]["p50"] > 1.05 * bt["stock"]["p50"]:
        out.append(
            f"* **Bot turns.** Ours {f(bt['ours']['p50'])} ms vs stock {f(bt['stock']['p50'])} ms at the median: "
            f"{f(bt['ours']['p50'] - bt['stock']['p50'])} ms more. Our turn has parts the stock channel does not: the "
            f"visitor's line is stored (one transaction) before it goes to Rasa, one more HTTP hop (gateway → "
            f"HandoffInput, NDJSON streamed back), and the bot's answer is stored (one transaction) before the "
            f"visitor gets it: that is what durability and replay cost; the stock channel keeps nothing and "
            f"loses what is sent while Rasa restarts.")
    return "\n".join(out) if out else "Every target measured in this run passed."


def plots(res: dict[str, Any], png_dir: Path) -> list[str]:
    png_dir.mkdir(parents=True, exist_ok=True)
    floor, prod = res["floor"], res["product"]
    names = []
    levels = sorted(int(n) for n in prod["levels"])

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    series = [
        ("visitor → agent SSE (ours)", [prod["levels"][str(n)]["v2a"] for n in levels], "C0", "-"),
        ("agent → visitor (ours)", [prod["levels"][str(n)]["a2v"] for n in levels], "C1", "-"),
        ("floor echo", [floor["levels"][str(n)]["echo"] for n in levels], "k", "--"),
        ("floor relay visitor → SSE", [floor["levels"][str(n)]["relay"]["v2a"] for n in levels], "0.5", ":"),
    ]
    for label, data, color, style in series:
        ax.plot(levels, [d.get("p99") for d in data], style, color=color, marker="o", label=f"{label} p99")
        ax.plot(levels, [d.get("p50") for d in data], style, color=color, marker=".", alpha=0.45, label=f"{label} p50")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("concurrent conversations in handoff")
    ax.set_ylabel("latency, ms (log)")
    ax.set_title("Forwarding latency vs the floor")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(png_dir / "forwarding.png", dpi=110)
    plt.close(fig)
    names.append("forwarding.png")

    fig, ax = plt.subplots(figsize=(7.5, 4))
    for label, data, color in (("our channel", prod["bot_turns"]["ours"], "C0"),
                               ("stock socket.io channel", prod["bot_turns"]["stock"], "C3"),
                               ("ours, mixed load", prod["mixed"]["bot_turns"], "C2")):
        xs = sorted(data.get("samples", []))
        if xs:
            ax.plot(xs, [(i + 1) / len(xs) for i in range(len(xs))], color=color, label=f"{label} (n={len(xs)})")
    ax.set_xscale("log")
    ax.set_xlabel("user_uttered → first bot_uttered, ms (log)")
    ax.set_ylabel("fraction of turns")
    ax.set_title("Bot turns: ours vs the stock socket.io channel (same model, same run)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png_dir / "bot_turns.png", dpi=110)
    plt.close(fig)
    names.append("bot_turns.png")

    fig, ax = plt.subplots(figsize=(7.5, 4))
    mixed = prod["mixed"]["forwarding"]
    for label, data, color in (("visitor → agent (ours, mixed)", mixed["v2a"], "C0"),
                               ("agent → visitor (ours, mixed)", mixed["a2v"], "C1"),
                               ("floor echo (same mix)", floor["mixed"]["echo"], "k"),
                               ("floor relay (same mix)", floor["mixed"]["relay"]["v2a"], "0.5")):
        xs = sorted(data.get("samples", []))
        if xs:
            ax.plot(xs, [(i + 1) / len(xs) for i in range(len(xs))], color=color, label=f"{label} (n={len(xs)})")
    ax.set_xscale("log")
    ax.set_xlabel("latency, ms (log)")
    ax.set_ylabel("fraction of messages")
    m = prod["plan"]["mixed"]
    ax.set_title(f"Forwarding while {m['bot']} visitors talk to the bot")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png_dir / "mixed.png", dpi=110)
    plt.close(fig)
    names.append("mixed.png")
    return names


def lat(d: dict[str, Any]) -> list[str]:
    return [f(d.get("p50")), f(d.get("p95")), f(d.get("p99"))]


def warmup_note(prod: dict[str, Any]) -> str:
    w = max([float(lv.get("warmup_s") or 0) for lv in prod.get("levels", {}).values()] or [0.0])
    if not w:
        return ""
    return (f"Before each level, and before the mixed load, the same load runs {w:g} s unmeasured: the gateway "
            "holds a claimed conversation's lines up to `HANDOFF_RASA_LOG_CLAIMED_BATCH_S` before Rasa records "
            "them together, so a window that started cold would leave Rasa's recording out of it. ")


def render(res: dict[str, Any], png_names: list[str], png_rel: str) -> tuple[str, str]:
    floor, prod = res["floor"], res["product"]
    mach, ver = res["machine"], res["versions"]
    levels = sorted(int(n) for n in prod["levels"])
    tg = targets(res)
    tgt_rows = [[t["target"], t["measured"], f(t["ratio"], 2) + ("×" if t["ratio"] is not None else ""), t["verdict"]]
                for t in tg]
    targets_md = md_table(["target", "measured", "ratio", "verdict"], tgt_rows)

    fwd_rows = []
    for n in levels:
        lv, fl = prod["levels"][str(n)], floor["levels"][str(n)]
        fwd_rows.append([str(n), f"{lv['think_s']:g}", *lat(lv["v2a"]), *lat(lv["a2v"]), *lat(fl["echo"]),
                         f(fl["relay"]["v2a"].get("p99")), f(worst_p99(fl["relay_durable"]) if "relay_durable" in fl else None),
                         f(ratio(worst_p99(lv), fl["echo"].get("p99")), 1) + "×",
                         str(lv["rounds"]), f"{errors(lv)} / {lost(lv)} / {late(lv)}",
                         f(1000 * lv.get("gateway_cpu_s", 0) / max(1, 2 * lv["rounds"]), 2),
                         f(1000 * lv.get("rasa_cpu_s", 0) / max(1, 2 * lv["rounds"]), 2),
                         f(1000 * fl["relay"].get("server_cpu_s", 0) / max(1, 2 * fl["relay"]["rounds"]), 2)])
    fwd_md = md_table(["N", "think s", "v→a p50", "p95", "p99", "a→v p50", "p95", "p99", "floor echo p50", "p95", "p99",
                       "floor relay v→a p99", "floor durable relay worst p99", "worst p99 / floor p99", "rounds", "errors / lost / late", "gateway CPU ms/msg",
                       "Rasa CPU ms/msg", "floor relay CPU ms/msg"],
                      fwd_rows)

    bt = prod["bot_turns"]
    bot_rows = [["ours (gateway → HandoffInput)", str(bt["ours"]["n"]), *lat(bt["ours"]), str(bt["ours"]["missing"])],
                ["stock socket.io (python-socketio 5.9.0)", str(bt["stock"]["n"]), *lat(bt["stock"]),
                 str(bt["stock"]["missing"])]]
    for name, key in (("ours, back to back", "ours"), ("stock, back to back", "stock")):
        d = (bt.get("back_to_back") or {}).get(key)
        if d:
            bot_rows.append([name, str(d["n"]), *lat(d), str(d["missing"])])
    bot_md = md_table(["channel", "n", "p50", "p95", "p99", "missing replies"], bot_rows)

    h = prod["handoff"]
    ho_rows = []
    for name, part in (("one at a time (at rest)", h["idle"]), (f"ramp, {h['ramp'].get('parallel')} in parallel", h["ramp"])):
        if not part.get("conversations"):
            continue
        for key, label in (("action_end_to_sse", "action's end (Rasa's `pause` event timestamp) → agent SSE"),
                           ("visitor_connecting_to_sse", "visitor sees \"Connecting you…\" → agent SSE"),
                           ("visitor_emit_to_sse", "visitor sends \"I want to talk to a human\" → agent SSE")):
            d = part[key]
            ho_rows.append([name, label, str(d.get("n", 0)), *lat(d)])
    ho_md = md_table(["hand-offs", "from → to", "n", "p50", "p95", "p99"], ho_rows)

    mem, fmem = prod["memory"], floor["memory"]
    mem_md = md_table(["", "gateway", "floor"], [
        ["RSS before visitors, MB", f(mem["rss_before_mb"]), f(fmem["rss_before_mb"])],
        [f"per idle visitor connection ({mem['idle_connections']} connected), KB",
         f(mem["kb_per_idle_connection"]), f(fmem["kb_per_idle_connection"])],
        [f"per conversation in handoff ({mem.get('handoff_conversations')} connected, claimed, after the load), KB",
         f(mem.get("kb_per_handoff_conversation")), "–"],
        ["RSS with them, MB", f(mem.get("rss_handoff_mb")), "–"],
    ])

    mx, fmx = prod["mixed"], floor["mixed"]
    mixed_md = md_table(["stream", "n", "p50", "p95", "p99", "errors+lost+late"], [
        ["ours: visitor → agent SSE", str(mx["forwarding"]["v2a"].get("n", 0)), *lat(mx["forwarding"]["v2a"]),
         str(problems(mx["forwarding"]))],
        ["ours: agent → visitor", str(mx["forwarding"]["a2v"].get("n", 0)), *lat(mx["forwarding"]["a2v"]), ""],
        ["ours: bot turns of the bot-owned visitors", str(mx["bot_turns"].get("n", 0)), *lat(mx["bot_turns"]),
         str(mx["bot_turns"].get("missing", 0))],
        ["floor: echo (the bot-owned visitors' stand-in)", str(fmx["echo"].get("n", 0)), *lat(fmx["echo"]),
         str(fmx["echo"].get("lost", 0))],
        ["floor: relay visitor → SSE", str(fmx["relay"]["v2a"].get("n", 0)), *lat(fmx["relay"]["v2a"]), ""],
    ])

    prof = prod.get("profile") or {}
    if prof.get("threads_pct_of_time"):
        prof_md = (f"py-spy sampled the gateway for {prof['seconds']} s at {prof['rate']} Hz while the N={prof['level']} "
                   f"load ran again (a separate run, so sampling does not touch the numbers above; v→a p99 then "
                   f"{f(prof.get('v2a', {}).get('p99'))} ms, a→v p99 {f(prof.get('a2v', {}).get('p99'))} ms). "
                   f"CPU meanwhile (from /proc, % of one core): gateway {f(prof.get('cpu_pct_of_core', {}).get('gateway'))}, "
                   f"Rasa {f(prof.get('cpu_pct_of_core', {}).get('rasa'))}.\n\n"
                   "Share of samples per thread (\"waiting\": the event loop inside uvloop, which is either idle or "
                   "doing socket I/O, or a store thread waiting for a job; SQLite's store runs on the loop, and "
                   "its one thread only copies the WAL back once a second):\n\n"
                   + md_table(["thread", "% of samples"], [[t, f(p)] for t, p in prof["threads_pct_of_time"]])
                   + "\n\nInnermost `handoff_channel` frame on the stack:\n\n"
                   + md_table(["thread · frame", "% of samples"], [[t.replace("|", "·"), f(p)] for t, p in prof["own_frames_pct"]])
                   + "\n\nInnermost frame (any code):\n\n"
                   + md_table(["thread · frame", "% of samples"], [[t.replace("|", "·"), f(p)] for t, p in prof["leaf_frames_pct"]])
                   + "\n\nThat is CPU. For where a message *waits* (the event loop's queue between the steps of its "
                   "path), `bench.run --stages` stamps each step inside the gateway: docs/bench/ab-runs.md §4.")
    else:
        prof_md = f"Not profiled ({prof.get('skipped', 'no profile in this run')})."

    srv = ver["server (project venv)"]
    cli = ver["client (bench venv)"]
    stock = ver["stock channel overlay"]
    p = prod["plan"]
    quick_note = ("\n> **This is a `--quick` smoke run**: a few seconds per measurement and small N. Its numbers "
                  "show that the harness works, not how fast the product is.\n" if res.get("quick") else "")

    md = f"""# Benchmarks

Generated by `make bench` (`scripts/bench.sh`; `scripts/bench.sh --quick` is a smoke version for CI).
Do not edit by hand: run it again. Raw numbers of this run: `{res.get('results_path', '')}`.
{quick_note}
## Targets

{targets_md}

### Why the failing targets fail here

{why_md(res)}

## Machine and versions

* {mach['cores']} cores ({mach['cpu']}), {mach['ram_gb']} GB RAM, Linux {mach['kernel']}, Python {mach['python']}.
  Load average at start {', '.join(f'{x:.2f}' for x in mach['loadavg_start'])}, at end
  {', '.join(f'{x:.2f}' for x in mach.get('loadavg_end', []))}: the machine is shared, and the client, the
  gateway, Rasa and the action server share its cores. Ratios measured in one run are what to compare.
* Product at commit {mach['commit']}; model trained with `{res['model']['config']}`; run took {res.get('elapsed_s', 0) // 60} min {res.get('elapsed_s', 0) % 60} s on {mach['date']}.
* Servers (project venv): rasa {srv.get('rasa')}, rasa-sdk {srv.get('rasa-sdk')}, sanic {srv.get('sanic')},
  python-socketio {srv.get('python-socketio')}, python-engineio {srv.get('python-engineio')}, aiohttp {srv.get('aiohttp')},
  SQLAlchemy {srv.get('SQLAlchemy')}, uvloop {srv.get('uvloop')}, tensorflow {srv.get('tensorflow')}.
* Stock channel: the same `rasa run`, with `bench/stock-credentials.yml` (socketio, session persistence on) and
  {', '.join(f'{k} {v}' for k, v in sorted(stock.items()))} put first on its PYTHONPATH (Rasa 3.6 calls
  `AsyncServer.enter_room` without `await`; with python-socketio ≥ 5.10 no reply would reach the visitor).
* Client (`.cache/bench/venv`): python-socketio {cli.get('python-socketio')}, python-engineio {cli.get('python-engineio')},
  aiohttp {cli.get('aiohttp')} (websocket transport, like a browser), uvloop {cli.get('uvloop')}, matplotlib {cli.get('matplotlib')}.
* Gateway store: SQLite (the default `HANDOFF_DB_URL`), bus `memory://`; Rasa tracker store: SQL on SQLite
  (`bot/endpoints.yml`), as `make run` runs them.

## What is measured, and how

Everything runs on 127.0.0.1. One client process (bench/client.py) plays every visitor (python-socketio,
websocket transport, the rasa-webchat events) and every agent (inbox API + SSE); it takes both ends of a
latency with the same clock. Percentiles are nearest-rank.

1. **Floor** (`bench/floor_server.py`): the gateway's stack (Sanic 21.12, python-socketio, `async_mode="sanic"`,
   same ping settings) with nothing in between: *echo* sends a visitor's `user_uttered` straight back as
   `bot_uttered` (the issue's floor); *relay* pushes it to every SSE stream, and an agent's
   `POST /api/conversations/<id>/messages` straight to the visitor's room: the gateway's two forwarding paths
   without store, auth, or Rasa; *durable relay* is the relay again with each line first written to SQLite
   and committed (one row, the gateway's WAL settings), the least a server must do before it acknowledges a
   line it promises not to lose. Same client code, same pacing, same N as the product.
2. **Bot turns**: `user_uttered` → first `bot_uttered`, {p['bot_reps']} conversations of 10 turns per channel,
   alternating ours/stock, one at a time, FAQ texts answered by a template (no custom action). A new
   conversation every 10 turns keeps the tracker length the same for both. The visitor waits
   {p.get('bot_pause', 0)} s after an answer before the next line (as a reader does), so every turn starts on an idle
   conversation; the target uses these. *Back to back* (the next line the moment the first answer arrives, the
   same number of conversations) is shown beside them: such a turn also waits until the previous one has
   finished in Rasa (next-action prediction, tracker save), and, through our channel, until the gateway has
   recorded it (the turn's result, the outbox item done) and sent the next line to Rasa.
3. **Forwarding**: N conversations are put into handoff for real (the visitor says "I want to talk to a human",
   `action_handoff` runs, an agent claims it). Then each conversation, paced (first message at a random time
   within the think time, then think × uniform(0.5, 1.5)): the visitor emits `user_uttered` (latency *v→a*
   ends when the owning agent's SSE stream delivers the `message_created` event), and at once the agent
   POSTs a reply (latency *a→v* ends when the visitor's socket delivers the `bot_uttered`). {p['agents']} agents
   are logged in, each with an SSE stream; every stream receives every event (the inbox lists every
   conversation), conversations are claimed round-robin. Think time: {', '.join(f'{t:g} s at N={n}' for n, t in sorted((int(k), v) for k, v in p['thinks'].items()))}
   (a person types a line every ~10 s; the short think times at small N only collect enough samples).
   Each level lasts {', '.join(f'{d:g} s at N={n}' for n, d in sorted((int(k), v) for k, v in p['durations'].items()))}:
   at N=500 that is ~3,000 rounds, so each direction's p99 rests on its ~30 slowest lines, not on ten.
   {warmup_note(prod)}Between levels the harness waits until Rasa has drained the logged human stretch.
4. **Hand-off latency**: the *action's end* is the timestamp of the `pause` event that `action_handoff`
   returns, as Rasa writes it into the tracker (SQL tracker store): Rasa stamps the action's events with
   `time.time()` when it applies them, right after the action server answered
   (`MessageProcessor._log_action_on_tracker`). The end is the agent's SSE stream delivering the
   `conversation_updated` event with status `queued` (`time.time()` in the client, same machine). That
   covers Rasa finishing the turn and saving the tracker, the HTTP answer to the gateway, storing the bot's
   message and the handoff, and the SSE push. Measured on the first {p['handoff_idle']} hand-offs one at a time;
   the ramp to larger N runs {h['ramp'].get('parallel')} at a time. The table also gives the same end from the visitor's receipt of
   "Connecting you…" (which the action utters) and from the visitor's request.
5. **Memory**: gateway VmRSS before any visitor, with {mem['idle_connections']} idle visitors connected (socket + `session_request`),
   and after the largest level with every conversation connected, claimed and talked in (per conversation:
   (RSS then − RSS before) / N).
6. **Mixed load**: {p['mixed']['bot']} bot-owned visitors talk to the bot (think {p['mixed']['think']:g} s, a new conversation every
   10 turns) while {p['mixed']['human']} human-owned conversations forward as in 3, for {p['mixed']['duration']} s; the floor runs
   the same shape ({p['mixed']['bot']} echo visitors next to {p['mixed']['human']} relayed conversations).

## Forwarding

![forwarding](bench/{png_names[0]})

{fwd_md}

v→a: visitor `user_uttered` → the owning agent's SSE event; a→v: agent POST → visitor `bot_uttered`. *Errors*:
sends refused or not answered within 30 s (ack, HTTP), dropped sockets and SSE streams: the sender knows, and
the widget or the inbox would send again; *lost*: accepted (ack `ok`, HTTP 201) but never seen at the other end,
even 30 s after the deadline; *late*: accepted and seen, but more than 30 s after it was sent (not in the percentiles).
CPU per message = the process's CPU time over the level / (2 × rounds): the gateway's includes storing,
the SSE fan-out and the Rasa pipe; Rasa's is the logging of the human stretch (`/webhooks/handoff/log`,
NLU on each visitor line, tracker read and save); the floor relay's is the bare socket.io + SSE path.

## Bot turns

![bot turns](bench/{png_names[1]})

{bot_md}

## Hand-off latency

{ho_md}

## Memory

{mem_md}

## Mixed load

![mixed](bench/{png_names[2]})

{mixed_md}

## Where the gateway's time goes

{prof_md}

## Scale-out

{scale_out_md(res)}
{ab_md(res)}"""

    # The console table: the targets, then forwarding at a glance.
    lines = ["", "Targets"]
    w = max(len(t["target"]) for t in tg)
    for t in tg:
        lines.append(f"  {t['target']:<{w}}  {t['verdict'].replace('*', ''):<8} {f(t['ratio'], 2) + 'x' if t['ratio'] is not None else '':>7}  {t['measured']}")
    lines += ["", "Forwarding (ms)      v->a p50   p99 | a->v p50   p99 | floor echo p50   p99 | errors/lost/late"]
    for n in levels:
        lv, fl = prod["levels"][str(n)], floor["levels"][str(n)]
        lines.append(f"  N={n:<5}          {f(lv['v2a'].get('p50')):>8} {f(lv['v2a'].get('p99')):>5} | "
                     f"{f(lv['a2v'].get('p50')):>8} {f(lv['a2v'].get('p99')):>5} | "
                     f"{f(fl['echo'].get('p50')):>14} {f(fl['echo'].get('p99')):>5} | {errors(lv)}/{lost(lv)}/{late(lv)}")
    lines.append(f"  bot turns p50: ours {f(bt['ours'].get('p50'))} ms, stock {f(bt['stock'].get('p50'))} ms;"
                 f" hand-off action end -> SSE p95 {f(h['idle']['action_end_to_sse'].get('p95'))} ms;"
                 f" gateway {f(mem['kb_per_idle_connection'])} KB/idle connection,"
                 f" {f(mem.get('kb_per_handoff_conversation'))} KB/handoff conversation")
    return md, "\n".join(lines)


def ab_table(res: dict[str, Any]) -> str:
    """The A/B of ``bench.run --baseline``: one column per product run, in the order they ran."""
    runs = res["ab"]["runs"]
    head = ["measure"] + [f"{r.get('code', r['label'])}" for r in runs]
    rows: list[list[str]] = []

    def row(name: str, get: Any, nd: int = 1) -> None:
        vals = []
        for r in runs:
            try:
                vals.append(f(get(r), nd))
            except (KeyError, TypeError, ZeroDivisionError):
                vals.append("–")
        if any(v != "–" for v in vals):
            rows.append([name] + vals)

    floor = res.get("floor", {})
    for n in sorted({int(k) for r in runs for k in r.get("levels", {})}):
        k = str(n)
        for d, label in (("v2a", "visitor → agent SSE"), ("a2v", "agent → visitor")):
            for q in ("p50", "p95", "p99"):
                row(f"N={n} {label} {q}, ms", lambda r, d=d, q=q, k=k: r["levels"][k][d][q])
        row(f"N={n} rounds / errors+lost+late", lambda r, k=k: f"{r['levels'][k]['rounds']} / {problems(r['levels'][k])}")
        row(f"N={n} gateway CPU ms/msg", lambda r, k=k: 1000 * r["levels"][k]["gateway_cpu_s"] / (2 * r["levels"][k]["rounds"]), 2)
        row(f"N={n} Rasa CPU ms/msg", lambda r, k=k: 1000 * r["levels"][k]["rasa_cpu_s"] / (2 * r["levels"][k]["rounds"]), 2)
        row(f"N={n} load average (1 min) at the end", lambda r, k=k: r["levels"][k]["loadavg"][0], 2)
        if k in floor.get("levels", {}):
            rows.append([f"N={n} floor echo p99 / relay v→a p99, ms (same run)",
                         *[f"{f(floor['levels'][k]['echo'].get('p99'))} / {f(floor['levels'][k]['relay']['v2a'].get('p99'))}"] * len(runs)])
    for n in sorted({int(k) for r in runs for k in (r.get("scale_out") or {}).get("levels", {})}):
        k = str(n)
        for d, label in (("v2a", "visitor → agent SSE"), ("a2v", "agent → visitor")):
            for q in ("p50", "p95", "p99"):
                row(f"scale-out N={n} {label} {q}, ms", lambda r, d=d, q=q, k=k: r["scale_out"]["levels"][k][d][q])
        row(f"scale-out N={n} rounds / errors+lost+late",
            lambda r, k=k: f"{r['scale_out']['levels'][k]['rounds']} / {problems(r['scale_out']['levels'][k])}")
        row(f"scale-out N={n} both gateways' CPU ms/msg",
            lambda r, k=k: 1000 * (r["scale_out"]["levels"][k]["gateway_cpu_s"] + r["scale_out"]["levels"][k]["gateway2_cpu_s"])
            / (2 * r["scale_out"]["levels"][k]["rounds"]), 2)
        row(f"scale-out N={n} load average (1 min) at the end", lambda r, k=k: r["scale_out"]["levels"][k]["loadavg"][0], 2)
    for d, label in (("v2a", "visitor → agent SSE"), ("a2v", "agent → visitor")):
        for q in ("p50", "p99"):
            row(f"mixed {label} {q}, ms", lambda r, d=d, q=q: r["mixed"]["forwarding"][d][q])
    row("mixed bot turns p50, ms", lambda r: r["mixed"]["bot_turns"]["p50"])
    row("mixed bot turns p99, ms", lambda r: r["mixed"]["bot_turns"]["p99"])
    row("mixed gateway CPU s / Rasa CPU s", lambda r: f"{r['mixed']['gateway_cpu_s']} / {r['mixed']['rasa_cpu_s']}")
    row("mixed load average (1 min) at the end", lambda r: r["mixed"]["loadavg"][0], 2)
    if "mixed" in floor:
        rows.append(["mixed floor echo p99 / relay v→a p99, ms (same run)",
                     *[f"{f(floor['mixed']['echo'].get('p99'))} / {f(floor['mixed']['relay']['v2a'].get('p99'))}"] * len(runs)])
    row("bot turns ours p50, ms", lambda r: r["bot_turns"]["ours"]["p50"])
    row("bot turns stock p50, ms", lambda r: r["bot_turns"]["stock"]["p50"])
    row("bot turns ours / stock (p50)", lambda r: r["bot_turns"]["ours"]["p50"] / r["bot_turns"]["stock"]["p50"], 2)
    row("bot turns back to back, ours / stock p50, ms",
        lambda r: f"{f(r['bot_turns']['back_to_back']['ours']['p50'])} / {f(r['bot_turns']['back_to_back']['stock']['p50'])}")
    row("bot turns ours p95 / stock p95, ms", lambda r: f"{f(r['bot_turns']['ours']['p95'])} / {f(r['bot_turns']['stock']['p95'])}")
    row("load average (1 min) at the end of the phase", lambda r: r["loadavg_end"][0], 2)
    return md_table(head, rows)


def ab_md(res: dict[str, Any]) -> str:
    if not res.get("ab"):
        return ""
    runs = res["ab"]["runs"]
    order = ", ".join(f"{r.get('code', r['label'])}" for r in runs)
    return f"""
## Before and after, same run

The product phase ran once per version of `handoff_channel/` (`bench.run --baseline REF`: the older
code extracted with `git archive`, same model, same client, one after the other: {order}), so the
columns share the machine's state as far as a shared machine allows. Each column's load average is in
the table. A column with fewer rows ran only the parts the A/B compares (`--ab-levels`, `--ab-parts`);
then the longer column's conversations at a shared level had already talked through the smaller
levels (longer Rasa trackers, so more of Rasa's CPU per logged line), a handicap for that column.
A/B runs with equal parts on both sides are kept in [docs/bench/ab-runs.md](bench/ab-runs.md).

{ab_table(res)}
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", type=Path)
    ap.add_argument("--ab", action="store_true", help="print the A/B table of a --baseline run (markdown) and exit")
    ap.add_argument("--md", type=Path, default=REPO / "docs" / "benchmarks.md")
    ap.add_argument("--png-dir", type=Path, default=REPO / "docs" / "bench")
    args = ap.parse_args()
    res = json.loads(args.results.read_text())
    if args.ab:
        m = res["machine"]
        print(f"commit {m['commit']}, {m['date']}, load average at start {', '.join(f'{x:.2f}' for x in m['loadavg_start'])}, "
              f"at end {', '.join(f'{x:.2f}' for x in m.get('loadavg_end', []))}\n")
        print(ab_table(res))
        return
    try:
        res["results_path"] = str(args.results.resolve().relative_to(REPO))
    except ValueError:
        res["results_path"] = str(args.results)
    names = plots(res, args.png_dir)
    md, console = render(res, names, "bench")
    args.md.write_text(md)
    print(console)
    print(f"\nwrote {args.md} and {', '.join(str(args.png_dir / n) for n in names)}")


if __name__ == "__main__":
    main()
