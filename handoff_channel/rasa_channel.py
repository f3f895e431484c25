"""The Rasa side of the handoff: an input channel registered in ``bot/credentials.yml`` as
``handoff_channel.rasa_channel.HandoffInput``. It runs inside ``rasa run`` and answers the gateway
over authenticated HTTP (``/webhooks/handoff/...``):

* ``POST /turn``     a bot-owned visitor turn: NLU, policies, actions; returns what the bot said and,
                     if ``action_handoff`` ran, the handoff it asked for.
* ``POST /log``      the human stretch, recorded in the tracker without running any policy.
* ``POST /handback`` resume the tracker and let ``action_handback`` speak (external intent
                     ``handoff_done``).

It never pushes to visitors; the gateway owns the sockets. Every route is idempotent on retry, so a
gateway that lost an answer (Rasa killed mid-turn) can ask again without the bot acting twice."""

from __future__ import annotations

import gc
import hmac
import json
import logging
import os
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.processor import PLACEHOLDER_MESSAGE, PLACEHOLDER_TRACKER
from rasa.shared.constants import DEFAULT_SENDER_ID
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    ConversationResumed,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from .gc_tuning import freeze_startup_objects

log = logging.getLogger(__name__)

HANDOFF_INTENT = "handoff_done"
MAX_BODY_BYTES = 256 * 1024


class CollectingOutput(OutputChannel):
    """Collects what the bot says, as Rasa's message dicts. Overrides ``send_response`` whole, so
    nothing here can raise: an exception in an output channel makes Rasa drop the turn's tracker."""

    @classmethod
    def name(cls) -> Text:
        return "handoff"

    def __init__(self) -> None:
        self.messages: List[Dict[Text, Any]] = []

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        try:
            self.messages.append({k: v for k, v in dict(message).items() if v not in (None, [], "")})
        except Exception:  # pragma: no cover - defensive: never break Rasa's turn
            log.exception("could not collect a bot message")

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        self.messages.append({"text": text})


class StreamingOutput(CollectingOutput):
    """Sends each bot message to the gateway the moment Rasa utters it (one NDJSON line), as Rasa's
    stock channels emit mid-turn: the visitor does not wait for the next-action prediction and
    the tracker save that follow. The actions' requests (handoff, offline ticket) are held back
    for the turn's last line."""

    def __init__(self, resp: Any) -> None:
        super().__init__()
        self.resp = resp
        self.requests: Dict[Text, Dict[Text, Any]] = {}

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        await super().send_response(recipient_id, message)
        try:
            visible, requests = split_requests(self.messages[-1:])
            self.requests.update(requests)
            for m in visible:
                await self.resp.send(json.dumps({"message": m}, separators=(",", ":")) + "\n")
        except Exception as exc:  # the gateway went away: Rasa's turn must still complete
            log.debug("could not stream a bot message: %s", exc)


# Custom payloads the actions hand the gateway (never shown to the visitor): the handoff request of
# action_handoff, and the offline ticket of action_submit_ticket.
REQUESTS = ("handoff", "offline_ticket")


def split_requests(messages: List[Dict[Text, Any]]) -> tuple[List[Dict[Text, Any]], Dict[Text, Dict[Text, Any]]]:
    """Take the actions' requests (custom payloads ``{"handoff": {...}}``, ``{"offline_ticket":
    {...}}``) out of the bot's messages: what the visitor sees, and the requests by name."""
    visible: List[Dict[Text, Any]] = []
    requests: Dict[Text, Dict[Text, Any]] = {}
    for m in messages:
        custom = m.get("custom")
        found = [k for k in REQUESTS if isinstance(custom, dict) and isinstance(custom.get(k), dict)]
        if found:
            assert isinstance(custom, dict)
            requests.update({k: custom[k] for k in found})
            rest = {k: v for k, v in m.items() if k not in ("custom", "timestamp", "utter_action")}
            if rest.get("text"):
                visible.append(rest)
            continue
        visible.append({k: v for k, v in m.items() if k != "timestamp"})
    return visible, requests


def _requests(requests: Dict[Text, Dict[Text, Any]]) -> Dict[Text, Any]:
    """How a turn's answer names the actions' requests."""
    return {"handoff": requests.get("handoff"), "ticket": requests.get("offline_ticket")}


