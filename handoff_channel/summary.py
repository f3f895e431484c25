"""The hand-off summary: what an agent must know about a conversation in five seconds.

``build_handoff`` turns the tracker data a rasa-sdk action sees (``tracker.events``,
``tracker.slots``, ``tracker.latest_message``) into the ``Handoff`` payload of
docs/architecture.md: why the bot stepped aside, how urgent it is, the evidence, and a summary
(headline, facts, what the bot already answered, the visitor's last words, a short text).

It is pure and deterministic (same tracker, same summary) and imports nothing outside the
standard library, because it runs inside the action server, which must not depend on the rest of
the channel, and because tests should not need Rasa to check what an agent will read.

The raw event dicts are read once, by ``read_transcript``, into small frozen dataclasses; every
other function works on those.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

# --- vocabulary ---------------------------------------------------------------------------------

EXPLICIT_REQUEST = "explicit_request"
REPEATED_FAILURE = "repeated_failure"
NEGATIVE_SENTIMENT = "negative_sentiment"

#: 1 = low .. 4 = urgent. Used only when no trigger says otherwise (HandoffPolicy in the bot's
#: config.yml normally hands ``action_handoff`` the reason, priority and team). Unknown reasons
#: get DEFAULT_PRIORITY.
PRIORITY_BY_REASON: Mapping[str, int] = {EXPLICIT_REQUEST: 2, REPEATED_FAILURE: 3, NEGATIVE_SENTIMENT: 3}
DEFAULT_PRIORITY = 2

REQUEST_HUMAN_INTENT = "request_human"
FALLBACK_INTENT = "nlu_fallback"

#: Intents that say nothing about what the visitor wants; the headline looks past them.
UNINFORMATIVE_INTENTS = frozenset(
    {"greet", "goodbye", "thank", "affirm", "deny", "bot_challenge", REQUEST_HUMAN_INTENT,
     FALLBACK_INTENT, "handoff_done"}
)
#: Small talk: kept in the transcript, but never quoted as "what the visitor wants".
SMALL_TALK_INTENTS = frozenset({"greet", "goodbye", "thank", "affirm", "deny"})

#: How the headline names a topic: (with an order number, without one).
TOPIC_BY_INTENT: Mapping[str, tuple[str, str]] = {
    "order_status": ("Asking about order {order}", "Asking about an order"),
    "returns_policy": ("Wants to return an item from order {order}", "Wants to return an item"),
    "delivery_times": ("Asking about delivery times",) * 2,
    "password_reset": ("Can't log in (password reset)",) * 2,
    "opening_hours": ("Asking about opening hours",) * 2,
    "account_details": ("Wants to change account details",) * 2,
    "payment_methods": ("Asking how to pay",) * 2,
    "out_of_scope": ("Asking about something the bot doesn't cover",) * 2,
    "billing_dispute": ("Disputes a charge (order {order})", "Disputes a charge"),
    "refund_exception": ("Wants a refund outside the return policy (order {order})",
                         "Wants a refund outside the return policy"),
    "legal_threat": ("Threatens legal action (order {order})", "Threatens legal action"),
    "account_hacked": ("Account may be hacked",) * 2,
    "safety_concern": ("SAFETY: the visitor may be at risk",) * 2,
    "custom_pricing": ("Sales lead: asks for custom pricing",) * 2,
}
#: Topics an agent must see before anything else: the headline names them even when the
#: visitor said something else afterwards.
URGENT_TOPICS = frozenset({"safety_concern"})

#: Short labels for the bot's responses, for an agent skimming "what the bot already said".
#: Responses not listed here get a label made from their name (utter_gift_cards -> "gift cards").
RESPONSE_LABELS: Mapping[str, str] = {
    "utter_greet": "greeting",
    "utter_goodbye": "goodbye",
    "utter_you_are_welcome": "you're welcome",
    "utter_happy_to_help": "anything else?",
    "utter_no_problem": "no problem",
    "utter_iamabot": "said it is a bot",
    "utter_ask_order_number": "asked for the order number",
    "utter_order_status_packed": "order status: being packed",
    "utter_order_status_shipped": "order status: on its way",
    "utter_order_status_delivered": "order status: delivered",
    "utter_delivery_times": "delivery times",
    "utter_returns_policy": "returns policy",
    "utter_opening_hours": "opening hours",
    "utter_password_reset": "password reset steps",
    "utter_account_details": "where to change account details",
    "utter_payment_methods": "payment methods",
    "utter_out_of_scope": "can't help with that",
    "utter_default": "didn't understand",
    "utter_offer_human": "offered a person",
    "utter_keep_trying": "asked to rephrase",
    "utter_crisis_resources": "crisis resources (emergency numbers, helplines)",
}
#: How the summary names a reason; others are written from the code (billing_dispute ->
#: "billing dispute").
REASON_LABELS: Mapping[str, str] = {
    "safety": "safety language",
    "account_compromised": "account may be compromised",
    "refund_outside_policy": "refund outside the return policy",
    "sales_custom_pricing": "sales lead (custom pricing)",
    "negative_sentiment": "upset visitor",
}
#: Responses that carry no information for the agent; left out of the summary text.
SMALL_TALK_RESPONSES = frozenset(
    {"utter_greet", "utter_goodbye", "utter_you_are_welcome", "utter_happy_to_help", "utter_no_problem"}
)
#: Hand-off mechanics ("connecting you…", "you're back…", the rating after a hand-back) are not
#: answers.
MECHANICS_PREFIXES = ("utter_handoff_", "utter_handback_", "utter_rating_", "utter_ask_rating", "utter_resume_form")

#: Slots that are bookkeeping, not facts about the visitor. The handoff_* slots of an earlier
#: hand-off are summarised as one "previous_handoff" fact instead.
INTERNAL_SLOTS = frozenset(
    {"session_started_metadata", "requested_slot", "handoff_reason", "handoff_outcome",
     "handoff_agent", "handoff_note", "handoff_trigger", "handoff_rating", "interrupted_form"}
)

EXTERNAL_PREFIX = "EXTERNAL: "  # Rasa's text for external intents (rasa.shared.core.constants)

ORDER_NUMBER = re.compile(r"^\d{5,8}$")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
INVOICE = re.compile(r"\b(?:INV[-\s]?\d{3,10}|invoice\s+(?:no\.?\s*|number\s*|#\s*)?\d{3,10})\b", re.I)

HEADLINE_CHARS = 100
REQUEST_WORDS_WORTH_QUOTING = 10  # "can I talk to a person please" says nothing more
MESSAGE_CHARS = 100
LAST_MESSAGES = 3


# --- wire payload (docs/architecture.md, "Handoff") ----------------------------------------------


class Evidence(TypedDict, total=False):
    """Why the hand-off fired, as the classifier saw the triggering message. The first five keys
    are always there; the others come from the trigger (HandoffPolicy) when it applies."""

    intent: str | None  # as Rasa decided it, so "nlu_fallback" when NLU was unsure
    confidence: float | None  # of the best real intent (FallbackClassifier's own score is not)
    top_intent: str | None  # best real intent: equals ``intent`` unless it was a fallback
    text: str
    fallback_count: int  # visitor messages NLU did not understand, in the whole transcript
    triggers: list[str]  # every trigger that fired, the one that gave the reason first
    topic: str  # the topic's intent, e.g. "billing_dispute"
    matched: str  # the words a topic's pattern matched
    consecutive_failures: int  # fallbacks in a row (repeated failure)
    accepted_offer: str  # the bot message whose offer of a person the visitor accepted
    sentiment_trend: list[float | None]  # the visitor's last messages' sentiment, oldest first
    below: float  # the negative sentiment threshold
    turns: int  # how many messages in a row had to be below it
    customer_tier: str  # from the page's widget customData
    priority_raised_from: int  # the priority before the customer tier raised it


class Summary(TypedDict, total=False):
    headline: str
    facts: dict[str, str]
    bot_answered: list[str]  # utter_* names, first time each was sent, in order
    bot_answered_labels: list[str]  # a short human label for each of ``bot_answered``
    last_visitor_messages: list[str]
    text: str
    #: "deterministic" (this module), or the name of the summariser that wrote ``text``
    #: (handoff_channel.summarizer); then ``deterministic_text`` keeps this module's text.
    generated_by: str
    deterministic_text: str


class Handoff(TypedDict):
    reason: str
    priority: int
    team: str | None
    evidence: Evidence
    summary: Summary


# --- the transcript, read once from the raw events -----------------------------------------------


@dataclass(frozen=True)
class VisitorTurn:
    """One thing the visitor sent. ``text`` is what an agent should see: a button click reads
    as the button's title, not as its ``/intent`` payload."""

    text: str
    intent: str | None
    top_intent: str | None
    confidence: float | None
    entities: tuple[tuple[str, str], ...]
    typed: bool  # False for button clicks
    sentiment: float | None = None  # SentimentAnalyzer's score, -1 .. 1, when NLU gave one

    def entity(self, name: str) -> str | None:
        """The last value of entity ``name`` in this message."""
        values = [value for entity, value in self.entities if entity == name]
        return values[-1] if values else None


