"""When the bot steps aside for a person, and why: the hand-off triggers, as pure functions.

``HandoffPolicy`` (``handoff_channel.policies.handoff_policy``) reads its parameters from the bot's
``config.yml`` into ``Settings`` and calls ``decide`` on every prediction; ``scripts/eval_triggers.py``
and the unit tests call the same code. Nothing here imports Rasa: the input is the tracker's events
as dicts (``Event.as_dict()``, the same shape rasa-sdk hands actions).

The triggers, in the order they take precedence when several fire on one message:

1. **Topics** -- an intent such as ``billing_dispute`` or ``safety_concern`` (or one of the topic's
   ``patterns``, a safety net for words that must never be missed). Each topic names its reason,
   priority, team, and optionally a response to say first (crisis resources).
2. **Explicit request** -- a ``request_human`` intent (typed, or the "Talk to a person" button), or
   "yes" right after the bot offered a person (``offers``).
3. **Repeated failure** -- the N-th consecutive fallback offers a person (``offer_after``); another
   one hands off (``handoff_after``), and so does accepting the offer.
4. **Sustained negative sentiment** -- the last K visitor messages all scored below a threshold.

The reason is the first trigger that fired; the priority is the highest of them, raised for
customers of a listed tier (``vip``), and never above ``vip.max_priority`` by that raise.

Nobody there (``offline``): when the action that just ran set ``offline.why_slot`` (``action_handoff``
found no agent available, the visitor chose to leave a message), the next action is
``offline.form``. While that form runs nothing fires but urgent topics (priority
``offline.urgent_priority`` and up: safety), and its turns are neither misses nor moods: an email
address is often an NLU fallback. The visitor's choices about waiting (``neutral_intents``: "never
mind", "I'll wait", "leave a message") neither count as misses nor end a streak.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

HANDOFF_ACTION = "action_handoff"
HANDBACK_ACTION = "action_handback"
LISTEN_ACTION = "action_listen"

EXPLICIT_REQUEST = "explicit_request"
REPEATED_FAILURE = "repeated_failure"
NEGATIVE_SENTIMENT = "negative_sentiment"

#: Events after which the visitor starts with a clean slate: a restart, a new session, and the
#: end of a human stretch (the channel appends ``resume`` on hand-back).
BOUNDARY_EVENTS = frozenset({"restart", "session_started", "resume"})
#: Actions that are bookkeeping, not the bot answering.
SILENT_ACTIONS = frozenset({"action_listen", "action_extract_slots", "action_session_start"})

EXTERNAL_PREFIX = "EXTERNAL: "


# --- settings (the policy's parameters in config.yml) --------------------------------------------


class SettingsError(ValueError):
    """A parameter in config.yml that cannot work; the message says which and why."""


@dataclass(frozen=True)
class Topic:
    """A subject that always goes to a person: billing disputes, legal threats, safety, ..."""

    intent: str
    reason: str
    priority: int
    team: Optional[str] = None
    #: The topic fires when NLU decided its intent. With a number here, it also fires when
    #: FallbackClassifier was unsure but NLU's best real guess was this intent with at least this
    #: confidence (a missed safety message is worse than a false alarm).
    min_confidence: Optional[float] = None
    #: With a number here, the topic also fires when its intent is anywhere in NLU's ranking with
    #: at least this confidence, even when another intent won ("my husband hits me, I need
    #: help" may read as a request for a person first). For topics that must never be missed.
    ranking_confidence: Optional[float] = None
    #: A response the bot says before handing off (e.g. crisis resources).
    say: Optional[str] = None
    #: Case-insensitive regular expressions on the visitor's typed words; any match fires the
    #: topic whatever NLU thought.
    patterns: tuple[re.Pattern[str], ...] = ()


@dataclass(frozen=True)
class Settings:
    explicit_intents: tuple[str, ...] = ("request_human",)
    explicit_priority: int = 2
    explicit_team: Optional[str] = None
    #: None: only when NLU decided the intent (not a fallback). A number: also the best real
    #: guess under a fallback, from that confidence on.
    explicit_min_confidence: Optional[float] = None

    #: Bot response -> reason: "yes" (``accept_intents``) right after it hands off.
    offers: Mapping[str, str] = field(
        default_factory=lambda: {"utter_iamabot": EXPLICIT_REQUEST, "utter_offer_human": REPEATED_FAILURE}
    )
    accept_intents: tuple[str, ...] = ("affirm",)

    fallback_intent: str = "nlu_fallback"
    #: Intents that mean the bot cannot help with this message (the fallback counts too).
    failure_intents: tuple[str, ...] = ("out_of_scope",)
    #: Bot answers that mean "I did not understand" or "I can't help with that" (each one counts
    #: as a failed turn).
    failure_actions: tuple[str, ...] = ("utter_default", "utter_offer_human", "utter_out_of_scope")
    #: Bot answers that neither count nor break the streak (e.g. "OK, let's keep trying").
    neutral_actions: tuple[str, ...] = ("utter_keep_trying",)
    #: Visitor intents that neither count nor break the streak (the queue choices).
    neutral_intents: tuple[str, ...] = ()
    offer_after: int = 2
    handoff_after: int = 3
    offer_response: Optional[str] = "utter_offer_human"
    failure_priority: int = 3
    failure_team: Optional[str] = None

    sentiment_below: float = -0.4
    sentiment_turns: int = 2
    sentiment_priority: int = 3
    sentiment_team: Optional[str] = None
    #: Score messages that have no ``sentiment`` in their parse data (``rasa test`` stories
    #: carry the story's intent, not NLU's output) with the same analyser.
    sentiment_score_missing: bool = True

    topics: tuple[Topic, ...] = ()

    vip_field: str = "tier"
    vip_values: tuple[str, ...] = ("vip",)
    vip_slot: Optional[str] = "customer_tier"
    vip_raise_by: int = 1
    vip_max_priority: int = 3

    #: Nobody there: the form that collects a message for the team (None: no such form).
    offline_form: Optional[str] = None
    #: The slot an action sets (to why nobody is there) right before the form should start.
    offline_why_slot: Optional[str] = None
    #: While the form runs, topics of this priority and above still fire (safety).
    offline_urgent_priority: int = 4

    @property
    def reason_priority(self) -> dict[str, int]:
        return {EXPLICIT_REQUEST: self.explicit_priority, REPEATED_FAILURE: self.failure_priority}

    @property
    def reason_team(self) -> dict[str, Optional[str]]:
        return {EXPLICIT_REQUEST: self.explicit_team, REPEATED_FAILURE: self.failure_team}


def settings_from_config(config: Mapping[str, Any]) -> Settings:
    """``Settings`` from the policy's entry in config.yml (see ``bot/config.yml`` for an example).

    Raises ``SettingsError`` with a plain explanation for values that cannot work, so a typo
    stops ``rasa train`` instead of silently never handing off.
    """
    explicit = _section(config, "explicit_request")
    failure = _section(config, "repeated_failure")
    sentiment = _section(config, "negative_sentiment")
    vip = _section(config, "vip")
    offline = _section(config, "offline")
    base = Settings()

    offer_after = _int(failure, "offer_after", base.offer_after, "repeated_failure", minimum=1)
    handoff_after = _int(failure, "handoff_after", offer_after + 1, "repeated_failure", minimum=1)
    if handoff_after < offer_after:
        raise SettingsError(
            f"repeated_failure: handoff_after ({handoff_after}) must not be smaller than offer_after ({offer_after})."
        )
    topics = tuple(_topic(intent, raw) for intent, raw in (_section(config, "topics")).items())
    offers = config.get("offers", base.offers)
    if not isinstance(offers, Mapping):
        raise SettingsError("offers: expected a map of bot response -> reason, e.g. {utter_iamabot: explicit_request}.")
    return Settings(
        explicit_intents=_names(explicit, "intents", base.explicit_intents, "explicit_request"),
        explicit_priority=_priority(explicit, base.explicit_priority, "explicit_request"),
        explicit_team=_team(explicit),
        explicit_min_confidence=_optional_float(explicit, "min_confidence", "explicit_request"),
        offers={str(k): str(v) for k, v in offers.items()},
        accept_intents=_names(config, "accept_intents", base.accept_intents, "accept_intents"),
        fallback_intent=str(failure.get("fallback_intent", base.fallback_intent)),
        failure_intents=_names(failure, "failure_intents", base.failure_intents, "repeated_failure"),
        failure_actions=_names(failure, "failure_actions", base.failure_actions, "repeated_failure"),
        neutral_actions=_names(failure, "neutral_actions", base.neutral_actions, "repeated_failure"),
        neutral_intents=_names(failure, "neutral_intents", base.neutral_intents, "repeated_failure"),
        offer_after=offer_after,
        handoff_after=handoff_after,
        offer_response=failure.get("offer_response", base.offer_response) or None,
        failure_priority=_priority(failure, base.failure_priority, "repeated_failure"),
        failure_team=_team(failure),
        sentiment_below=_float(sentiment, "below", base.sentiment_below, "negative_sentiment", -1.0, 1.0),
        sentiment_turns=_int(sentiment, "turns", base.sentiment_turns, "negative_sentiment", minimum=1),
        sentiment_priority=_priority(sentiment, base.sentiment_priority, "negative_sentiment"),
        sentiment_team=_team(sentiment),
        sentiment_score_missing=bool(sentiment.get("score_missing", base.sentiment_score_missing)),
        topics=topics,
        vip_field=str(vip.get("field", base.vip_field)),
        vip_values=tuple(str(v).lower() for v in _names(vip, "values", base.vip_values, "vip")),
        vip_slot=vip.get("slot", base.vip_slot) or None,
        vip_raise_by=_int(vip, "raise_by", base.vip_raise_by, "vip", minimum=0),
        vip_max_priority=_priority(vip, base.vip_max_priority, "vip", key="max_priority"),
        offline_form=str(offline["form"]) if offline.get("form") else None,
        offline_why_slot=str(offline["why_slot"]) if offline.get("why_slot") else None,
        offline_urgent_priority=_priority(offline, base.offline_urgent_priority, "offline", key="urgent_priority"),
    )


def _section(config: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = config.get(name) or {}
    if not isinstance(value, Mapping):
        raise SettingsError(f"{name}: expected a map of settings, got {value!r}.")
    return value


def _topic(intent: Any, raw: Any) -> Topic:
    where = f"topics.{intent}"
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{where}: expected a map with at least a reason and a priority, got {raw!r}.")
    if not raw.get("reason"):
        raise SettingsError(f"{where}: needs a reason (the code agents see, e.g. billing_dispute).")
    patterns = []
    for pattern in raw.get("patterns") or []:
        try:
            patterns.append(re.compile(str(pattern), re.IGNORECASE))
        except re.error as error:
            raise SettingsError(f"{where}: pattern {pattern!r} is not a valid regular expression ({error}).") from None
    return Topic(
        intent=str(intent),
        reason=str(raw["reason"]),
        priority=_priority(raw, 2, where),
        team=_team(raw),
        min_confidence=_optional_float(raw, "min_confidence", where),
        ranking_confidence=_optional_float(raw, "ranking_confidence", where),
        say=str(raw["say"]) if raw.get("say") else None,
        patterns=tuple(patterns),
    )


def _names(section: Mapping[str, Any], key: str, default: tuple[str, ...], where: str) -> tuple[str, ...]:
    value = section.get(key, default)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise SettingsError(f"{where}: {key} must be a list of names, got {value!r}.")
    return tuple(str(v) for v in value)


def _priority(section: Mapping[str, Any], default: int, where: str, key: str = "priority") -> int:
    return _int(section, key, default, where, minimum=1, maximum=4)


def _int(section: Mapping[str, Any], key: str, default: int, where: str, *, minimum: int = 0,
         maximum: Optional[int] = None) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (maximum is not None and value > maximum):
        bounds = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise SettingsError(f"{where}: {key} must be a whole number {bounds}, got {value!r}.")
    return int(value)


def _float(section: Mapping[str, Any], key: str, default: float, where: str, low: float, high: float) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise SettingsError(f"{where}: {key} must be a number from {low} to {high}, got {value!r}.")
    return float(value)


def _optional_float(section: Mapping[str, Any], key: str, where: str) -> Optional[float]:
    if section.get(key) is None:
        return None
    return _float(section, key, 0.0, where, 0.0, 1.0)


def _team(section: Mapping[str, Any]) -> Optional[str]:
    team = section.get("team")
    return str(team) if team else None


# --- the conversation, as the triggers see it -----------------------------------------------------


@dataclass(frozen=True)
class Turn:
    """One visitor message and what the bot did after it (action names, in order)."""

    text: str
    intent: Optional[str]
    top_intent: Optional[str]  # NLU's best real guess (differs from ``intent`` under a fallback)
    confidence: Optional[float]  # of ``top_intent``
    sentiment: Optional[float]
    metadata: Mapping[str, Any]
    actions: tuple[str, ...]
    ranking: tuple[tuple[str, float], ...] = ()  # NLU's intent ranking, best first
    active_loop: Optional[str] = None  # the form that was running when the visitor wrote this

    def ranked(self, intent: str) -> float:
        """NLU's confidence in ``intent`` for this message (0 when not ranked)."""
        return next((confidence for name, confidence in self.ranking if name == intent), 0.0)

    @property
    def typed(self) -> bool:
        return not self.text.startswith("/")


