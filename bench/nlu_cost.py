"""What Rasa's NLU costs per visitor line, the work Rasa does for every line of the human stretch
(``/log`` parses each batch's visitor lines for the record), and what parsing lines together saves.

    .venv/bin/python -m bench.nlu_cost [MODEL]   (default: .cache/bench/models/bench.tar.gz)

Prints a table: milliseconds of one core per line through ``Agent.parse_message`` one at a time,
then through the channel's ``parse_many`` (one NLU graph run per batch) with batches of 1, 5, 10
and 20 lines, once with DIET predicting message by message (the stock ``DIETClassifier.process``)
and once batched (``BatchDIETClassifier``, when the model's pipeline uses it), alternating so both
see the same machine. Checks that a batch classifies every line as a single parse does. Run on an
otherwise idle machine for numbers worth comparing; the ratio between rows is what matters."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LINES = [
    "my parcel never arrived and I am waiting for two weeks now", "yes that is right", "order 12345 please",
    "can you refund me", "thanks a lot", "it was blue", "when will it arrive?", "ok", "I paid with paypal", "no",
]


async def measure(model: Path, rounds: int = 200) -> list[tuple[str, float]]:
    from rasa.core.agent import Agent
    from rasa.nlu.classifiers.diet_classifier import DIETClassifier
    from rasa.utils.log_utils import configure_structlog

    from handoff_channel.nlu.batch_diet import BatchDIETClassifier
    from handoff_channel.rasa_channel import parse_many

    configure_structlog(logging.WARNING)  # no debug line per parse
    agent = Agent.load(str(model))
    assert agent.processor is not None
    for text in LINES:  # the first calls trace TensorFlow functions
        await agent.parse_message(text)
    await parse_many(agent, LINES)
    rows: list[tuple[str, float]] = []
    started = time.process_time()
    for i in range(rounds):
        await agent.parse_message(LINES[i % len(LINES)])
    rows.append(("Agent.parse_message, one line at a time", (time.process_time() - started) / rounds * 1000))

    nodes = [n for n in agent.processor.graph_runner._instantiated_nodes.values()
             if isinstance(n._component, BatchDIETClassifier)]
    ways = [("DIET message by message", DIETClassifier.process)]
    if nodes:
        ways.append(("DIET batched (BatchDIETClassifier)", BatchDIETClassifier.process))
    else:
        print("the model's pipeline has no BatchDIETClassifier: only the stock rows are measured")
    cost: dict[tuple[str, int], list[float]] = {}
    for _ in range(3):  # alternate the two ways, so both see the same machine
        for label, process in ways:
            for node in nodes:
                node._fn = process
            for size in (1, 5, 10, 20):
                batches = max(1, rounds // size // 3)
                started = time.process_time()
                for b in range(batches):
                    await parse_many(agent, [LINES[(b + k) % len(LINES)] for k in range(size)])
                cost.setdefault((label, size), []).append((time.process_time() - started) / (batches * size) * 1000)
    for node in nodes:
        node._fn = BatchDIETClassifier.process
    for (label, size), ms in cost.items():
        rows.append((f"parse_many, batches of {size}, {label}", sorted(ms)[1]))
    together = await parse_many(agent, LINES)
    for text, parsed in zip(LINES, together):
        alone = await agent.parse_message(text)
        if alone["intent"]["name"] != parsed["intent"]["name"]:
            raise SystemExit(f"a batch classified {text!r} differently: {parsed['intent']} vs {alone['intent']}")
    return rows


def main() -> None:
    model = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / ".cache" / "bench" / "models" / "bench.tar.gz"
    if not model.exists():
        raise SystemExit(f"no model at {model}: run `make bench` once (it trains it), or name a model")
    os.chdir(REPO / "bot")  # the model's custom components import as handoff_channel.*
    sys.path.insert(0, str(REPO))
    rows = asyncio.run(measure(model))
    print(f"\nRasa NLU cost per visitor line ({model.name}, CPU time of this process)\n")
    print("| how | ms of CPU per line |\n|---|---|")
    for how, ms in rows:
        print(f"| {how} | {ms:.2f} |")


if __name__ == "__main__":
    main()
