"""``BatchDIETClassifier``: Rasa's DIETClassifier, trained the same way, that classifies the
messages of one NLU run in a single TensorFlow call instead of one call per message.

Rasa hands NLU one message per turn, so bot turns see no difference. The handoff channel records
a claimed conversation's lines in batches (``/webhooks/handoff/log``) and parses the visitor lines
of a batch in one NLU run; there the stock classifier still predicts message by message, and its
per-call cost (building the model data, TensorFlow's function dispatch) is most of what Rasa
spends on a line. Predicting them together gives each message the same scores (within float
rounding; ``tests/e2e/test_nlu_batch.py`` checks it against the stock path) for about a third
of the CPU at ten lines (``python -m bench.nlu_cost``).

Use it in place of ``DIETClassifier`` in ``config.yml`` (same options), and retrain::

    - name: handoff_channel.nlu.batch_diet.BatchDIETClassifier
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

# More lines than this go through TensorFlow in several calls (padding to the longest line of a
# call costs memory, and the channel's batches are at most 20 lines anyway).
MAX_BATCH = 64

try:  # Importing the package must not need Rasa (see handoff_channel/nlu/__init__.py).
    import numpy as np
    from rasa.engine.recipes.default_recipe import DefaultV1Recipe
    from rasa.nlu.classifiers.diet_classifier import DIETClassifier
    from rasa.shared.nlu.training_data.message import Message
except ModuleNotFoundError:  # pragma: no cover - Rasa is not installed where this is not used
    pass
else:

    def _row(value: Any, i: int) -> Any:
        """Example ``i`` of a batch's output, shaped as a batch of one (what DIET's per-message
        helpers read)."""
        if isinstance(value, dict):
            return {key: _row(v, i) for key, v in value.items()}
        if isinstance(value, np.ndarray) and value.ndim:
            return value[i : i + 1]
        return value

    @DefaultV1Recipe.register(
        [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR],
        is_trainable=True,
    )
    class BatchDIETClassifier(DIETClassifier):
        """DIETClassifier whose ``process`` predicts a list of messages together.

        Only the prediction is batched: what DIET then does with each message's output (intent,
        ranking, entities) is the stock code, fed the message's slice of the batch. Anything the
        batch cannot serve (diagnostic data, an example that produced no model data, an error)
        goes the stock way, one message at a time.
        """

        _ready: dict[int, Any] = {}

        def process(self, messages: list[Message]) -> list[Message]:
            if len(messages) > 1 and self.model is not None and not self._execution_context.should_add_diagnostic_data:
                ready: dict[int, Any] = {}
                for start in range(0, len(messages), MAX_BATCH):
                    ready.update(self._predict_together(messages[start : start + MAX_BATCH]))
                self._ready = ready
            try:
                done: list[Message] = super().process(messages)
                return done
            finally:
                self._ready = {}

        def _predict(self, message: Message) -> Any:
            out = self._ready.get(id(message))
            return out if out is not None else super()._predict(message)

        def _predict_together(self, messages: list[Message]) -> dict[int, Any]:
            try:
                model_data = self._create_model_data(messages, training=False)
                if model_data.is_empty() or model_data.number_of_examples() != len(messages):
                    return {}
                out = self.model.run_inference(model_data, batch_size=len(messages))
            except Exception:  # noqa: BLE001 - the stock path is always there to fall back to
                log.exception("batched DIET prediction failed; predicting one message at a time")
                return {}
            scores = out.get("i_scores")
            if isinstance(scores, np.ndarray) and scores.shape[0] != len(messages):
                return {}
            return {id(message): _row(out, i) for i, message in enumerate(messages)}