@dataclass(frozen=True)
class Transcript:
    """The visitor's messages and the bot's responses since the last restart."""

    visitor: tuple[VisitorTurn, ...]
    bot_responses: tuple[str, ...]  # utter_* names in the order they were sent


def read_transcript(events: Iterable[Mapping[str, Any]]) -> Transcript:
    """Read rasa-sdk event dicts into a ``Transcript``.

    Everything before the last ``restart`` is dropped (Rasa forgets it too). External intents
    (``handoff_done``) are left out: nobody typed them. Messages a visitor sent while a person
    was in charge are kept; they are the visitor's words like any other.
    """
    visitor: list[VisitorTurn] = []
    responses: list[str] = []
    button_titles: dict[str, str] = {}  # payload -> title, from the buttons the bot offered
    for event in events:
        kind = event.get("event")
        if kind == "restart":
            visitor.clear()
            responses.clear()
            button_titles.clear()
        elif kind == "bot":
            metadata = event.get("metadata") or {}
            name = metadata.get("utter_action")
            if isinstance(name, str) and name:
                responses.append(name)
            data = event.get("data") or {}
            for button in (data.get("buttons") or []) + (data.get("quick_replies") or []):
                if isinstance(button, Mapping) and button.get("payload") and button.get("title"):
                    button_titles[str(button["payload"])] = str(button["title"])
        elif kind == "user":
            turn = _visitor_turn(event, button_titles)
            if turn is not None:
                visitor.append(turn)
    return Transcript(visitor=tuple(visitor), bot_responses=tuple(responses))


