"""When the bot hands off, and why: HandoffPolicy's triggers (handoff_channel.policies.triggers)
with the parameters of the real bot/config.yml, the policy class inside Rasa's own tracker, its
checks of config.yml, and the sentiment component."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Optional

import pytest
import yaml

from handoff_channel.nlu.sentiment import score_text
from handoff_channel.policies.triggers import Settings, SettingsError, decide, settings_from_config

BOT_DIR = Path(__file__).resolve().parents[2] / "bot"


def policy_config(path: Path = BOT_DIR / "config.yml") -> dict[str, Any]:
    (config,) = [p for p in yaml.safe_load(path.read_text())["policies"] if p["name"].endswith("HandoffPolicy")]
    return {k: v for k, v in config.items() if k != "name"}


SETTINGS = settings_from_config(policy_config())


def score(text: str) -> float:
    return float(score_text(text)["score"])


# --- event builders (the shape Event.as_dict() gives the policy) ---------------------------------


def user(text: str, intent: str = "order_status", confidence: float = 0.95, *, sentiment: Optional[float] = 0.0,
         ranking: Optional[list[tuple[str, float]]] = None, metadata: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    parse: dict[str, Any] = {
        "intent": {"name": intent, "confidence": confidence},
        "intent_ranking": [{"name": n, "confidence": c} for n, c in (ranking or [(intent, confidence)])],
        "entities": [],
        "text": text,
    }
    if sentiment is not None:
        parse["sentiment"] = {"score": sentiment, "label": "negative" if sentiment < -0.4 else "neutral"}
    return {"event": "user", "text": text, "parse_data": parse, "metadata": metadata or {}}


def fallback(text: str = "blorp fnarg", best: str = "greet", best_confidence: float = 0.3) -> dict[str, Any]:
    return user(text, "nlu_fallback", 0.4, ranking=[("nlu_fallback", 0.4), (best, best_confidence)])


def said(*actions: str) -> list[dict[str, Any]]:
    """The bot's actions for a turn, then listening."""
    return [{"event": "action", "name": a} for a in actions] + [{"event": "action", "name": "action_listen"}]


START = [{"event": "action", "name": "action_session_start"}, {"event": "session_started"},
         {"event": "action", "name": "action_listen"}]


