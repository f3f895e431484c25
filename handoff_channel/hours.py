"""Business hours: when people staff the inbox. Outside them a handoff becomes an offline ticket at
once instead of a wait nobody will answer.

Written the way a support lead would say it, in ``HANDOFF_BUSINESS_HOURS``::

    mon-fri 09:00-18:00; sat 10:00-14:00

Days are ``mon`` .. ``sun``, as a range (``mon-fri``), a list (``mon,wed,fri``) or ``daily``; each
span ends after it starts on the same day (``24:00`` closes at midnight; for a night shift write two
spans). Times are in ``HANDOFF_TIMEZONE`` (an IANA name such as ``Europe/Berlin``; default UTC).
An empty value means always open."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^(?P<days>[a-z,\-]+)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})$")


def _minutes(text: str, whole: str) -> int:
    hours, minutes = (int(part) for part in text.split(":"))
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise ValueError(f"{text!r} in {whole!r} is not a time of day (00:00-24:00)")
    return hours * 60 + minutes


def _days(text: str, whole: str) -> list[int]:
    if text == "daily":
        return list(range(7))
    out: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"{part!r} in {whole!r}: days are {', '.join(DAYS)} or daily")
        a, b = DAYS.index(first), DAYS.index(last or first)
        out.extend(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return out


@dataclass(frozen=True)
class BusinessHours:
    spans: tuple[tuple[int, int, int], ...]  # (weekday 0 = Monday, start minute, end minute)
    timezone: str
    text: str

    @classmethod
    def parse(cls, text: str, timezone: str = "UTC") -> Optional["BusinessHours"]:
        """None for an empty value (always open). A ValueError says what is wrong and where."""
        clean = " ".join(text.strip().lower().split())
        if not clean:
            return None
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"HANDOFF_TIMEZONE {timezone!r} is not a known time zone (e.g. Europe/Berlin)") from None
        spans: list[tuple[int, int, int]] = []
        for chunk in (c.strip() for c in clean.split(";")):
            if not chunk:
                continue
            match = _SPAN.match(chunk)
            if match is None:
                raise ValueError(f"HANDOFF_BUSINESS_HOURS: {chunk!r} should look like 'mon-fri 09:00-18:00'")
            start, end = _minutes(match["start"], chunk), _minutes(match["end"], chunk)
            if end <= start:
                raise ValueError(f"HANDOFF_BUSINESS_HOURS: {chunk!r} must end after it starts")
            spans.extend((day, start, end) for day in _days(match["days"], chunk))
        return cls(tuple(sorted(spans)), timezone, text.strip())

    def is_open(self, ts: float) -> bool:
        local = datetime.fromtimestamp(ts, ZoneInfo(self.timezone))
        minute = local.hour * 60 + local.minute
        return any(day == local.weekday() and start <= minute < end for day, start, end in self.spans)

    def describe(self) -> str:
        """For the visitor: ``Mon-Fri 09:00-18:00; Sat 10:00-14:00 (Europe/Berlin)``."""
        by_hours: dict[tuple[int, int], list[int]] = {}
        for day, start, end in self.spans:
            by_hours.setdefault((start, end), []).append(day)
        parts = []
        for (start, end), days in sorted(by_hours.items(), key=lambda item: min(item[1])):
            parts.append(f"{_day_ranges(sorted(set(days)))} {_hhmm(start)}-{_hhmm(end)}")
        return "; ".join(parts) + f" ({self.timezone})"


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _day_ranges(days: list[int]) -> str:
    runs: list[list[int]] = []
    for day in days:
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    names = [DAYS[r[0]].title() if len(r) == 1 else f"{DAYS[r[0]].title()}-{DAYS[r[-1]].title()}" for r in runs]
    return ",".join(names)