def _visitor_turn(event: Mapping[str, Any], button_titles: Mapping[str, str]) -> VisitorTurn | None:
    text = str(event.get("text") or "").strip()
    metadata = event.get("metadata") or {}
    if metadata.get("is_external") or text.startswith(EXTERNAL_PREFIX):
        return None
    parse = event.get("parse_data") or {}
    intent, top_intent, confidence = _classification(parse)
    entities = tuple(
        (str(e["entity"]), str(e["value"]))
        for e in parse.get("entities") or []
        if isinstance(e, Mapping) and e.get("entity") and e.get("value") is not None
    )
    typed = not text.startswith("/")
    if not typed:
        title = button_titles.get(text)
        text = f'[clicked "{title}"]' if title else f"[clicked {text.lstrip('/')}]"
    raw_sentiment = parse.get("sentiment")
    score = raw_sentiment.get("score") if isinstance(raw_sentiment, Mapping) else raw_sentiment
    sentiment = round(float(score), 3) if isinstance(score, (int, float)) and not isinstance(score, bool) else None
    return VisitorTurn(text, intent, top_intent, confidence, entities, typed, sentiment)


def _classification(parse: Mapping[str, Any]) -> tuple[str | None, str | None, float | None]:
    """(intent, best real intent, its confidence) of a parse result.

    FallbackClassifier replaces the intent with ``nlu_fallback`` (its confidence is just the
    threshold) and prepends it to ``intent_ranking``; the classifier's real guess is the first
    ranking entry that is not the fallback.
    """
    raw_intent = parse.get("intent") or {}
    intent = raw_intent.get("name") if isinstance(raw_intent, Mapping) else None
    confidence = raw_intent.get("confidence") if isinstance(raw_intent, Mapping) else None
    top_intent = intent
    if intent == FALLBACK_INTENT:
        real = [
            r for r in parse.get("intent_ranking") or []
            if isinstance(r, Mapping) and r.get("name") and r.get("name") != FALLBACK_INTENT
        ]
        top_intent = real[0]["name"] if real else None
        confidence = real[0].get("confidence") if real else None
    rounded = round(float(confidence), 3) if isinstance(confidence, (int, float)) else None
    return intent, top_intent, rounded


# --- the pieces of a hand-off ---------------------------------------------------------------------


def infer_reason(latest_intent: str | None) -> str:
    """Why the bot is stepping aside when no trigger said (a rule ran ``action_handoff``
    without HandoffPolicy): a fallback means the bot kept failing; a request for a person, a
    "yes" to an offer, or nothing known is the visitor's own request; any other intent is a
    topic that hands off, named by its intent."""
    if latest_intent == FALLBACK_INTENT:
        return REPEATED_FAILURE
    if latest_intent is None or latest_intent == REQUEST_HUMAN_INTENT or latest_intent in SMALL_TALK_INTENTS:
        return EXPLICIT_REQUEST
    return latest_intent


