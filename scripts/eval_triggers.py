#!/usr/bin/env python
"""How well do the hand-off triggers fire? Precision and recall per trigger on a labelled file.

    .venv/bin/python scripts/eval_triggers.py                      # trains the fast model if needed
    .venv/bin/python scripts/eval_triggers.py --model bot/models/handoff.tar.gz --show-errors

It loads the trained model (``rasa.core.agent.Agent.load``) and, for each labelled message, does
what ``rasa run`` does for the first message of a conversation, without the action server:
``agent.parse_message`` (NLU, with the sentiment score), then the policy ensemble's predictions
(``HandoffPolicy`` with the parameters in the model's config, the rules, TED) until the bot would
hand off or answer. The reason ``action_handoff`` would receive is the predicted trigger.

Labels come from ``bot/tests/trigger_utterances.yml`` (see its header). Prints, per trigger:
precision, recall, support; the share of routine messages (``none``) handed off; the sentiment
detector's precision and recall on the ``mood`` lists; and the outcome of each labelled
``conversations`` entry. Exit status 1 when a target of issue 4 is missed:
explicit_request recall >= 0.95, safety recall 1.0, hand-offs on routine messages <= 2%.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")

NONE = "none"
HANDOFF_ACTION = "action_handoff"
TRIGGER_SLOT = "handoff_trigger"
TARGETS = {"explicit_request_recall": 0.95, "safety_recall": 1.0, "routine_handoff_rate": 0.02}
MAX_STEPS = 4  # bot actions followed after one message (crisis resources -> hand-off)


@dataclass
class Outcome:
    action_names: list[str]
    reason: Optional[str]  # the hand-off reason, or None when the bot would answer
    priority: Optional[int]
    parse: dict[str, Any]


def load_labels(path: Path) -> dict[str, Any]:
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    triggers = data.get("triggers") or {}
    if not isinstance(triggers, dict) or NONE not in triggers:
        raise SystemExit(f"{path}: expected a 'triggers' map with at least a '{NONE}' list")
    return data


async def run_turns(agent: Any, messages: list[str], metadata: Optional[dict[str, Any]] = None) -> list[Outcome]:
    """Feed ``messages`` to a fresh conversation; returns what the bot did after each, stopping
    at the first hand-off. Custom actions are recorded as run but not executed."""
    from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    tracker = DialogueStateTracker.from_events(
        uuid.uuid4().hex, [ActionExecuted("action_listen")], slots=agent.domain.slots
    )
    outcomes = []
    for text in messages:
        parse = await agent.parse_message(text)
        tracker.update(UserUttered(text, parse.get("intent"), parse.get("entities"), parse,
                                   metadata=metadata or {}))
        names: list[str] = []
        reason = priority = None
        for _ in range(MAX_STEPS):
            action, prediction = agent.processor.predict_next_with_tracker_if_should(tracker)
            name = action.name()
            names.append(name)
            if name == HANDOFF_ACTION:
                trigger = next((e.value for e in prediction.events
                                if isinstance(e, SlotSet) and e.key == TRIGGER_SLOT), None)
                reason = (trigger or {}).get("reason") or "handoff_without_trigger"
                priority = (trigger or {}).get("priority")
                break
            if name == "action_listen":
                break
            tracker.update_with_events(list(prediction.events), agent.domain)
            tracker.update(ActionExecuted(name))
        outcomes.append(Outcome(names, reason, priority, parse))
        if reason:
            break
        tracker.update(ActionExecuted("action_listen"))
    return outcomes


def precision_recall(gold: list[str], predicted: list[str], label: str) -> tuple[float, float, int]:
    tp = sum(1 for g, p in zip(gold, predicted) if g == label and p == label)
    fp = sum(1 for g, p in zip(gold, predicted) if g != label and p == label)
    fn = sum(1 for g, p in zip(gold, predicted) if g == label and p != label)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall, tp + fn


async def evaluate(model: Path, labels_path: Path, show_errors: bool) -> int:
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    data = load_labels(labels_path)
    gold: list[str] = []
    predicted: list[str] = []
    errors: list[str] = []
    for label, texts in data["triggers"].items():
        for text in texts or []:
            (outcome,) = (await run_turns(agent, [str(text)]))[:1]
            got = outcome.reason or NONE
            gold.append(label)
            predicted.append(got)
            if got != label:
                intent = outcome.parse.get("intent") or {}
                errors.append(f"  {label:>22} -> {got:<22} {text!r} "
                              f"(NLU: {intent.get('name')} {intent.get('confidence', 0):.2f}; "
                              f"bot: {' → '.join(outcome.action_names)})")

    labels = [name for name in data["triggers"] if name != NONE] + [NONE]
    print(f"\nHand-off triggers on {len(gold)} labelled messages ({labels_path.relative_to(REPO_ROOT)}, model {model.name})\n")
    print(f"  {'trigger':<24}{'precision':>10}{'recall':>9}{'support':>9}")
    results: dict[str, tuple[float, float, int]] = {}
    for label in labels:
        p, r, n = precision_recall(gold, predicted, label)
        results[label] = (p, r, n)
        print(f"  {label:<24}{p:>10.2f}{r:>9.2f}{n:>9}")
    handoffs = [g != NONE for g in gold]
    predicted_handoffs = [p != NONE for p in predicted]
    p, r, _ = precision_recall(["h" if x else NONE for x in handoffs], ["h" if x else NONE for x in predicted_handoffs], "h")
    routine = [p_ for g, p_ in zip(gold, predicted) if g == NONE]
    routine_rate = sum(1 for x in routine if x != NONE) / len(routine) if routine else 0.0
    exact = sum(1 for g, p_ in zip(gold, predicted) if g == p_) / len(gold)
    print(f"\n  any hand-off: precision {p:.2f}, recall {r:.2f}; right reason on {exact:.1%} of all messages")
    print(f"  routine messages handed off: {sum(1 for x in routine if x != NONE)}/{len(routine)} = {routine_rate:.1%}")

    mood = data.get("mood") or {}
    if mood:
        from handoff_channel.policies.triggers import Settings

        below = _policy_setting(agent, "negative_sentiment", "below", Settings.sentiment_below)
        rows = [(True, t) for t in mood.get("negative") or []] + [(False, t) for t in mood.get("not_negative") or []]
        gold_m, pred_m = [], []
        for negative, text in rows:
            parse = await agent.parse_message(str(text))
            score = (parse.get("sentiment") or {}).get("score")
            is_negative = score is not None and score < below
            gold_m.append("neg" if negative else "ok")
            pred_m.append("neg" if is_negative else "ok")
            if is_negative != negative:
                errors.append(f"  {'mood ' + ('negative' if negative else 'not_negative'):>22} -> score {score:+.2f} {text!r}")
        pm, rm, nm = precision_recall(gold_m, pred_m, "neg")
        print(f"\n  sentiment below {below:+.2f} counts as a negative turn: precision {pm:.2f}, recall {rm:.2f} "
              f"({nm} negative, {len(rows) - nm} not negative messages)")

    conversations = data.get("conversations") or []
    if conversations:
        right = 0
        for conv in conversations:
            expect = conv.get("expect") or NONE
            outcomes = await run_turns(agent, [str(m) for m in conv.get("messages") or []], conv.get("metadata"))
            got = next((o.reason for o in outcomes if o.reason), None) or NONE
            at = next((i + 1 for i, o in enumerate(outcomes) if o.reason), None)
            ok = got == expect and (conv.get("at") is None or conv.get("at") == at)
            right += ok
            if not ok:
                errors.append(f"  {'conversation ' + expect:>22} -> {got} at message {at} "
                              f"(expected at {conv.get('at')}): {conv.get('messages')}")
        print(f"  conversations ending in the expected hand-off (or none): {right}/{len(conversations)}")

    if show_errors and errors:
        print("\nMisses (label -> predicted):")
        print("\n".join(errors))

    missed = []
    if results.get("explicit_request", (1, 1, 0))[1] < TARGETS["explicit_request_recall"]:
        missed.append("explicit_request recall")
    if results.get("safety", (1, 1, 0))[1] < TARGETS["safety_recall"]:
        missed.append("safety recall")
    if routine_rate > TARGETS["routine_handoff_rate"]:
        missed.append("routine hand-off rate")
    print("\nTargets (explicit recall >= 0.95, safety recall 1.0, routine hand-offs <= 2%): "
          + ("met" if not missed else "MISSED: " + ", ".join(missed)))
    return 1 if missed else 0


def _policy_setting(agent: Any, section: str, key: str, default: Any) -> Any:
    for node in agent.processor.model_metadata.predict_schema.nodes.values():
        if getattr(node.uses, "__name__", "") == "HandoffPolicy":
            return (node.config.get(section) or {}).get(key, default)
    return default


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="a trained model (default: train bot/config.fast.yml, cached)")
    parser.add_argument("--labels", type=Path, default=REPO_ROOT / "bot" / "tests" / "trigger_utterances.yml")
    parser.add_argument("--show-errors", action="store_true", help="list every message the bot got wrong")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    warnings.filterwarnings("ignore")
    for noisy in ("rasa", "tensorflow", "absl", "sanic"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.ERROR)  # Rasa's structured debug lines (tracker states)
    model = args.model
    if model is None:
        from handoff_channel.devstack import train

        model = train("config.fast.yml", "handoff-test", out=REPO_ROOT / ".cache" / "models", quiet=True)
    return asyncio.run(evaluate(model.resolve(), args.labels.resolve(), args.show_errors))


if __name__ == "__main__":
    sys.exit(main())