def trigger(events: list[dict[str, Any]], slots: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    decision = decide(events, SETTINGS, slots, score=score)
    assert decision.action == "action_handoff", decision
    assert decision.trigger is not None
    return decision.trigger


# --- explicit request ------------------------------------------------------------------------------


def test_asking_for_a_person_hands_off_at_once() -> None:
    t = trigger(START + [user("can I talk to a human", "request_human", 0.98)])

    assert (t["reason"], t["priority"], t["team"]) == ("explicit_request", 2, None)
    assert t["evidence"]["triggers"] == ["explicit_request"]
    assert t["evidence"]["clicked"] is False and t["evidence"]["confidence"] == 0.98


def test_the_button_is_an_explicit_request() -> None:
    t = trigger(START + [user("/request_human", "request_human", 1.0, sentiment=None)])
    assert t["reason"] == "explicit_request" and t["evidence"]["clicked"] is True


def test_an_unsure_request_for_a_person_still_counts_from_the_configured_confidence() -> None:
    unsure = user("tlak 2 sum1", "nlu_fallback", 0.4, ranking=[("nlu_fallback", 0.4), ("request_human", 0.35)])
    too_unsure = user("tlak 2 sum1", "nlu_fallback", 0.4, ranking=[("nlu_fallback", 0.4), ("request_human", 0.2)])

    assert trigger(START + [unsure])["reason"] == "explicit_request"
    assert decide(START + [too_unsure], SETTINGS).action is None


def test_yes_after_the_bot_says_it_is_a_bot_is_a_request() -> None:
    events = START + [user("are you a bot?", "bot_challenge")] + said("utter_iamabot") + [user("yes", "affirm")]
    t = trigger(events)
    assert t["reason"] == "explicit_request" and t["evidence"]["accepted_offer"] == "utter_iamabot"


def test_yes_out_of_context_is_not_a_request() -> None:
    events = START + [user("where is my order", "order_status")] + said("action_order_status") + [user("yes", "affirm")]
    assert decide(events, SETTINGS).action is None


# --- repeated failure ------------------------------------------------------------------------------


def test_misses_are_rephrased_then_offered_then_handed_off() -> None:
    one = START + [fallback()]
    two = one + said("utter_default") + [fallback()]
    three = two + said("utter_offer_human") + [fallback()]

    assert decide(one, SETTINGS).action is None  # the rule asks to rephrase
    assert decide(two, SETTINGS).action == "utter_offer_human"
    t = trigger(three)
    assert (t["reason"], t["priority"]) == ("repeated_failure", 3)
    assert t["evidence"]["consecutive_failures"] == 3


def test_out_of_scope_answers_count_as_misses() -> None:
    events = START + [user("qqqq wwww", "out_of_scope")] + said("utter_out_of_scope") + [user("zxcv", "out_of_scope")]
    assert decide(events, SETTINGS).action == "utter_offer_human"


def test_accepting_the_offer_hands_off_as_repeated_failure() -> None:
    events = (START + [fallback()] + said("utter_default") + [fallback()] + said("utter_offer_human")
              + [user("/affirm", "affirm", 1.0, sentiment=None)])
    t = trigger(events)
    assert t["reason"] == "repeated_failure"
    assert t["evidence"]["accepted_offer"] == "utter_offer_human" and t["evidence"]["consecutive_failures"] == 2


def test_declining_the_offer_neither_counts_nor_resets_the_streak() -> None:
    declined = (START + [fallback()] + said("utter_default") + [fallback()] + said("utter_offer_human")
                + [user("no", "deny")])
    assert decide(declined, SETTINGS).action is None  # the rule says "let's keep trying"
    assert trigger(declined + said("utter_keep_trying") + [fallback()])["reason"] == "repeated_failure"


def test_an_answered_question_ends_the_streak() -> None:
    events = (START + [fallback()] + said("utter_default") + [user("opening hours?", "opening_hours")]
              + said("utter_opening_hours") + [fallback()])
    assert decide(events, SETTINGS).action is None


# --- sustained negative sentiment ---------------------------------------------------------------------


def test_two_negative_messages_in_a_row_hand_off() -> None:
    events = (START + [user("where is order 48213", sentiment=0.0)] + said("action_order_status")
              + [user("this is ridiculous", sentiment=-0.46)] + said("action_order_status")
              + [user("unacceptable, I'm furious", sentiment=-0.84)])
    t = trigger(events)
    assert (t["reason"], t["priority"]) == ("negative_sentiment", 3)
    assert t["evidence"]["sentiment_trend"] == [0.0, -0.46, -0.84]
    assert (t["evidence"]["below"], t["evidence"]["turns"]) == (-0.4, 2)


def test_one_negative_message_or_a_calm_one_between_does_not() -> None:
    one = START + [user("this is ridiculous", sentiment=-0.46)]
    calm_between = (one + said("action_order_status") + [user("ok thanks", "thank", sentiment=0.4)]
                    + said("utter_you_are_welcome") + [user("awful", sentiment=-0.5)])
    just_above = one + said("action_order_status") + [user("meh", sentiment=-0.39)]

    for events in (one, calm_between, just_above):
        assert decide(events, SETTINGS).action is None


def test_messages_without_a_score_are_scored_with_the_same_analyser() -> None:
    # `rasa test` stories carry the story's intent, not NLU's output.
    events = (START + [user("I'm so frustrated, where is my package", sentiment=None)] + said("action_order_status")
              + [user("I'm really upset, my order is late again", sentiment=None)])
    assert trigger(events)["reason"] == "negative_sentiment"


def test_a_button_click_breaks_a_negative_streak() -> None:
    events = (START + [user("this is awful", sentiment=-0.5)] + said("utter_default")
              + [user("/deny", "deny", 1.0, sentiment=None)] + said("utter_no_problem")
              + [user("terrible", sentiment=-0.5)])
    assert decide(events, SETTINGS, score=score).action is None


# --- sensitive topics -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("intent", "reason", "priority", "team"),
    [
        ("billing_dispute", "billing_dispute", 3, "billing"),
        ("refund_exception", "refund_outside_policy", 2, "returns"),
        ("legal_threat", "legal_threat", 3, "legal"),
        ("account_hacked", "account_compromised", 3, "security"),
        ("custom_pricing", "sales_custom_pricing", 2, "sales"),
    ],
)
def test_each_topic_maps_to_its_reason_priority_and_team(intent: str, reason: str, priority: int, team: str) -> None:
    t = trigger(START + [user("some words", intent, 0.9)])
    assert (t["reason"], t["priority"], t["team"]) == (reason, priority, team)
    assert t["evidence"]["topic"] == intent


