"""Mattermost-style identifiers: 26 characters of lowercase base32."""

from __future__ import annotations

import base64
import re
import uuid

#: The alphabet Mattermost uses for its ids (z-base-32 ordering).
ID_ALPHABET = "ybndrfg8ejkmcpqxot1uwisza345h769"
ID_LENGTH = 26

_TO_MATTERMOST = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ID_ALPHABET)
_ID_PATTERN = re.compile(f"^[{re.escape(ID_ALPHABET)}]{{{ID_LENGTH}}}$")


def new_id() -> str:
    """Return a fresh random 26-character id (a UUID4 in Mattermost's base32)."""
    encoded = base64.b32encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
    return encoded.translate(_TO_MATTERMOST)


def is_valid_id(value: str) -> bool:
    """True if ``value`` has the shape of a Mattermost id."""
    return bool(_ID_PATTERN.match(value))