def read_turns(events: Iterable[Mapping[str, Any]], *, fallback_intent: str = "nlu_fallback") -> list[Turn]:
    """The visitor's turns since the last restart, new session or hand-back.

    Messages recorded during a human stretch and external intents (``handoff_done``) are not
    turns: nobody talked to the bot.
    """
    turns: list[dict[str, Any]] = []
    loop: Optional[str] = None
    for event in events:
        kind = event.get("event")
        if kind == "active_loop":
            loop = str(event["name"]) if event.get("name") else None
        elif kind == "restart":
            loop = None
        if kind in BOUNDARY_EVENTS:
            turns.clear()
        elif kind == "user":
            metadata = event.get("metadata") or {}
            text = str(event.get("text") or "")
            if metadata.get("is_external") or text.startswith(EXTERNAL_PREFIX) or metadata.get("handoff") == "human_stretch":
                continue
            parse = event.get("parse_data") or {}
            intent, top_intent, confidence = classification(parse, fallback_intent)
            sentiment = parse.get("sentiment")
            score = sentiment.get("score") if isinstance(sentiment, Mapping) else sentiment
            ranking = tuple(
                (str(r["name"]), float(r.get("confidence") or 0.0))
                for r in parse.get("intent_ranking") or []
                if isinstance(r, Mapping) and r.get("name")
            )
            turns.append({
                "text": text, "intent": intent, "top_intent": top_intent, "confidence": confidence,
                "sentiment": float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None,
                "metadata": metadata, "actions": [], "ranking": ranking, "active_loop": loop,
            })
        elif kind == "action" and turns:
            name = event.get("name")
            if name == HANDBACK_ACTION:
                turns.clear()
            elif name and name not in SILENT_ACTIONS:
                turns[-1]["actions"].append(str(name))
    return [Turn(**{**t, "actions": tuple(t["actions"])}) for t in turns]