def test_safety_says_the_crisis_resources_first_then_hands_off() -> None:
    events = START + [user("I don't want to live anymore", "safety_concern", 0.93, sentiment=-0.1)]

    assert decide(events, SETTINGS).action == "utter_crisis_resources"
    t = trigger(events + [{"event": "action", "name": "utter_crisis_resources"}])
    assert (t["reason"], t["priority"], t["team"]) == ("safety", 4, "safety")
    after = events + [{"event": "action", "name": "utter_crisis_resources"}, {"event": "action", "name": "action_handoff"}]
    assert decide(after, SETTINGS).action == "action_listen"


@pytest.mark.parametrize("text", [
    "i want to kill myself", "I've been thinking about suicide", "I don't want to live anymore",
    "I'd be better off dead", "thinking of ending it all", "my boyfriend hits me",
    "my son swallowed a button battery", "she drank some bleach from the bottle", "he is not breathing",
])
def test_safety_patterns_fire_whatever_nlu_thought(text: str) -> None:
    events = START + [user(text, "order_status", 0.9)]
    assert decide(events, SETTINGS).action == "utter_crisis_resources"
    t = trigger(events + [{"event": "action", "name": "utter_crisis_resources"}])
    assert t["reason"] == "safety" and t["evidence"]["matched"]


@pytest.mark.parametrize("text", [
    "my order is killing me with waiting", "the price is insane", "I'm dying to get my shoes",
    "beats me why it's late", "I could kill for free shipping", "this jacket is to die for",
    "these prices are choking my budget", "I ate the whole cake while waiting for the parcel",
])
def test_hard_negatives_do_not_match_the_safety_patterns(text: str) -> None:
    assert decide(START + [user(text, "order_status", 0.9)], SETTINGS).action is None


def test_safety_ranked_behind_another_intent_still_counts() -> None:
    ranked = user("he hurts me and I need help", "request_human", 0.6,
                  ranking=[("request_human", 0.6), ("safety_concern", 0.3)])
    barely = user("some words", "order_status", 0.8, ranking=[("order_status", 0.8), ("safety_concern", 0.1)])

    assert decide(START + [ranked], SETTINGS).action == "utter_crisis_resources"
    assert decide(START + [barely], SETTINGS).action is None


def test_other_topics_need_nlu_to_decide_on_them() -> None:
    unsure = user("charge?", "nlu_fallback", 0.4, ranking=[("nlu_fallback", 0.4), ("billing_dispute", 0.38)])
    assert decide(START + [unsure], SETTINGS).action is None


# --- several triggers, priorities, VIP ----------------------------------------------------------------------


def test_the_most_specific_trigger_gives_the_reason_and_the_highest_priority_wins() -> None:
    events = (START + [user("this is awful", sentiment=-0.6)] + said("action_order_status")
              + [user("useless bot, get me a human", "request_human", 0.97, sentiment=-0.5)])
    t = trigger(events)
    assert t["reason"] == "explicit_request"
    assert t["priority"] == 3  # negative sentiment's
    assert t["evidence"]["triggers"] == ["explicit_request", "negative_sentiment"]


def test_safety_beats_a_request_for_a_person() -> None:
    events = START + [user("I want to kill myself, get me a person", "request_human", 0.8)]
    t = trigger(events + [{"event": "action", "name": "utter_crisis_resources"}])
    assert t["reason"] == "safety" and t["evidence"]["triggers"] == ["safety", "explicit_request"]


