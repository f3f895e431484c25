"""The store's share of a forwarded message, old code against new in one run: the calls the
gateway makes per visitor line and agent reply (add_message, the Rasa pipe's read and finish, the
agent's session lookup, delivery marks), timed on an embedded SQLite store with nothing else in
the process. Each ref runs in its own subprocess, alternating, ``--rounds`` times.

    .venv/bin/python -m bench.store_ops [--ref 3098ea4] [--rounds 3] [--n 400]

``--ref`` is a git ref (extracted with git archive, as ``bench.run --baseline`` does); the working
tree is always the other side."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = r'''
import asyncio, json, os, sys, tempfile, time
from handoff_channel.store import SqlConversationStore
from handoff_channel.models import OutboxKind, Role

async def main(n):
    with tempfile.TemporaryDirectory() as tmp:
        s = SqlConversationStore(f"sqlite:///{tmp}/h.db")
        await s.open()
        convs = [f"c-{i}" for i in range(100)]
        for c in convs:
            await s.get_or_create_conversation(c)
        await s.create_session("tok", "nobody", time.time() + 3600)
        has_work = hasattr(s, "outbox_work")
        t0 = time.perf_counter(); c0 = time.process_time()
        for i in range(n):
            cid = convs[i % 100]
            # visitor line (old: get_or_create first) and the agent's reply (session lookup first)
            if not has_work:
                await s.get_or_create_conversation(cid)
            await s.add_message(cid, Role.VISITOR, "my parcel is still not here", route=lambda _c: OutboxKind.LOG)
            if has_work:  # the pipe's first look, before it waits for the reply (HANDOFF_RASA_LOG_BATCH_S)
                await s.outbox_work(cid)
            await s.session_agent("tok", time.time())
            await s.add_message(cid, Role.AGENT, "Thanks, I am checking", author="a", author_name="A",
                                client_id=f"r{i}", route=lambda _c: OutboxKind.LOG)
            # the Rasa pipe records both lines (the old pipe: one batch per line, here both in one,
            # which favours the old code)
            if has_work:
                conv, items, msgs = await s.outbox_work(cid)
            else:
                items = await s.pending_outbox(cid)
                await s.get_conversation(cid)
                for it in items:
                    await s.get_message(int(it.payload["message_id"]))
            await s.finish_outbox([it.id for it in items])
            if not has_work:
                await s.pending_outbox(cid)
            # delivery mark of the visitor
            await s.mark_delivered(cid, i)
        wall = time.perf_counter() - t0; cpu = time.process_time() - c0
        await s.close()
        print(json.dumps({"rounds": n, "ms_per_round": 1000 * wall / n, "cpu_ms_per_round": 1000 * cpu / n}))

asyncio.run(main(int(sys.argv[1])))
'''


def extract(ref: str) -> tuple[Path, str]:
    sha = subprocess.run(["git", "rev-parse", "--short", ref], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.strip()
    root = REPO / ".cache" / "bench" / f"code-{sha}"
    if not (root / "handoff_channel" / "__init__.py").exists():
        root.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha, "handoff_channel"], cwd=REPO, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    return root, sha


def run(root: Path, n: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(n)], cwd=root, env=dict(os.environ, PYTHONPATH=str(root)),
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", default="HEAD")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=400)
    args = ap.parse_args()
    old_root, sha = extract(args.ref)
    sides = [(sha, old_root), ("working tree", REPO)]
    print(f"load average at start {', '.join(f'{x:.2f}' for x in os.getloadavg())}; {args.n} rounds "
          "(visitor line + agent reply + the pipe recording both + a delivery mark) per measurement")
    print("| code | round | ms per round (wall) | CPU ms per round | load avg (1 min) |")
    print("|---|---|---|---|---|")
    for r in range(args.rounds):
        for name, root in (sides if r % 2 == 0 else sides[::-1]):
            res = run(root, args.n)
            print(f"| {name} | {r + 1} | {res['ms_per_round']:.2f} | {res['cpu_ms_per_round']:.2f} | "
                  f"{os.getloadavg()[0]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