def extract_facts(transcript: Transcript, slots: Mapping[str, Any]) -> dict[str, str]:
    """Facts an agent would otherwise ask for: order number, email, invoice numbers, the
    visitor's other filled slots, and how an earlier hand-off ended."""
    facts: dict[str, str] = {}
    order = _order_number(transcript, slots)
    if order:
        facts["order_number"] = order
    texts = [turn.text for turn in transcript.visitor if turn.typed]
    emails = [match for text in texts for match in EMAIL.findall(text)]
    if emails:
        facts["email"] = emails[-1]
    invoices = _unique(" ".join(m.split()) for text in texts for m in INVOICE.findall(text))
    if invoices:
        facts["invoice_numbers"] = ", ".join(invoices)
    for name in sorted(slots):
        if name in INTERNAL_SLOTS or name in facts:
            continue
        value = _fact_value(slots[name])
        if value:
            facts[name] = value
    previous = _previous_handoff(slots)
    if previous:
        facts["previous_handoff"] = previous
    return facts


def responses_sent(transcript: Transcript) -> list[str]:
    """The bot's answers, each once, in the order first sent; hand-off mechanics left out."""
    return _unique(name for name in transcript.bot_responses if not name.startswith(MECHANICS_PREFIXES))


def response_label(name: str) -> str:
    """A few words naming what a response told the visitor."""
    if name in RESPONSE_LABELS:
        return RESPONSE_LABELS[name]
    return name.removeprefix("utter_").replace("_", " ")


def headline(transcript: Transcript, facts: Mapping[str, str], reason: str, topic_intent: str | None = None) -> str:
    """One line: the visitor's most recent real topic (or the topic that triggered the hand-off,
    or an urgent one raised earlier), then their last meaningful words."""
    topic = _topic_name(topic_intent, facts) if topic_intent else None
    topic = topic or _topic(transcript, facts)
    if topic is None:
        topic = {
            REPEATED_FAILURE: "The bot didn't understand",
            NEGATIVE_SENTIMENT: "Upset visitor",
        }.get(reason, "Asked for a person")
    quote = next((turn.text for turn in reversed(transcript.visitor) if _is_meaningful(turn)), None)
    last = transcript.visitor[-1] if transcript.visitor else None
    if last is not None and last.typed and last.intent == REQUEST_HUMAN_INTENT and len(last.text.split()) >= REQUEST_WORDS_WORTH_QUOTING:
        # "it says packed but I need it tomorrow, can I talk to someone": the request itself
        # says what the visitor needs now.
        quote = last.text
    if quote is None:
        # Nothing but requests for a person: their wording ("you lost my parcel, get me a
        # manager") may still tell the agent something, a bare "agent" does not.
        quote = next(
            (turn.text for turn in reversed(transcript.visitor)
             if turn.typed and turn.intent == REQUEST_HUMAN_INTENT and len(turn.text.split()) > 2),
            None,
        )
    line = f'{topic}: "{quote}"' if quote else topic
    return _clip(line, HEADLINE_CHARS)