def classification(parse: Mapping[str, Any], fallback_intent: str = "nlu_fallback") -> tuple[Optional[str], Optional[str], Optional[float]]:
    """(intent, best real intent, its confidence): under a FallbackClassifier fallback, the real
    guess is the first ranking entry that is not the fallback."""
    raw = parse.get("intent") or {}
    intent = raw.get("name") if isinstance(raw, Mapping) else None
    confidence = raw.get("confidence") if isinstance(raw, Mapping) else None
    top = intent
    if intent == fallback_intent:
        real = [r for r in parse.get("intent_ranking") or []
                if isinstance(r, Mapping) and r.get("name") and r.get("name") != fallback_intent]
        top = str(real[0]["name"]) if real else None
        confidence = real[0].get("confidence") if real else None
    number = round(float(confidence), 3) if isinstance(confidence, (int, float)) else None
    return intent, top, number


# --- the decision -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fired:
    """One trigger that fired on the latest message."""

    name: str  # "topic", "explicit_request", "accepted_offer", "repeated_failure", "negative_sentiment"
    reason: str
    priority: int
    team: Optional[str]
    evidence: Mapping[str, Any]
    say: Optional[str] = None


@dataclass(frozen=True)
class Decision:
    """What the policy predicts next: ``action`` (or None: let the other policies decide), and
    for ``action_handoff`` the ``trigger`` the action reads from the ``handoff_trigger`` slot."""

    action: Optional[str] = None
    trigger: Optional[dict[str, Any]] = None

    @property
    def hands_off(self) -> bool:
        return self.action == HANDOFF_ACTION