VIP = {"customData": {"language": "en", "tier": "vip"}}
RAISING = dataclasses.replace(SETTINGS, vip_raise_by=1)  # the gateway raises VIPs; the bot can too


def test_the_tier_from_the_page_is_evidence_and_the_bot_leaves_raising_to_the_gateway() -> None:
    t = trigger(START + [user("human please", "request_human", metadata=VIP)])
    assert t["priority"] == 2 and t["evidence"]["customer_tier"] == "vip"
    assert "priority_raised_from" not in t["evidence"]


def test_a_bot_that_raises_vips_stops_at_the_ceiling() -> None:
    def raised(events: list[dict[str, Any]], slots: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        decision = decide(events, RAISING, slots)
        assert decision.trigger is not None
        return decision.trigger

    request = raised(START + [user("human please", "request_human", metadata=VIP)])
    billing = raised(START + [user("charged twice", "billing_dispute", metadata=VIP)])
    safety = raised(START + [user("I want to die", "safety_concern", metadata=VIP),
                             {"event": "action", "name": "utter_crisis_resources"}])

    assert (request["priority"], request["evidence"]["priority_raised_from"]) == (3, 2)
    assert billing["priority"] == 3 and "priority_raised_from" not in billing["evidence"]
    assert safety["priority"] == 4


def test_the_tier_can_come_from_the_session_start_or_a_slot_and_other_tiers_do_not_raise() -> None:
    events = START + [user("human please", "request_human")]
    from_session = decide(events, RAISING, {"session_started_metadata": VIP}).trigger
    from_slot = decide(events, RAISING, {"customer_tier": "VIP"}).trigger
    gold = decide(START + [user("human please", "request_human", metadata={"customData": {"tier": "gold"}})],
                  RAISING).trigger

    assert from_session and from_session["priority"] == 3
    assert from_slot and from_slot["priority"] == 3
    assert gold and gold["priority"] == 2 and gold["evidence"]["customer_tier"] == "gold"


# --- what the triggers look at ------------------------------------------------------------------------------


def test_a_handback_starts_a_clean_slate() -> None:
    angry = START + [user("awful", sentiment=-0.7)] + said("utter_default")
    handback = [
        {"event": "user", "text": "get me a person", "parse_data": {"intent": {"name": "request_human"}}},
        {"event": "action", "name": "action_handoff"}, {"event": "pause"}, {"event": "action", "name": "action_listen"},
        user("hello??", "greet", sentiment=-0.8, metadata={"handoff": "human_stretch"}),
        {"event": "resume"}, {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "EXTERNAL: handoff_done", "metadata": {"is_external": True},
         "parse_data": {"intent": {"name": "handoff_done"}}},
    ]
    assert decide(angry + handback, SETTINGS).action is None  # the external intent: the rule's turn
    after = angry + handback + said("action_handback") + [user("terrible", sentiment=-0.6)]
    assert decide(after, SETTINGS).action is None  # one negative message since the hand-back


def test_nothing_is_predicted_while_paused_or_without_a_visitor_message() -> None:
    assert decide(START, SETTINGS).action is None
    paused = START + [user("human", "request_human")] + [{"event": "action", "name": "action_handoff"}, {"event": "pause"}]
    assert decide(paused, SETTINGS).action is None


def test_after_a_handoff_or_an_offer_the_policy_listens() -> None:
    handed = START + [user("human", "request_human"), {"event": "action", "name": "action_handoff"}]
    offered = START + [fallback()] + said("utter_default") + [fallback(), {"event": "action", "name": "utter_offer_human"}]
    assert decide(handed, SETTINGS).action == "action_listen"
    assert decide(offered, SETTINGS).action == "action_listen"


def test_another_action_already_answering_the_message_is_left_alone() -> None:
    events = START + [user("charged twice", "billing_dispute"), {"event": "action", "name": "utter_default"}]
    assert decide(events, SETTINGS).action is None


# --- nobody there: the visitor leaves a message (offline_ticket_form) ----------------------------------------


def slot(name: str, value: Any) -> dict[str, Any]:
    return {"event": "slot", "name": name, "value": value}


def form_starts(why: str = "no_agents") -> list[dict[str, Any]]:
    """action_handoff found nobody there: it set ticket_why, the form asked for the email."""
    return [{"event": "action", "name": "action_handoff"}, slot("handoff_trigger", None), slot("ticket_why", why),
            {"event": "action", "name": "offline_ticket_form"}, {"event": "active_loop", "name": "offline_ticket_form"},
            slot("requested_slot", "ticket_email"), {"event": "action", "name": "action_listen"}]


def test_when_nobody_is_there_the_message_form_follows_the_handoff() -> None:
    asked = START + [user("human", "request_human"), {"event": "action", "name": "action_handoff"}]
    nobody = asked + [slot("handoff_trigger", None), slot("ticket_why", "closed")]
    somebody = asked + [slot("ticket_why", None)]

    assert decide(nobody, SETTINGS).action == "offline_ticket_form"
    assert decide(somebody, SETTINGS).action == "action_listen"
    started = nobody + [{"event": "action", "name": "offline_ticket_form"}, {"event": "active_loop", "name": "offline_ticket_form"}]
    assert decide(started, SETTINGS).action is None  # the form's own rule listens


def test_leaving_a_message_after_a_long_wait_starts_the_form_after_the_handback() -> None:
    handback = START + [user("human", "request_human"), {"event": "action", "name": "action_handoff"}, {"event": "pause"},
                        {"event": "action", "name": "action_listen"}, {"event": "resume"},
                        {"event": "action", "name": "action_listen"},
                        {"event": "user", "text": "EXTERNAL: handoff_done", "metadata": {"is_external": True},
                         "parse_data": {"intent": {"name": "handoff_done"}}},
                        {"event": "action", "name": "action_handback"}]
    assert decide(handback + [slot("handoff_outcome", "leave_message"), slot("ticket_why", "unclaimed")],
                  SETTINGS).action == "offline_ticket_form"
    assert decide(handback + [slot("handoff_outcome", "resolved")], SETTINGS).action is None


def test_an_email_address_or_a_request_while_leaving_a_message_is_not_a_miss() -> None:
    missed_twice = START + [fallback()] + said("utter_default") + [fallback()] + said("utter_offer_human")
    in_form = missed_twice + [user("get me a person", "request_human")] + form_starts()
    email = in_form + [fallback("jane@example.com")]
    assert decide(email, SETTINGS).action is None  # not a third miss: the form takes it

    again = email + said("offline_ticket_form") + [user("I want a person", "request_human")]
    assert decide(again, SETTINGS).action is None  # the form takes it as the issue

    upset = (in_form + [user("this is awful", "nlu_fallback", sentiment=-0.8)] + said("offline_ticket_form")
             + [user("terrible, useless shop", "nlu_fallback", sentiment=-0.9)])
    assert decide(upset, SETTINGS).action is None

    done = (email + said("offline_ticket_form") + [user("parcel missing", "order_status", sentiment=-0.6)]
            + [{"event": "action", "name": "offline_ticket_form"}, {"event": "active_loop", "name": None}]
            + said("action_submit_ticket"))
    assert decide(done + [fallback()], SETTINGS).action is None  # a fresh streak: one miss
    assert decide(done + [user("awful", sentiment=-0.7)], SETTINGS).action is None  # one mood, not two
    assert decide(done + [fallback()] + said("utter_default") + [fallback()], SETTINGS).action == "utter_offer_human"


def test_safety_still_interrupts_leaving_a_message() -> None:
    events = START + [user("get me a person", "request_human")] + form_starts() + [
        user("I don't want to live anymore", "nlu_fallback", 0.4, ranking=[("nlu_fallback", 0.4), ("deny", 0.3)])]
    assert decide(events, SETTINGS).action == "utter_crisis_resources"
    t = trigger(events + said("utter_crisis_resources")[:-1])
    assert (t["reason"], t["priority"]) == ("safety", 4)

    billing = START + [user("get me a person", "request_human")] + form_starts() + [user("charged twice", "billing_dispute")]
    assert decide(billing, SETTINGS).action is None  # not urgent: it is the visitor's message for the team


def test_queue_choices_neither_count_as_misses_nor_end_a_streak() -> None:
    choice = START + [fallback()] + said("utter_default") + [user("never mind", "handoff_cancel")] + said("utter_no_problem")
    small_talk = START + [fallback()] + said("utter_default") + [user("hi", "greet")] + said("utter_greet")

    assert decide(choice, SETTINGS).action is None
    assert decide(choice + [fallback()], SETTINGS).action == "utter_offer_human"  # the second miss in a row
    assert decide(small_talk + [fallback()], SETTINGS).action is None  # an answered message ends it


# --- settings: the designer's config.yml ------------------------------------------------------------------------


def test_the_fast_config_has_the_same_triggers_as_production() -> None:
    assert settings_from_config(policy_config(BOT_DIR / "config.fast.yml")) == SETTINGS


def test_defaults_work_without_any_parameter() -> None:
    settings = settings_from_config({})
    assert settings == Settings() and settings.handoff_after == 3


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"explicit_request": {"priority": 5}}, "explicit_request: priority must be a whole number 1..4"),
        ({"repeated_failure": {"offer_after": 3, "handoff_after": 2}}, "handoff_after (2) must not be smaller"),
        ({"negative_sentiment": {"below": -2}}, "below must be a number from -1.0 to 1.0"),
        ({"negative_sentiment": {"turns": 0}}, "turns must be a whole number >= 1"),
        ({"topics": {"billing_dispute": {"priority": 3}}}, "topics.billing_dispute: needs a reason"),
        ({"topics": {"safety": {"reason": "safety", "patterns": ["(unclosed"]}}}, "is not a valid regular expression"),
        ({"topics": {"x": "billing"}}, "expected a map"),
        ({"offers": ["utter_iamabot"]}, "offers: expected a map"),
        ({"offline": {"form": "offline_ticket_form", "urgent_priority": 5}}, "offline: urgent_priority must be a whole number 1..4"),
    ],
)
def test_impossible_settings_are_explained(config: dict[str, Any], words: str) -> None:
    with pytest.raises(SettingsError, match=None) as error:
        settings_from_config(config)
    assert words in str(error.value)


