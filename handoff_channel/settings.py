"""Every default of the gateway in one place, read from the environment once at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .hours import BusinessHours

REPO_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value else default


@dataclass(frozen=True)
class Settings:
    db_url: str = f"sqlite:///{REPO_ROOT / '.run' / 'handoff.db'}"
    db_pool_size: int = 8  # PostgreSQL connections per gateway (SQLite: one writer thread)
    bus_url: str = "memory://"
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_token: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    # Longest visitor or agent message accepted, in characters. Longer ones are refused with a
    # clear error, never truncated silently.
    max_message_chars: int = 4000
    max_body_bytes: int = 64 * 1024
    session_ttl_s: float = 12 * 3600
    cookie_secure: bool = False
    allowed_origins: tuple[str, ...] = ("*",)
    # How long one bot turn may take before the gateway retries it (Rasa answers in ~25 ms; a
    # slow custom action can take longer).
    rasa_timeout_s: float = 60.0
    rasa_retry_max_s: float = 5.0
    # The human stretch is recorded in Rasa's tracker in batches: a record waits up to this long
    # for the lines after it (the agent's answer, the visitor's next line), so Rasa reads and
    # saves the tracker once per batch instead of once per line. Anything else the outbox holds
    # (a bot turn, a hand-back) sends the records at once. 0: send every record right away.
    rasa_log_batch_s: float = 1.0
    # While an agent has claimed the conversation nobody reads Rasa's copy of it until the hand-back
    # (the inbox reads the store), so its lines wait longer and go to Rasa in fewer, larger batches:
    # Rasa reads and saves the tracker once for several lines. The hand-back (or a transfer back
    # to the queue) sends whatever waits first, so the bot still resumes knowing the whole stretch.
    # Costs the hand-back the NLU of at most this many seconds of visitor lines. 0 (or less than
    # rasa_log_batch_s): rasa_log_batch_s.
    rasa_log_claimed_batch_s: float = 60.0
    sse_keepalive_s: float = 15.0
    # Queue and routing. manual: agents pick from the queue; auto: each queued conversation goes
    # to the least-loaded available agent (of its team, when agents have teams) with free capacity.
    routing: str = "manual"
    default_capacity: int = 5
    # An agent whose inbox sent no request, heartbeat or SSE keep-alive for this long becomes away.
    heartbeat_timeout_s: float = 90.0
    # A queued conversation's priority goes up by one after this wait (0: never).
    priority_wait_s: float = 300.0
    # Expected wait told to visitors: median of this many recent queued -> claimed waits.
    wait_samples: int = 20
    # Signed outbound webhooks (HMAC-SHA256 of the body with the secret, header X-Handoff-Signature).
    webhook_urls: tuple[str, ...] = ()
    webhook_secret: str = ""
    webhook_timeout_s: float = 5.0
    # A conversation queued this long without a claim: the visitor is offered to keep waiting,
    # leave a message or go back to the assistant, and agents are alerted again (0: never).
    unclaimed_after_s: float = 180.0
    # When people staff the inbox (handoff_channel.hours; empty: always). Outside these hours, and
    # when no agent is available, a handoff becomes an offline ticket at once.
    business_hours: str = ""
    timezone: str = "UTC"
    # How sure the bot's NLU must be that a waiting visitor's words are a choice ("never mind",
    # "I'll leave a message") before the gateway acts on them; the buttons are always sure.
    choice_min_confidence: float = 0.7
    ui_dir: Path = field(default_factory=lambda: REPO_ROOT / "inbox_ui")
    # Shown to the visitor when the widget connects for the first time (empty: nothing).
    instance_id: str = field(default_factory=lambda: os.environ.get("HOSTNAME", "gw") + f"-{os.getpid()}")

    @property
    def hours(self) -> Optional[BusinessHours]:
        return BusinessHours.parse(self.business_hours, self.timezone)

    @classmethod
    def from_env(cls) -> "Settings":
        d = cls()
        origins = _env("HANDOFF_ALLOWED_ORIGINS", "*")
        # Checked here so a typo stops the gateway at start with a plain message.
        BusinessHours.parse(_env("HANDOFF_BUSINESS_HOURS", ""), _env("HANDOFF_TIMEZONE", d.timezone))
        if _env("HANDOFF_WEBHOOK_URLS", "").strip() and not _env("HANDOFF_WEBHOOK_SECRET", ""):
            raise ValueError("HANDOFF_WEBHOOK_URLS needs HANDOFF_WEBHOOK_SECRET: receivers check the signature")
        return cls(
            db_url=_env("HANDOFF_DB_URL", d.db_url),
            db_pool_size=int(_env("HANDOFF_DB_POOL_SIZE", str(d.db_pool_size))),
            bus_url=_env("HANDOFF_BUS_URL", d.bus_url),
            rasa_url=_env("HANDOFF_RASA_URL", d.rasa_url).rstrip("/"),
            rasa_token=_env("HANDOFF_RASA_TOKEN", d.rasa_token),
            host=_env("HANDOFF_HOST", d.host),
            port=int(_env("HANDOFF_PORT", str(d.port))),
            max_message_chars=int(_env("HANDOFF_MAX_MESSAGE_CHARS", str(d.max_message_chars))),
            session_ttl_s=float(_env("HANDOFF_SESSION_TTL_S", str(d.session_ttl_s))),
            cookie_secure=_env("HANDOFF_COOKIE_SECURE", "0") in ("1", "true", "yes"),
            allowed_origins=tuple(o.strip() for o in origins.split(",") if o.strip()),
            rasa_timeout_s=float(_env("HANDOFF_RASA_TIMEOUT_S", str(d.rasa_timeout_s))),
            rasa_log_batch_s=float(_env("HANDOFF_RASA_LOG_BATCH_S", str(d.rasa_log_batch_s))),
            rasa_log_claimed_batch_s=float(
                _env("HANDOFF_RASA_LOG_CLAIMED_BATCH_S", str(d.rasa_log_claimed_batch_s))
            ),
            routing=_routing(_env("HANDOFF_ROUTING", d.routing)),
            default_capacity=int(_env("HANDOFF_DEFAULT_CAPACITY", str(d.default_capacity))),
            heartbeat_timeout_s=float(_env("HANDOFF_HEARTBEAT_TIMEOUT_S", str(d.heartbeat_timeout_s))),
            priority_wait_s=float(_env("HANDOFF_PRIORITY_WAIT_S", str(d.priority_wait_s))),
            webhook_urls=tuple(u.strip() for u in _env("HANDOFF_WEBHOOK_URLS", "").split(",") if u.strip()),
            webhook_secret=_env("HANDOFF_WEBHOOK_SECRET", d.webhook_secret),
            unclaimed_after_s=float(_env("HANDOFF_UNCLAIMED_AFTER_S", str(d.unclaimed_after_s))),
            business_hours=_env("HANDOFF_BUSINESS_HOURS", d.business_hours),
            timezone=_env("HANDOFF_TIMEZONE", d.timezone),
            choice_min_confidence=float(_env("HANDOFF_CHOICE_MIN_CONFIDENCE", str(d.choice_min_confidence))),
        )


def _routing(value: str) -> str:
    value = value.strip().lower()
    if value not in ("manual", "auto"):
        raise ValueError(f"HANDOFF_ROUTING must be manual or auto, not {value!r}")
    return value