NOTHING = Decision()


def decide(
    events: Sequence[Mapping[str, Any]],
    settings: Settings,
    slots: Optional[Mapping[str, Any]] = None,
    *,
    score: Optional[Callable[[str], float]] = None,
) -> Decision:
    """The next action for the latest visitor message, or ``NOTHING``.

    ``score`` rates a message's sentiment when its parse data has none (see
    ``Settings.sentiment_score_missing``).
    """
    if _offline_form_next(events, settings):
        # In production the action's FollowupAction has started the form already; `rasa test`
        # and eval_triggers.py do not run actions, so this says the same thing.
        return Decision(action=settings.offline_form)
    turns = read_turns(events, fallback_intent=settings.fallback_intent)
    if not turns or not _ends_with_visitor_turn(events):
        return NOTHING
    current = turns[-1]
    done = current.actions
    if done and (done[-1] == HANDOFF_ACTION or done[-1] == settings.offer_response):
        # After its own last word the policy listens (in production the hand-off has paused the
        # tracker by now; in `rasa test` the action did not run, so nothing else would know).
        return Decision(action=LISTEN_ACTION)
    if HANDOFF_ACTION in done:
        return NOTHING
    fired = evaluate(turns, settings, score=score)
    if _quiet(current, settings):
        # Leaving a message: only an urgent topic (safety) interrupts the form.
        fired = [f for f in fired if f.name == "topic" and f.priority >= settings.offline_urgent_priority]
    if fired:
        first = fired[0]
        if not done and first.say:
            return Decision(action=first.say)
        if not done or (first.say and done == (first.say,)):
            return Decision(action=HANDOFF_ACTION,
                            trigger=trigger_payload(fired, turns, events, settings, slots, score=score))
        return NOTHING
    if not done and settings.offer_response and _failures(turns, settings) == settings.offer_after:
        return Decision(action=settings.offer_response)
    return NOTHING


