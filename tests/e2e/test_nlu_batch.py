"""The lines of a claimed conversation are parsed together (``/webhooks/handoff/log``): with the
trained test model, in this process, the batch must give every line what Rasa's own one-at-a-time
parse gives it, and reach TensorFlow once per batch, not once per line."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from handoff_channel.settings import REPO_ROOT

LINES = [
    "my parcel never arrived and I have been waiting for two weeks now",
    "ok",
    "order 12345 please",
    "can you refund me",
    "this is ridiculous, nobody helps me!!!",
    "/request_human",  # a button's payload: Rasa reads the intent, not the words
    "<b>hello</b> <script>alert(1)</script>",
    "thanks 👍",
    "👍",  # no word for the tokenizer
    "   ",
    "i want to talk to a human",
    "what are your opening hours?",
    "zzzz qqqq",
]

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def agent(model: Path) -> Iterator[Any]:
    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)
    cwd = os.getcwd()
    os.chdir(REPO_ROOT / "bot")  # where `rasa run` runs it
    try:
        yield Agent.load(str(model))
    finally:
        os.chdir(cwd)


def _diet(agent: Any) -> Any:
    from handoff_channel.nlu.batch_diet import BatchDIETClassifier

    found = [node._component for node in agent.processor.graph_runner._instantiated_nodes.values()
             if isinstance(node._component, BatchDIETClassifier)]
    assert len(found) == 1, "the test model's pipeline should use BatchDIETClassifier (bot/config.fast.yml)"
    return found[0]


async def test_a_batch_parses_every_line_as_rasa_parses_it_alone(agent: Any) -> None:
    from handoff_channel.rasa_channel import parse_many

    alone = [await agent.parse_message(text) for text in LINES]
    together = await parse_many(agent, LINES)
    assert len(together) == len(LINES)
    for text, one, batch in zip(LINES, alone, together):
        assert batch["text"] == one["text"], text
        assert batch["intent"]["name"] == one["intent"]["name"], text
        assert batch["intent"]["confidence"] == pytest.approx(one["intent"]["confidence"], abs=1e-5), text
        assert [r["name"] for r in batch["intent_ranking"]] == [r["name"] for r in one["intent_ranking"]], text
        assert batch["entities"] == one["entities"], text
        assert batch.get("sentiment") == one.get("sentiment"), text
    assert together[LINES.index("/request_human")]["intent"] == {"name": "request_human", "confidence": 1.0}
    assert together[LINES.index("order 12345 please")]["entities"][0]["value"] == "12345"


async def test_a_batch_reaches_tensorflow_once_not_once_per_line(agent: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from handoff_channel.rasa_channel import parse_many

    diet = _diet(agent)
    calls: list[int] = []
    run_inference = diet.model.run_inference

    def counting(model_data: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(model_data.number_of_examples())
        return run_inference(model_data, *args, **kwargs)

    monkeypatch.setattr(diet.model, "run_inference", counting)
    await parse_many(agent, LINES[:8])
    assert calls == [8]
    calls.clear()
    await agent.parse_message(LINES[0])  # a bot turn: one line, as before
    assert calls == [1]
