"""A sentiment score on every visitor message, as a Rasa NLU component.

Add it to a pipeline (``bot/config.yml``)::

    - name: handoff_channel.nlu.sentiment.SentimentAnalyzer
      negative_below: -0.35      # scores below this are labelled "negative"
      positive_above: 0.35
      lexicon: {useless: -2.0}   # words the shop's visitors use, scored -4 (worst) .. +4

It uses VADER (``vaderSentiment``: a rule-based analyser whose lexicon ships in the wheel, so it
works offline, deterministically, in ~0.1 ms per message) and writes a top-level ``sentiment``
property to the parse result::

    {"score": -0.62, "label": "negative", "analyser": "vader"}

``score`` is VADER's compound score, -1 (most negative) .. +1. Because the property is part of the
parse output it is stored with the message in the tracker (``UserUttered.parse_data``), the handoff
channel passes it to the gateway (agents see it on each visitor message), and
``handoff_channel.policies.HandoffPolicy`` reads it for the "sustained negative sentiment"
trigger. Button payloads (``/intent{...}``) are not words a visitor typed: they score 0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Optional

SENTIMENT = "sentiment"
ANALYSER = "vader"

#: Words and phrases of an online shop's support chat that VADER's general lexicon misses or
#: scores as neutral. Values are VADER valences (-4 .. +4). A bot's config may add or override.
SHOP_LEXICON: Mapping[str, float] = {
    "useless": -2.0,
    "pointless": -1.8,
    "ridiculous": -2.0,
    "unacceptable": -2.4,
    "joke": -2.0,  # "this is a joke" (VADER scores it +1.0)
    "scam": -2.8,
    "scammed": -2.8,
    "ripoff": -2.5,
    "rip-off": -2.5,
    "fed": -2.0,  # "fed up"
    "furious": -3.0,
    "livid": -3.0,
    "disgusted": -2.8,
    "incompetent": -2.5,
    "clueless": -1.8,
    "worst": -3.1,
    "shambles": -2.4,
    "fuming": -2.6,
    "nightmare": -2.4,
    "pathetic": -2.6,
}

SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")

DEFAULTS: dict[str, Any] = {"negative_below": -0.35, "positive_above": 0.35, "lexicon": {}}


@lru_cache(maxsize=8)
def _analyser(lexicon: tuple[tuple[str, float], ...]) -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyser = SentimentIntensityAnalyzer()
    analyser.lexicon.update(dict(lexicon))
    return analyser


def _lexicon_key(extra: Optional[Mapping[str, Any]]) -> tuple[tuple[str, float], ...]:
    merged = dict(SHOP_LEXICON)
    for word, valence in (extra or {}).items():
        merged[str(word).lower()] = float(valence)
    return tuple(sorted(merged.items()))


def score_text(
    text: str,
    *,
    lexicon: Optional[Mapping[str, Any]] = None,
    negative_below: float = DEFAULTS["negative_below"],
    positive_above: float = DEFAULTS["positive_above"],
) -> dict[str, Any]:
    """The ``sentiment`` property for one message (see the module docstring)."""
    text = (text or "").strip()
    score = 0.0
    if text and not text.startswith("/"):
        analyser = _analyser(_lexicon_key(lexicon))
        # Sentence by sentence: VADER's negation looks three words back, across full stops, so
        # "Still nothing. Useless!" would read "nothing useless" as not negative. One negative
        # sentence makes the message negative; otherwise the whole text's score counts.
        sentences = [s for s in SENTENCE_END.split(text) if s.strip()]
        scores = [float(analyser.polarity_scores(s)["compound"]) for s in sentences]
        lowest = min(scores, default=0.0)
        score = lowest if lowest < 0 else float(analyser.polarity_scores(text)["compound"])
    label = "negative" if score < negative_below else "positive" if score > positive_above else "neutral"
    return {"score": round(score, 3), "label": label, "analyser": ANALYSER}


try:  # The component needs Rasa; score_text above does not (the policy and tests use it).
    from rasa.engine.graph import ExecutionContext, GraphComponent
    from rasa.engine.recipes.default_recipe import DefaultV1Recipe
    from rasa.engine.storage.resource import Resource
    from rasa.engine.storage.storage import ModelStorage
    from rasa.shared.nlu.constants import TEXT
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData
except ModuleNotFoundError:  # pragma: no cover - Rasa is not installed where only score_text is used
    pass
else:

    @DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
    class SentimentAnalyzer(GraphComponent):
        """Scores every message's sentiment (VADER) into a top-level ``sentiment`` property.

        Registered as a non-trainable extractor: it runs only at inference, so it adds nothing
        to training time, and changing its parameters needs no retraining of the other
        components.
        """

        @staticmethod
        def get_default_config() -> dict[str, Any]:
            return dict(DEFAULTS)

        @staticmethod
        def required_packages() -> list[str]:
            return ["vaderSentiment"]

        def __init__(self, config: dict[str, Any]) -> None:
            self.negative_below = float(config.get("negative_below", DEFAULTS["negative_below"]))
            self.positive_above = float(config.get("positive_above", DEFAULTS["positive_above"]))
            self.lexicon = dict(config.get("lexicon") or {})
            if self.negative_below > self.positive_above:
                raise ValueError(
                    "SentimentAnalyzer: negative_below must not be greater than positive_above "
                    f"(got {self.negative_below} > {self.positive_above})."
                )
            _analyser(_lexicon_key(self.lexicon))  # load the lexicon now, not on the first message

        @classmethod
        def create(
            cls,
            config: dict[str, Any],
            model_storage: ModelStorage,
            resource: Resource,
            execution_context: ExecutionContext,
        ) -> "SentimentAnalyzer":
            return cls(config)

        def process(self, messages: list[Message]) -> list[Message]:
            for message in messages:
                message.set(
                    SENTIMENT,
                    score_text(
                        message.get(TEXT) or "",
                        lexicon=self.lexicon,
                        negative_below=self.negative_below,
                        positive_above=self.positive_above,
                    ),
                    add_to_output=True,
                )
            return messages

        def process_training_data(self, training_data: TrainingData) -> TrainingData:
            return training_data