def _quiet(turn: Turn, settings: Settings) -> bool:
    """The visitor wrote this while the offline form was running."""
    return settings.offline_form is not None and turn.active_loop == settings.offline_form


def _offline_form_next(events: Sequence[Mapping[str, Any]], settings: Settings) -> bool:
    """True right after an action (other than the form itself) set ``offline_why_slot`` to a
    value: ``action_handoff`` found nobody there, or the visitor chose to leave a message."""
    if not settings.offline_form or not settings.offline_why_slot:
        return False
    why_set: Optional[bool] = None  # the latest value the action gave the slot decides
    for event in reversed(events):
        kind = event.get("event")
        if kind == "slot":
            if event.get("name") == settings.offline_why_slot and why_set is None:
                why_set = bool(event.get("value"))
            continue
        if kind == "action":
            name = event.get("name")
            return bool(why_set) and name not in (settings.offline_form, LISTEN_ACTION)
        if kind in ("user", "pause") or kind in BOUNDARY_EVENTS:
            return False
    return False


def _ends_with_visitor_turn(events: Sequence[Mapping[str, Any]]) -> bool:
    """True while the bot is still answering the latest visitor message (no hand-off or
    hand-back since, and the latest message is not an external intent)."""
    for event in reversed(events):
        kind = event.get("event")
        if kind == "user":
            metadata = event.get("metadata") or {}
            text = str(event.get("text") or "")
            return not (metadata.get("is_external") or text.startswith(EXTERNAL_PREFIX))
        if kind in BOUNDARY_EVENTS or kind == "pause":
            return False
    return False


