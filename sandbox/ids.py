"""Mattermost-style identifiers and timestamps."""

from __future__ import annotations

import base64
import os
import time

# Mattermost's model.NewId (server/public/model/utils.go): a random (version 4) UUID,
# base32-encoded without padding in this alphabet: 26 characters, the last holding 3 bits.
ALPHABET = "ybndrfg8ejkmcpqxot1uwisza345h769"
_FROM_RFC4648 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ALPHABET.encode("ascii"))


def new_id() -> str:
    """Return a fresh id exactly as Mattermost makes one: one read of 16 random bytes, one encoding.

    (26 ``secrets.choice`` calls used to cost the sandbox a seventh of its time.)
    """
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # UUID version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    return base64.b32encode(raw)[:26].translate(_FROM_RFC4648).decode("ascii")


def is_valid_id(value: object) -> bool:
    """Mirror Mattermost's ``IsValidId``: exactly 26 ASCII letters or digits."""
    return isinstance(value, str) and len(value) == 26 and value.isascii() and value.isalnum()


_last_ms = 0
# Simulated time: how far the sandbox clock is ahead of the wall clock. Process-wide, so every
# timestamp and lifetime (posts, edit limit, trigger ids, hooks) moves together.
_offset_ms = 0


def now_ms() -> int:
    """Milliseconds since the epoch (plus the simulated offset), strictly increasing within this process.

    Strict monotonicity keeps ``since``/``update_at`` catch-up queries exact even when
    several changes happen within one millisecond.
    """
    global _last_ms
    ms = int(time.time() * 1000) + _offset_ms
    if ms <= _last_ms:
        ms = _last_ms + 1
    _last_ms = ms
    return ms


def advance_clock(seconds: float) -> int:
    """Move the simulated clock forward by ``seconds`` (no waiting); returns the new ``now_ms()``."""
    global _offset_ms, _last_ms
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
        raise ValueError("the clock only moves forward: give a number of seconds >= 0")
    step = int(seconds * 1000)
    before = now_ms()
    _offset_ms += step
    _last_ms = max(_last_ms, before + step - 1)  # a full step past the last time handed out
    return now_ms()


def clock_offset_ms() -> int:
    """How far the simulated clock is ahead of the wall clock."""
    return _offset_ms


def reset_clock() -> None:
    """Back to the wall clock (a closing sandbox that advanced it calls this)."""
    global _offset_ms, _last_ms
    _offset_ms = 0
    _last_ms = 0
