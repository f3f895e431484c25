"""What Rasa's NLU costs per visitor line, the work Rasa does for every line of the human stretch
(``/log`` parses each visitor line for the record), and whether parsing lines together is cheaper.

    .venv/bin/python -m bench.nlu_cost [MODEL]   (default: .cache/bench/models/bench.tar.gz)

Prints a table: milliseconds of one core per line through ``Agent.parse_message`` one at a time,
then through the NLU graph with batches of 1, 5, 10 and 20 lines, and checks that a batch
classifies every line as a single parse does. Runs on an otherwise idle machine for numbers
worth comparing; the ratio between rows is what matters."""

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
    from rasa.core.channels.channel import UserMessage
    from rasa.core.processor import PLACEHOLDER_MESSAGE, PLACEHOLDER_TRACKER
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)  # no debug line per parse
    agent = Agent.load(str(model))
    processor = agent.processor
    assert processor is not None
    for text in LINES:  # the first calls trace TensorFlow functions
        await agent.parse_message(text)
    rows: list[tuple[str, float]] = []
    started = time.process_time()
    for i in range(rounds):
        await agent.parse_message(LINES[i % len(LINES)])
    rows.append(("Agent.parse_message, one line at a time", (time.process_time() - started) / rounds * 1000))
    tracker = DialogueStateTracker.from_events("nlu-cost", [])
    target = processor.model_metadata.nlu_target

    def graph(texts: list[str]) -> list[dict]:
        messages = [UserMessage(t, sender_id="nlu-cost") for t in texts]
        out = processor.graph_runner.run(inputs={PLACEHOLDER_MESSAGE: messages, PLACEHOLDER_TRACKER: tracker},
                                         targets=[target])[target]
        return [m.as_dict(only_output_properties=True) for m in out]

    for size in (1, 5, 10, 20):
        batches = max(1, rounds // size)
        started = time.process_time()
        for b in range(batches):
            graph([LINES[(b + k) % len(LINES)] for k in range(size)])
        rows.append((f"NLU graph, batches of {size}", (time.process_time() - started) / (batches * size) * 1000))
    together = graph(LINES)
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