def evaluate(
    turns: Sequence[Turn], settings: Settings, *, score: Optional[Callable[[str], float]] = None
) -> list[Fired]:
    """Every trigger that fires on the latest turn, in order of precedence."""
    current = turns[-1]
    fired: list[Fired] = []

    topics = []
    for order, topic in enumerate(settings.topics):
        evidence: dict[str, Any] = {"topic": topic.intent}
        hit = False
        if current.intent == topic.intent or (
            topic.min_confidence is not None
            and current.intent == settings.fallback_intent
            and current.top_intent == topic.intent
            and (current.confidence or 0.0) >= topic.min_confidence
        ):
            evidence.update(confidence=current.confidence)
            hit = True
        elif topic.ranking_confidence is not None and current.ranked(topic.intent) >= topic.ranking_confidence:
            evidence.update(confidence=round(current.ranked(topic.intent), 3), ranked_below=current.top_intent)
            hit = True
        if current.typed:
            for pattern in topic.patterns:
                match = pattern.search(current.text)
                if match:
                    evidence.update(matched=match.group(0))
                    hit = True
                    break
        if hit:
            topics.append((-topic.priority, order, Fired("topic", topic.reason, topic.priority, topic.team, evidence, topic.say)))
    fired.extend(f for _, _, f in sorted(topics, key=lambda t: (t[0], t[1])))

    if _explicit(current, settings):
        fired.append(Fired(EXPLICIT_REQUEST, EXPLICIT_REQUEST, settings.explicit_priority, settings.explicit_team,
                           {"intent": current.top_intent, "confidence": current.confidence,
                            "clicked": not current.typed}))

    if len(turns) > 1 and current.intent in settings.accept_intents:
        offered = _last_action(turns[-2])
        if offered is not None and offered in settings.offers:
            reason = settings.offers[offered]
            accepted: dict[str, Any] = {"accepted_offer": offered}
            streak = _streak(turns[:-1], settings)
            if streak:
                accepted["consecutive_failures"] = streak
            fired.append(Fired("accepted_offer", reason, settings.reason_priority.get(reason, settings.explicit_priority),
                               settings.reason_team.get(reason), accepted))

    failures = _failures(turns, settings)
    if failures >= settings.handoff_after:
        fired.append(Fired(REPEATED_FAILURE, REPEATED_FAILURE, settings.failure_priority, settings.failure_team,
                           {"consecutive_failures": failures}))

    scores = sentiment_scores(turns, settings, score=score)
    recent = scores[-settings.sentiment_turns:]
    if len(recent) == settings.sentiment_turns and all(s is not None and s < settings.sentiment_below for s in recent):
        fired.append(Fired(NEGATIVE_SENTIMENT, NEGATIVE_SENTIMENT, settings.sentiment_priority, settings.sentiment_team,
                           {"below": settings.sentiment_below, "turns": settings.sentiment_turns}))
    return fired


def _explicit(turn: Turn, settings: Settings) -> bool:
    if turn.intent in settings.explicit_intents:
        return True
    return (
        settings.explicit_min_confidence is not None
        and turn.intent == settings.fallback_intent
        and turn.top_intent in settings.explicit_intents
        and (turn.confidence or 0.0) >= settings.explicit_min_confidence
    )


def _last_action(turn: Turn) -> Optional[str]:
    return turn.actions[-1] if turn.actions else None


def _failures(turns: Sequence[Turn], settings: Settings) -> int:
    """Consecutive failed turns, the latest included; 0 when the latest is not a failure.

    A turn failed when the bot answered with one of ``failure_actions``; turns answered only
    with ``neutral_actions`` ("OK, let's keep trying") are skipped; anything else ends the streak.
    """
    if not _is_failure(turns[-1], settings):
        return 0
    return 1 + _streak(turns[:-1], settings)