def _answer(messages: List[Dict[Text, Any]], **extra: Any) -> Dict[Text, Any]:
    visible, requests = split_requests(messages)
    return {"messages": visible, **_requests(requests), **extra}


async def parse_many(agent: Any, texts: List[Text]) -> List[Dict[Text, Any]]:
    """What ``agent.parse_message`` makes of each text, with one run of the NLU graph for all of
    them: a batch-aware classifier (``handoff_channel.nlu.batch_diet.BatchDIETClassifier``) then
    predicts them in one call. Falls back to one parse per text where the graph is not ours to
    run (an NLU server) or answers with a different number of messages."""
    processor = agent.processor
    if len(texts) < 2 or processor is None or processor.http_interpreter is not None:
        return [await agent.parse_message(text) for text in texts]
    target = processor.model_metadata.nlu_target
    parsed = processor.graph_runner.run(
        inputs={
            PLACEHOLDER_MESSAGE: [UserMessage(text) for text in texts],
            PLACEHOLDER_TRACKER: DialogueStateTracker.from_events(DEFAULT_SENDER_ID, []),
        },
        targets=[target],
    )[target]
    if len(parsed) != len(texts):
        return [await agent.parse_message(text) for text in texts]
    out = []
    for message in parsed:
        # The shape MessageProcessor.parse_message gives, and what it does after the graph.
        parse: Dict[Text, Any] = {"text": "", "intent": {"name": None, "confidence": 0.0}, "entities": []}
        parse.update(message.as_dict(only_output_properties=True))
        processor._update_full_retrieval_intent(parse)
        processor._check_for_unseen_features(parse)
        out.append(parse)
    return out


def _error(status: int, code: str, message: str) -> HTTPResponse:
    return response.json({"error": {"code": code, "message": message}}, status=status)


def _bot_events_after(events: List[Any], predicate: Callable[[Any], bool]) -> Optional[List[Dict[Text, Any]]]:
    """The bot messages logged after the last user event matching ``predicate`` (None if absent)."""
    start = None
    for i in range(len(events) - 1, -1, -1):
        if isinstance(events[i], UserUttered) and predicate(events[i]):
            start = i
            break
    if start is None:
        return None
    out = []
    for e in events[start + 1:]:
        if isinstance(e, UserUttered):
            break
        if isinstance(e, BotUttered):
            out.append(e.message())
    return out