# --- the Rasa policy and component ------------------------------------------------------------------------------


def test_policy_predicts_the_handoff_and_hands_the_trigger_to_the_action(tmp_path: Path) -> None:
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, ActiveLoop, SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from handoff_channel.policies.handoff_policy import HandoffPolicy, check_against_domain

    domain = Domain.load(str(BOT_DIR / "domain.yml"))
    assert check_against_domain(SETTINGS, domain) == []
    config = {**HandoffPolicy.get_default_config(), **policy_config()}
    policy = HandoffPolicy.create(config, LocalModelStorage(tmp_path), Resource("handoff"),
                                  ExecutionContext(GraphSchema({}), "test"))
    parse = {"intent": {"name": "billing_dispute", "confidence": 0.97},
             "intent_ranking": [{"name": "billing_dispute", "confidence": 0.97}], "entities": [],
             "sentiment": {"score": -0.3, "label": "neutral"}}
    tracker = DialogueStateTracker.from_events("c1", [
        ActionExecuted("action_listen"),
        UserUttered("you charged me twice", parse["intent"], [], parse, metadata=VIP),
    ], slots=domain.slots)

    prediction = policy.predict_action_probabilities(tracker, domain)

    assert domain.action_names_or_texts[prediction.max_confidence_index] == "action_handoff"
    assert prediction.max_confidence == 1.0 and prediction.policy_priority == 7
    assert prediction.is_no_user_prediction  # wins over a form's happy path
    (event,) = prediction.events
    assert isinstance(event, SlotSet) and event.key == "handoff_trigger"
    assert event.value["reason"] == "billing_dispute" and event.value["team"] == "billing"

    calm = DialogueStateTracker.from_events("c2", [
        ActionExecuted("action_listen"), UserUttered("hi", {"name": "greet", "confidence": 0.99}, [], {}),
    ], slots=domain.slots)
    assert policy.predict_action_probabilities(calm, domain).max_confidence == 0.0

    nobody = DialogueStateTracker.from_events("c3", [
        ActionExecuted("action_listen"),
        UserUttered("you charged me twice", parse["intent"], [], parse),
        ActionExecuted("action_handoff"), SlotSet("handoff_trigger", None), SlotSet("ticket_why", "no_agents"),
    ], slots=domain.slots)
    assert domain.action_names_or_texts[policy.predict_action_probabilities(nobody, domain).max_confidence_index] \
        == "offline_ticket_form"
    fallback_parse = {"intent": {"name": "nlu_fallback", "confidence": 0.4}, "entities": [],
                      "intent_ranking": [{"name": "nlu_fallback", "confidence": 0.4}, {"name": "out_of_scope", "confidence": 0.2}]}
    in_form = DialogueStateTracker.from_events("c4", [
        ActionExecuted("action_listen"), UserUttered("blorp", fallback_parse["intent"], [], fallback_parse),
        ActionExecuted("utter_default"), ActionExecuted("action_listen"),
        UserUttered("human", {"name": "request_human", "confidence": 0.99}, [], {}),
        ActionExecuted("action_handoff"), SlotSet("ticket_why", "no_agents"),
        ActionExecuted("offline_ticket_form"), ActiveLoop("offline_ticket_form"), ActionExecuted("action_listen"),
        UserUttered("I want a person", {"name": "request_human", "confidence": 0.9}, [], {}),
    ], slots=domain.slots)
    assert policy.predict_action_probabilities(in_form, domain).max_confidence == 0.0  # the form takes it