def build_handoff(
    events: Sequence[Mapping[str, Any]],
    slots: Mapping[str, Any],
    latest_message: Mapping[str, Any],
    *,
    reason: str | None = None,
    trigger: Mapping[str, Any] | None = None,
) -> Handoff:
    """The ``Handoff`` that ``action_handoff`` sends to the channel.

    ``trigger`` is what HandoffPolicy decided (the ``handoff_trigger`` slot: reason, priority,
    team and its evidence); without one the reason is inferred (``infer_reason``) and the
    priority comes from ``PRIORITY_BY_REASON``. ``reason`` overrides both.
    """
    transcript = read_transcript(events)
    trigger = trigger if isinstance(trigger, Mapping) else {}
    intent, top_intent, confidence = _classification(latest_message)
    reason = reason or _text_or_none(trigger.get("reason")) or infer_reason(intent)
    priority = trigger.get("priority") if reason == trigger.get("reason") else None
    if not isinstance(priority, int) or isinstance(priority, bool) or not 1 <= priority <= 4:
        priority = PRIORITY_BY_REASON.get(reason, DEFAULT_PRIORITY)
    evidence: Evidence = {
        "intent": intent,
        "confidence": confidence,
        "top_intent": top_intent,
        "text": str(latest_message.get("text") or ""),
        "fallback_count": sum(1 for turn in transcript.visitor if turn.intent == FALLBACK_INTENT),
    }
    extra = trigger.get("evidence")
    if isinstance(extra, Mapping):
        for key, value in extra.items():
            if key not in evidence:
                evidence[key] = value  # type: ignore[literal-required]
    if "sentiment_trend" not in evidence:
        trend = [turn.sentiment for turn in transcript.visitor[-5:] if turn.typed]
        if any(score is not None for score in trend):
            evidence["sentiment_trend"] = trend
    facts = extract_facts(transcript, slots)
    tier = evidence.get("customer_tier")
    if tier and "customer_tier" not in facts:
        facts["customer_tier"] = str(tier)
    answered = responses_sent(transcript)
    last_turns = transcript.visitor[-LAST_MESSAGES:]
    last_messages = [_clip(turn.text, MESSAGE_CHARS) for turn in last_turns]
    topic = evidence.get("topic") or _urgent_topic(transcript)
    line = headline(transcript, facts, reason, topic if isinstance(topic, str) else None)
    text = _summary_text(line, reason, evidence, facts, answered, last_turns)
    summary: Summary = {
        "headline": line,
        "facts": facts,
        "bot_answered": answered,
        "bot_answered_labels": [response_label(name) for name in answered],
        "last_visitor_messages": last_messages,
        "text": text,
        "generated_by": "deterministic",
    }
    return {
        "reason": reason,
        "priority": priority,
        "team": _text_or_none(trigger.get("team")) if reason == trigger.get("reason") else None,
        "evidence": evidence,
        "summary": summary,
    }


def _text_or_none(value: Any) -> str | None:
    return str(value) if isinstance(value, str) and value.strip() else None


def _urgent_topic(transcript: Transcript) -> str | None:
    """An urgent topic (safety) the visitor raised at any point: the agent must see it first."""
    for turn in transcript.visitor:
        if turn.intent in URGENT_TOPICS or turn.top_intent in URGENT_TOPICS:
            return turn.intent if turn.intent in URGENT_TOPICS else turn.top_intent
    return None


# --- helpers --------------------------------------------------------------------------------------


def _summary_text(
    line: str,
    reason: str,
    evidence: Evidence,
    facts: Mapping[str, str],
    answered: Sequence[str],
    last_turns: Sequence[VisitorTurn],
) -> str:
    """4 to 8 lines, most important first: topic, why, facts, what the bot said, last words."""
    lines = [line, f"Why: {_why(reason, evidence)}"]
    fact_words = [f"{_FACT_LABELS.get(name, name.replace('_', ' '))} {value}" for name, value in facts.items()]
    lines.append("Facts: " + (" · ".join(fact_words) if fact_words else "none given yet"))
    said = [response_label(name) for name in answered if name not in SMALL_TALK_RESPONSES]
    lines.append("Bot already said: " + (", ".join(said) if said else "nothing useful yet"))
    if last_turns:
        lines.append("Visitor's last messages (newest last):")
        # Typed words in quotes; a click is already written as "[clicked ...]".
        lines.extend(
            f'  "{_clip(turn.text, MESSAGE_CHARS)}"' if turn.typed else f"  {turn.text}" for turn in last_turns
        )
    else:
        lines.append("The visitor has not written anything yet.")
    return "\n".join(lines)


_FACT_LABELS: Mapping[str, str] = {
    "order_number": "order",
    "email": "email",
    "invoice_numbers": "invoice",
    "previous_handoff": "earlier hand-off:",
    "customer_tier": "tier",
}


