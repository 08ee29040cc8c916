"""Durations people type and read: ``15m``, ``1h``, ``1h30m``, ``2d``; ``none`` for no duration.

:func:`parse_duration` reads them (whole minutes only), :func:`format_duration` writes the one
canonical form (``parse_duration(format_duration(ms)) == ms``), :func:`describe_duration` the words
a message uses ("1 h 30 min").
"""

from __future__ import annotations

import re

from .errors import ValidationError

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

#: The words that mean "no duration" (no next update, no reminder).
NONE_WORDS = ("none", "off", "never", "no")

_UNITS = {"d": DAY_MS, "h": HOUR_MS, "m": MINUTE_MS}
_ALIASES = {"day": "d", "days": "d", "hour": "h", "hours": "h", "hr": "h", "hrs": "h",
            "min": "m", "mins": "m", "minute": "m", "minutes": "m"}
_PART = re.compile(r"([0-9]{1,5})\s*([a-z]+)")
_HELP = "Write a duration such as 15m, 30m, 1h, 4h or 1h30m, or none."


def parse_duration(text: str, *, field: str | None = None) -> int | None:
    """Milliseconds of a typed duration, or None for ``none`` (and the other NONE_WORDS)."""
    raw = text.strip().lower() if isinstance(text, str) else ""
    if raw in NONE_WORDS:
        return None
    if raw.isdigit():  # a bare number is minutes
        raw += "m"
    compact = raw.replace(" ", "")
    parts = _PART.findall(raw)
    if not raw or not parts or "".join(n + u for n, u in parts) != compact:
        raise ValidationError(f'"{text.strip()[:24] if isinstance(text, str) else ""}" is not a duration. {_HELP}',
                              field=field)
    total = 0
    seen: set[str] = set()
    for number, word in parts:
        unit = _ALIASES.get(word, word)
        if unit not in _UNITS or unit in seen:
            raise ValidationError(f'"{text.strip()[:24]}" is not a duration. {_HELP}', field=field)
        seen.add(unit)
        total += int(number) * _UNITS[unit]
    return total


def format_duration(ms: int | None) -> str:
    """The canonical form: ``1d2h30m``, ``45m``; ``none`` for None. Seconds are dropped."""
    if ms is None:
        return "none"
    minutes = max(0, ms) // MINUTE_MS
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    text = (f"{days}d" if days else "") + (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text or "0m"


def describe_duration(ms: int | None) -> str:
    """Words for a message: ``1 h 30 min``, ``15 min``, ``2 d``; ``no next update`` for None."""
    if ms is None:
        return "no next update"
    minutes = max(0, ms) // MINUTE_MS
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    words = [f"{n} {unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "min")) if n]
    return " ".join(words) or "0 min"
