"""Mattermost-style identifiers: 26 characters of lowercase base32."""

from __future__ import annotations

import base64
import re
import secrets

#: The alphabet Mattermost uses for its ids (z-base-32 ordering).
ID_ALPHABET = "ybndrfg8ejkmcpqxot1uwisza345h769"
ID_LENGTH = 26

_TO_MATTERMOST = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ID_ALPHABET.encode("ascii"))
_ID_PATTERN = re.compile(f"^[{re.escape(ID_ALPHABET)}]{{{ID_LENGTH}}}$")


def new_id() -> str:
    """Return a fresh random 26-character id (a version 4 UUID in Mattermost's base32, as model.NewId).

    One read of 16 bytes from ``secrets`` and one encoding, translated as bytes: a start makes ~19
    ids, and building a ``uuid.UUID`` and translating a ``str`` cost several times more."""
    raw = bytearray(secrets.token_bytes(16))
    raw[6] = raw[6] & 0x0F | 0x40  # UUID version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    return base64.b32encode(raw)[:26].translate(_TO_MATTERMOST).decode("ascii")


def is_valid_id(value: str) -> bool:
    """True if ``value`` has the shape of a Mattermost id."""
    return bool(_ID_PATTERN.match(value))
