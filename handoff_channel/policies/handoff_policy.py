"""``HandoffPolicy``: the Rasa policy that decides when the bot steps aside, with designer-set
parameters in ``config.yml``.

    policies:
      - name: handoff_channel.policies.HandoffPolicy
        explicit_request: {intents: [request_human], priority: 2}
        repeated_failure: {offer_after: 2, handoff_after: 3, offer_response: utter_offer_human, priority: 3}
        negative_sentiment: {below: -0.4, turns: 2, priority: 3}
        topics:
          billing_dispute: {reason: billing_dispute, priority: 3, team: billing}
          safety_concern: {reason: safety, priority: 4, team: safety, say: utter_crisis_resources,
                           min_confidence: 0.2, patterns: ['\\bkill myself\\b']}
        vip: {field: tier, values: [vip], raise_by: 1, max_priority: 3}

When a trigger fires (see ``handoff_channel.policies.triggers``) the policy predicts, with
confidence 1, either the topic's response (e.g. crisis resources) and then ``action_handoff``, or
the offer of a person. When nobody is there (``offline: {form, why_slot}``) it predicts the form
right after the action that chose it, and stays quiet while the form runs (urgent topics aside). With ``action_handoff`` it sets the slot ``handoff_trigger`` to
``{reason, priority, team, evidence}``; Rasa applies a winning policy's events before it runs the
action, so ``action_handoff`` reads them from the slot. Otherwise it predicts nothing and the other
policies (rules, memoization, TED) answer as usual.

Its predictions are marked ``is_no_user_prediction`` so that they win over a form's "happy path"
too: a visitor who writes "someone hacked my account" while the order form waits for a number is
handed off, not asked for the number again. Its default priority (7) is above RulePolicy's (6).

Training only checks the parameters against the domain, so a misspelt intent or response stops
``rasa train`` with a plain message instead of a trigger that silently never fires.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

from rasa.core.policies.policy import Policy, PolicyPrediction
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, Event, SlotSet
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import InvalidConfigException

from . import triggers

log = logging.getLogger(__name__)

TRIGGER_SLOT = "handoff_trigger"
DEFAULT_PRIORITY = 7  # RulePolicy is 6: a trigger beats a rule that would answer instead


def _score(text: str) -> float:
    from handoff_channel.nlu.sentiment import score_text

    return float(score_text(text)["score"])


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True)
class HandoffPolicy(Policy):
    """Hands the conversation to a person when a designer-configured trigger fires."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "priority": DEFAULT_PRIORITY,
            "explicit_request": {},
            "repeated_failure": {},
            "negative_sentiment": {},
            "topics": {},
            "vip": {},
        }

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        featurizer: Any = None,
    ) -> None:
        super().__init__(config, model_storage, resource, execution_context, featurizer)
        try:
            self.settings = triggers.settings_from_config(config)
        except triggers.SettingsError as error:
            raise InvalidConfigException(f"HandoffPolicy in config.yml: {error}") from None

    # -- training: nothing to learn, but check the parameters against the domain ----------------

    def train(self, training_trackers: List[TrackerWithCachedStates], domain: Domain, **kwargs: Any) -> Resource:
        problems = check_against_domain(self.settings, domain)
        if problems:
            raise InvalidConfigException(
                "HandoffPolicy in config.yml refers to names the domain does not have:\n  - "
                + "\n  - ".join(problems)
            )
        with self._model_storage.write_to(self._resource) as path:
            (path / "handoff_policy.txt").write_text("HandoffPolicy has no learned state; see config.yml.\n")
        return self._resource

    # -- prediction ------------------------------------------------------------------------------

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: Optional[Dict[Text, Any]] = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        probabilities = self._default_predictions(domain)
        decision = self.decide(tracker)
        index = domain.index_for_action(decision.action) if decision.action else None
        if index is None:
            return self._prediction(probabilities)
        probabilities[index] = 1.0
        events: List[Event] = []
        if decision.trigger is not None:
            events.append(SlotSet(TRIGGER_SLOT, decision.trigger))
        return self._prediction(
            probabilities,
            events=events,
            is_no_user_prediction=True,
            diagnostic_data={"handoff_trigger": decision.trigger} if decision.trigger else None,
        )

    def decide(self, tracker: DialogueStateTracker) -> triggers.Decision:
        events = [event.as_dict() for event in recent_events(tracker)]
        slots = {name: slot.value for name, slot in tracker.slots.items()}
        return triggers.decide(events, self.settings, slots, score=_score)


def recent_events(tracker: DialogueStateTracker) -> List[Event]:
    """The applied events since the last restart, session start or hand-back: all the triggers
    look at (plus the event that starts the stretch, so boundaries stay visible)."""
    events: List[Event] = list(tracker.applied_events())
    for index in range(len(events) - 1, -1, -1):
        event = events[index]
        if event.type_name in triggers.BOUNDARY_EVENTS or (
            isinstance(event, ActionExecuted) and event.action_name == triggers.HANDBACK_ACTION
        ):
            return events[index:]
    return events


def check_against_domain(settings: triggers.Settings, domain: Domain) -> List[str]:
    """Names in the settings that the domain lacks, as sentences a designer can act on."""
    intents = set(domain.intents) | {settings.fallback_intent}
    actions = set(domain.action_names_or_texts)
    problems = []
    for intent in settings.explicit_intents:
        if intent not in intents:
            problems.append(f"explicit_request.intents: '{intent}' is not an intent in domain.yml")
    for intent in settings.accept_intents:
        if intent not in intents:
            problems.append(f"accept_intents: '{intent}' is not an intent in domain.yml")
    for intent in settings.failure_intents:
        if intent not in intents:
            problems.append(f"repeated_failure.failure_intents: '{intent}' is not an intent in domain.yml")
    for intent in settings.neutral_intents:
        if intent not in intents:
            problems.append(f"repeated_failure.neutral_intents: '{intent}' is not an intent in domain.yml")
    for action in settings.failure_actions + settings.neutral_actions:
        if action not in actions:
            problems.append(f"repeated_failure: '{action}' is not a response or action in domain.yml")
    for response in settings.offers:
        if response not in actions:
            problems.append(f"offers: '{response}' is not a response or action in domain.yml")
    if settings.offer_response and settings.offer_response not in actions:
        problems.append(f"repeated_failure.offer_response: '{settings.offer_response}' is not a response in domain.yml")
    for topic in settings.topics:
        if topic.intent not in intents:
            problems.append(f"topics: '{topic.intent}' is not an intent in domain.yml")
        if topic.say and topic.say not in actions:
            problems.append(f"topics.{topic.intent}.say: '{topic.say}' is not a response in domain.yml")
    if settings.offline_form and settings.offline_form not in domain.form_names:
        problems.append(f"offline.form: '{settings.offline_form}' is not a form in domain.yml")
    if settings.offline_why_slot and settings.offline_why_slot not in {slot.name for slot in domain.slots}:
        problems.append(f"offline.why_slot: '{settings.offline_why_slot}' is not a slot in domain.yml")
    if triggers.HANDOFF_ACTION not in actions:
        problems.append(f"the action '{triggers.HANDOFF_ACTION}' is not listed in domain.yml")
    if TRIGGER_SLOT not in {slot.name for slot in domain.slots}:
        problems.append(f"domain.yml needs a slot '{TRIGGER_SLOT}' (type any, influence_conversation false, "
                        "mappings [type: custom]) to pass the trigger to action_handoff")
    return problems