def test_policy_training_names_what_the_domain_lacks(tmp_path: Path) -> None:
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.shared.core.domain import Domain
    from rasa.shared.exceptions import InvalidConfigException

    from handoff_channel.policies.handoff_policy import HandoffPolicy

    domain = Domain.load(str(BOT_DIR / "domain.yml"))
    config = {**HandoffPolicy.get_default_config(), **policy_config()}
    config["topics"] = {**config["topics"], "biling_dispute": {"reason": "billing_dispute", "say": "utter_nope"}}
    policy = HandoffPolicy.create(config, LocalModelStorage(tmp_path), Resource("handoff"),
                                  ExecutionContext(GraphSchema({}), "test"))
    with pytest.raises(InvalidConfigException) as error:
        policy.train([], domain)
    assert "topics: 'biling_dispute' is not an intent in domain.yml" in str(error.value)
    assert "topics.biling_dispute.say: 'utter_nope' is not a response" in str(error.value)


def test_sentiment_component_puts_a_top_level_score_in_the_parse_output() -> None:
    from rasa.shared.nlu.training_data.message import Message

    from handoff_channel.nlu.sentiment import SentimentAnalyzer

    component = SentimentAnalyzer({"negative_below": -0.4, "positive_above": 0.4, "lexicon": {"meh": -1.5}})
    angry, meh, button = Message({"text": "this is unacceptable, I'm furious"}), Message({"text": "meh"}), Message({"text": "/affirm"})
    component.process([angry, meh, button])

    output = angry.as_dict(only_output_properties=True)  # what parse_message returns
    assert output["sentiment"]["label"] == "negative" and output["sentiment"]["score"] < -0.8
    assert output["sentiment"]["analyser"] == "vader"
    assert meh.get("sentiment")["score"] < 0  # the configured lexicon counts
    assert button.get("sentiment") == {"score": 0.0, "label": "neutral", "analyser": "vader"}


def test_sentiment_reads_sentence_by_sentence() -> None:
    # VADER alone reads "nothing. useless" as a negated "useless", i.e. positive.
    assert score_text("Still nothing. Useless!")["label"] == "negative"
    assert score_text("great, thanks so much!")["label"] == "positive"
    assert score_text("where is my order 12345")["score"] == 0.0