def _why(reason: str, evidence: Evidence) -> str:
    """The reason with its evidence, in words: what fired, how sure NLU was, what else fired."""
    failures = evidence.get("consecutive_failures") or evidence.get("fallback_count") or 0
    in_a_row = " in a row" if evidence.get("consecutive_failures") else ""
    misses = f"the bot did not understand {failures} time{'s' if failures != 1 else ''}{in_a_row}"
    if reason == REPEATED_FAILURE:
        why = misses
        if evidence.get("accepted_offer"):
            why += "; the visitor accepted the offer of a person"
    elif reason == NEGATIVE_SENTIMENT:
        turns = evidence.get("turns")
        below = evidence.get("below")
        why = "the visitor sounds upset"
        if turns and below is not None:
            why += f" ({turns} messages in a row below {below:+.2f})"
    elif reason == EXPLICIT_REQUEST:
        if evidence.get("accepted_offer"):
            how = " (said yes when the bot offered)"
        elif evidence["text"].startswith("/"):
            how = " (clicked the button)"
        elif evidence["intent"] and evidence["confidence"] is not None:
            how = f" ({evidence['intent']}, {evidence['confidence']:.0%} sure)"
        else:
            how = ""
        why = f"the visitor asked for a person{how}" + (f"; {misses}" if failures else "")
    else:
        why = reason_label(reason)
        if evidence.get("matched"):
            why += f' (said "{_clip(str(evidence["matched"]), 40)}")'
        elif evidence.get("topic") and isinstance(evidence.get("confidence"), (int, float)):
            why += f" ({evidence['topic']}, {evidence['confidence']:.0%} sure)"
    others = [reason_label(t) for t in evidence.get("triggers") or [] if t != reason and t != "accepted_offer"]
    if others:
        why += "; also " + ", ".join(others)
    mood = _mood(evidence.get("sentiment_trend"))
    if mood:
        why += f"; mood {mood}"
    tier = evidence.get("customer_tier")
    if tier:
        raised = evidence.get("priority_raised_from")
        why += f"; {str(tier).upper()} customer" + (f" (priority raised from {raised})" if raised else "")
    return why


def reason_label(reason: str) -> str:
    """A reason code in words."""
    return REASON_LABELS.get(reason, reason.replace("_", " "))


def _mood(trend: Any) -> str | None:
    """"-0.1 → -0.5 → -0.7" when any of the visitor's recent messages scored negative."""
    if not isinstance(trend, (list, tuple)):
        return None
    scores = [s for s in trend if isinstance(s, (int, float)) and not isinstance(s, bool)]
    if not scores or min(scores) > -0.05:
        return None
    return " → ".join(f"{s:+.1f}" for s in scores[-4:])


def _topic(transcript: Transcript, facts: Mapping[str, str]) -> str | None:
    """The most recent topic the visitor raised, named with its order number if known."""
    for turn in reversed(transcript.visitor):
        if turn.intent is not None and turn.intent in TOPIC_BY_INTENT:
            return _topic_name(turn.intent, facts, turn.entity("order_number"))
    return None


def _topic_name(intent: str, facts: Mapping[str, str], order: str | None = None) -> str | None:
    if intent not in TOPIC_BY_INTENT:
        return None
    with_order, without_order = TOPIC_BY_INTENT[intent]
    # The fact is the latest word on the number (a later mention, or an agent's fix).
    order = facts.get("order_number") or order
    return with_order.format(order=order) if order else without_order


def _is_meaningful(turn: VisitorTurn) -> bool:
    """Worth quoting as what the visitor wants: typed, not small talk, not the request for a
    person itself (the headline already says that), and more than a bare number."""
    if not turn.typed or turn.intent in SMALL_TALK_INTENTS or turn.intent == REQUEST_HUMAN_INTENT:
        return False
    return any(ch.isalpha() for ch in turn.text)


def _order_number(transcript: Transcript, slots: Mapping[str, Any]) -> str | None:
    slot = slots.get("order_number")
    if slot is not None and ORDER_NUMBER.match(str(slot).strip()):
        return str(slot).strip()
    for turn in reversed(transcript.visitor):
        value = turn.entity("order_number")
        if value and ORDER_NUMBER.match(value.strip()):
            return value.strip()
    return None


def _previous_handoff(slots: Mapping[str, Any]) -> str | None:
    agent = _fact_value(slots.get("handoff_agent"))
    outcome = _fact_value(slots.get("handoff_outcome"))
    if not (agent or outcome):
        return None
    note = _fact_value(slots.get("handoff_note"))
    who = agent or "an agent"
    line = f"{who} ({outcome.replace('_', ' ')})" if outcome else who
    line = f"{line}: {_clip(note, 60)}" if note else line
    rating = slots.get("handoff_rating")
    if isinstance(rating, (int, float)) and not isinstance(rating, bool):
        line += f"; rated {rating:g}/5"
    return line


def _fact_value(value: Any) -> str | None:
    """A slot value as a fact, or None when it is empty or not a simple value."""
    if value is None or isinstance(value, dict):
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        parts = [str(v) for v in value if v is not None and str(v).strip()]
        return ", ".join(parts) or None
    text = str(value).strip()
    return text or None


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _clip(text: str, limit: int) -> str:
    """``text`` on one line and at most ``limit`` characters, cut at a word where possible."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.") + "…"