def _is_failure(turn: Turn, settings: Settings) -> bool:
    """The bot cannot help with this message: NLU's fallback, or an intent such as out_of_scope
    (never while the visitor is leaving a message: an email address is often a fallback)."""
    if _quiet(turn, settings):
        return False
    return turn.intent == settings.fallback_intent or turn.intent in settings.failure_intents


def _streak(turns: Sequence[Turn], settings: Settings) -> int:
    """Failed turns at the end of ``turns`` (see ``_failures``)."""
    count = 0
    for turn in reversed(turns):
        if _quiet(turn, settings):
            break  # the visitor left a message (or stopped): a new start
        if turn.intent in settings.neutral_intents:
            continue
        if any(a in settings.failure_actions for a in turn.actions):
            count += 1
        elif turn.actions and all(a in settings.neutral_actions for a in turn.actions):
            continue
        else:
            break
    return count


def sentiment_scores(
    turns: Sequence[Turn], settings: Settings, *, score: Optional[Callable[[str], float]] = None
) -> list[Optional[float]]:
    """The sentiment score of each turn (None when unknown)."""
    out: list[Optional[float]] = []
    for turn in turns:
        if _quiet(turn, settings):
            out.append(None)  # an email address or a description for the team: not a mood
            continue
        value = turn.sentiment
        if value is None and not turn.typed:
            value = 0.0  # a button click: no words, no mood (NLU does not score payloads)
        elif value is None and score is not None and settings.sentiment_score_missing:
            value = round(float(score(turn.text)), 3)
        out.append(value)
    return out


def customer_tier(turns: Sequence[Turn], events: Sequence[Mapping[str, Any]], settings: Settings,
                  slots: Optional[Mapping[str, Any]]) -> Optional[str]:
    """The customer's tier: a slot (``vip.slot``) if set, else the embedding page's widget
    ``customData`` (the newest message's metadata that has it, then the session's start)."""
    if slots and settings.vip_slot and slots.get(settings.vip_slot):
        return str(slots[settings.vip_slot])
    for event in reversed(events):
        if event.get("event") == "user":
            value = _custom_data(event.get("metadata")).get(settings.vip_field)
            if value:
                return str(value)
    if slots:
        value = _custom_data(slots.get("session_started_metadata")).get(settings.vip_field)
        if value:
            return str(value)
    return None


def _custom_data(metadata: Any) -> Mapping[str, Any]:
    if not isinstance(metadata, Mapping):
        return {}
    custom = metadata.get("customData")
    return custom if isinstance(custom, Mapping) else {}


def trigger_payload(
    fired: Sequence[Fired],
    turns: Sequence[Turn],
    events: Sequence[Mapping[str, Any]],
    settings: Settings,
    slots: Optional[Mapping[str, Any]],
    *,
    score: Optional[Callable[[str], float]] = None,
) -> dict[str, Any]:
    """What ``action_handoff`` receives (slot ``handoff_trigger``): reason, priority, team and
    the evidence of every trigger that fired."""
    first = fired[0]
    priority = max(f.priority for f in fired)
    evidence: dict[str, Any] = {"triggers": [f.name if f.name != "topic" else f.reason for f in fired]}
    for f in fired:
        evidence.update({k: v for k, v in f.evidence.items() if k not in evidence})
    current = turns[-1]
    evidence.setdefault("intent", current.top_intent)
    evidence.setdefault("confidence", current.confidence)
    failures = _failures(turns, settings)
    if failures:
        evidence.setdefault("consecutive_failures", failures)
    scores = sentiment_scores(turns, settings, score=score)
    if any(s is not None for s in scores):
        evidence["sentiment_trend"] = [s for s in scores[-5:]]
    tier = customer_tier(turns, events, settings, slots)
    if tier:
        evidence["customer_tier"] = tier
        if tier.lower() in settings.vip_values and settings.vip_raise_by:
            raised = max(priority, min(priority + settings.vip_raise_by, settings.vip_max_priority))
            if raised != priority:
                evidence["priority_raised_from"] = priority
                priority = raised
    team = first.team or next((f.team for f in fired if f.team), None)
    return {"reason": first.reason, "priority": priority, "team": team, "evidence": evidence}