def _flag(name: str, value: Any, default: bool) -> bool:
    """A yes/no option of credentials.yml; ``${VAR}`` arrives as a string."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"handoff_channel.rasa_channel.HandoffInput: {name} expected true or false, got {value!r}.")


async def _settle_gc(_app: Any, _loop: Any) -> None:
    """Take what Rasa loaded at start-up (TensorFlow, the model, the graph) out of the garbage
    collector's sight, and make full collections rarer.

    Rasa with a loaded model holds ~740,000 tracked objects; every full collection walked them all
    and stopped every bot turn for 300-500 ms under load. Frozen objects are still freed by
    reference counting; only cycles among them are never looked for again, which is what a model
    that lives as long as the process needs. Young garbage (a turn's tracker and events) is
    collected as often as before. ``tune_gc: false`` in credentials.yml (or
    ``HANDOFF_RASA_TUNE_GC=false`` in Rasa's environment) turns this off, e.g. for a Rasa that swaps
    models at run time (the replaced model's cycles would stay)."""
    log.info("handoff channel: %d objects loaded at start-up taken out of the garbage collector's sight",
             freeze_startup_objects())


class HandoffInput(InputChannel):
    """Bridge between the handoff gateway and Rasa's agent."""

    @classmethod
    def name(cls) -> Text:
        return "handoff"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "HandoffInput":
        credentials = credentials or {}
        token = str(credentials.get("token") or "").strip()
        if not token or token.startswith("${"):
            raise ValueError(
                "handoff_channel.rasa_channel.HandoffInput needs a 'token' in credentials.yml "
                "(set HANDOFF_RASA_TOKEN to the same secret for the gateway and for rasa run)."
            )
        return cls(token=token, tune_gc=_flag("tune_gc", credentials.get("tune_gc", os.environ.get("HANDOFF_RASA_TUNE_GC")), default=True))

    def __init__(self, token: Text, tune_gc: bool = True) -> None:
        self.token = token
        self.tune_gc = tune_gc

    def _authorised(self, request: Request) -> bool:
        given = request.headers.get("X-Handoff-Token", "")
        return hmac.compare_digest(given.encode(), self.token.encode())

    @staticmethod
    def _body(request: Request) -> Dict[Text, Any]:
        if len(request.body or b"") > MAX_BODY_BYTES:
            raise ValueError("body too large")
        data = json.loads(request.body or b"null")
        if not isinstance(data, dict) or not isinstance(data.get("conversation_id"), str) or not data["conversation_id"]:
            raise ValueError("expected a JSON object with a 'conversation_id'")
        return data

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint("handoff_bridge", __name__)
        channel = self

        async def guarded(
            request: Request, handler: Callable[[Any, Dict[Text, Any]], Awaitable[HTTPResponse]]
        ) -> HTTPResponse:
            if not channel._authorised(request):
                return _error(401, "unauthorized", "Missing or wrong X-Handoff-Token.")
            try:
                body = channel._body(request)
            except (ValueError, json.JSONDecodeError) as exc:
                return _error(400, "invalid_payload", str(exc))
            agent = getattr(request.app.ctx, "agent", None)
            if agent is None or not agent.is_ready():
                # 503: the gateway keeps the item and retries once the model is loaded.
                return _error(503, "not_ready", "No model is loaded yet.")
            return await handler(agent, body)

        if channel.tune_gc:
            # Rasa loads the model before the server starts (a before_server_start listener), so
            # by now the process holds what it keeps for its whole life.
            bp.listener("after_server_start")(_settle_gc)

        @bp.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            agent = getattr(request.app.ctx, "agent", None)
            return response.json({
                "status": "ok", "model_ready": bool(agent and agent.is_ready()),
                "gc": {"frozen": gc.get_freeze_count(), "thresholds": list(gc.get_threshold())},
            })

        @bp.route("/turn", methods=["POST"])
        async def turn(request: Request) -> HTTPResponse:
            return await guarded(request, lambda agent, body: channel._turn(agent, body, on_new_message, request))

        @bp.route("/log", methods=["POST"])
        async def log_human_stretch(request: Request) -> HTTPResponse:
            return await guarded(request, channel._log)

        @bp.route("/handback", methods=["POST"])
        async def handback(request: Request) -> HTTPResponse:
            return await guarded(request, channel._handback)

        return bp

    # -- routes --------------------------------------------------------------------------------
    async def _turn(
        self, agent: Any, body: Dict[Text, Any], on_new_message: Callable[[UserMessage], Awaitable[Any]],
        request: Optional[Request] = None,
    ) -> HTTPResponse:
        conversation_id = body["conversation_id"]
        text = body.get("text")
        message_id = body.get("message_id")
        if not isinstance(text, str) or not isinstance(message_id, str):
            return _error(400, "invalid_payload", "'text' and 'message_id' must be strings.")
        metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        if body.get("retry"):
            # The gateway may not have seen our answer. If the turn was already processed, answer
            # with what the bot said then instead of running it twice.
            tracker = await agent.tracker_store.retrieve(conversation_id)
            if tracker is not None:
                said = _bot_events_after(list(tracker.events), lambda e: e.message_id == message_id)
                if said is not None:
                    return response.json(_answer(said, parse=None, replayed=True))
        # Parse first so the gateway learns intent and confidence without re-reading the tracker;
        # Rasa then skips NLU because parse_data is given.
        parse = await agent.parse_message(text)
        intent = parse.get("intent") or {}
        summary = {
            "intent": intent.get("name"),
            "confidence": intent.get("confidence"),
            "entities": [{"entity": e.get("entity"), "value": e.get("value")} for e in parse.get("entities") or []],
            **({"sentiment": parse["sentiment"]} if "sentiment" in parse else {}),
        }

        def user_message(out: OutputChannel) -> UserMessage:
            return UserMessage(
                text, out, conversation_id, parse_data=parse, input_channel=self.name(),
                message_id=message_id, metadata=metadata,
            )

        if request is not None and "application/x-ndjson" in request.headers.get("accept", ""):
            # Streamed: a line per bot message as it is uttered, then the turn's result (a reply
            # without that last line is incomplete: the gateway asks again with retry).
            resp = await request.respond(content_type="application/x-ndjson")
            streaming = StreamingOutput(resp)
            await on_new_message(user_message(streaming))
            done = {"done": True, **_requests(streaming.requests), "parse": summary}
            try:
                await resp.send(json.dumps(done, separators=(",", ":")) + "\n", end_stream=True)
            except Exception as exc:  # the gateway went away; it asks again with retry
                log.debug("could not finish a streamed turn: %s", exc)
            return None  # type: ignore[return-value]
        out = CollectingOutput()
        await on_new_message(user_message(out))
        return response.json(_answer(out.messages, parse=summary))

    async def _log(self, agent: Any, body: Dict[Text, Any]) -> HTTPResponse:
        conversation_id = body["conversation_id"]
        entries = body.get("entries")
        if not isinstance(entries, list):
            return _error(400, "invalid_payload", "'entries' must be a list.")
        events: List[Any] = []
        # What NLU made of each visitor line, for the gateway: a visitor waiting in the queue who
        # says "never mind" (or clicks the button) is taken back to the bot.
        intents: Dict[Text, Dict[Text, Any]] = {}
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
                return _error(400, "invalid_payload", "each entry needs a 'role' and a 'text'.")
        # NLU runs for the record (intent, entities, sentiment), never the policies: all the
        # visitor lines of the batch in one run.
        parses = iter(await parse_many(agent, [e["text"] for e in entries if e.get("role") == "visitor"]))
        for entry in entries:
            ts = entry.get("timestamp") if isinstance(entry.get("timestamp"), (int, float)) else None
            mid = str(entry.get("message_id") or "")
            if entry.get("role") == "visitor":
                parse = next(parses)
                if mid:
                    top = parse.get("intent") or {}
                    intents[mid] = {"name": top.get("name"), "confidence": top.get("confidence")}
                events.append(
                    UserUttered(
                        entry["text"], parse.get("intent"), parse.get("entities"), parse,
                        timestamp=ts, input_channel=self.name(), message_id=mid or None,
                        metadata={"handoff": "human_stretch"},
                    )
                )
            else:
                meta: Dict[Text, Any] = {"message_id": mid, "handoff": "human_stretch"}
                if entry.get("role") == "agent":
                    meta.update(human_agent=entry.get("author"), agent_name=entry.get("author_name"))
                else:
                    meta.update(handoff_system=True)
                events.append(BotUttered(entry["text"], {}, meta, timestamp=ts))
        async with agent.lock_store.lock(conversation_id):
            tracker = await agent.processor.get_tracker(conversation_id)
            seen = {e.message_id for e in tracker.events if isinstance(e, UserUttered) and e.message_id}
            seen |= {
                e.metadata.get("message_id") for e in tracker.events
                if isinstance(e, BotUttered) and e.metadata.get("message_id")
            }
            added = 0
            for event in events:
                key = event.message_id if isinstance(event, UserUttered) else event.metadata.get("message_id")
                if key and key in seen:
                    continue  # a retry of an entry already recorded
                tracker.update(event)
                added += 1
            if added:
                await agent.tracker_store.save(tracker)
        return response.json({"logged": added, "intents": intents})

    async def _handback(self, agent: Any, body: Dict[Text, Any]) -> HTTPResponse:
        conversation_id = body["conversation_id"]
        raw_facts = body.get("facts")
        facts: Dict[Text, Any] = raw_facts if isinstance(raw_facts, dict) else {}
        entities: Dict[Text, Text] = {
            "handoff_outcome": str(body.get("outcome") or "continue"),
            "handoff_agent": str(body.get("agent_name") or body.get("agent") or "our team"),
        }
        if body.get("note"):
            entities["handoff_note"] = str(body["note"])
        for key, value in facts.items():
            if isinstance(key, str) and key and not key.startswith("handoff_"):
                entities[key] = str(value)
        out = CollectingOutput()
        async with agent.lock_store.lock(conversation_id):
            tracker = await agent.processor.get_tracker(conversation_id)
            if body.get("retry") and not tracker.is_paused():
                said = _bot_events_after(
                    list(tracker.events), lambda e: (e.intent or {}).get("name") == HANDOFF_INTENT
                )
                if said is not None:
                    return response.json(_answer(said, replayed=True))
            # The protocol that held against fallback rewinds and /restart: resume, close the
            # paused stretch with action_listen, then a real bot turn through an external intent.
            tracker.update(ConversationResumed())
            tracker.update(ActionExecuted("action_listen"))
            await agent.processor.trigger_external_user_uttered(HANDOFF_INTENT, entities, tracker, out)
        return response.json(_answer(out.messages))
