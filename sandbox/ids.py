"""Mattermost-style identifiers and timestamps."""

from __future__ import annotations

import secrets
import time

# Mattermost encodes 16 random bytes with this base32 alphabet and keeps 26 characters.
ALPHABET = "ybndrfg8ejkmcpqxot1uwisza345h769"


def new_id() -> str:
    """Return a fresh 26-character id drawn from Mattermost's base32 alphabet."""
    return "".join(secrets.choice(ALPHABET) for _ in range(26))


def is_valid_id(value: object) -> bool:
    """Mirror Mattermost's ``IsValidId``: exactly 26 ASCII letters or digits."""
    return isinstance(value, str) and len(value) == 26 and value.isascii() and value.isalnum()


_last_ms = 0


def now_ms() -> int:
    """Milliseconds since the epoch, strictly increasing within this process.

    Strict monotonicity keeps ``since``/``update_at`` catch-up queries exact even when
    several changes happen within one millisecond.
    """
    global _last_ms
    ms = int(time.time() * 1000)
    if ms <= _last_ms:
        ms = _last_ms + 1
    _last_ms = ms
    return ms
