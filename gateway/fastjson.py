"""JSON of the bot's traffic with Mattermost (REST bodies and answers, WebSocket events) through orjson.

A start sends and reads its ~12 KB card several times (the post, its answer, the ``posted`` and the
pin's ``post_edited`` events); the standard library's encoder takes ~80 µs for it, orjson a tenth.
What is read or sent is the same JSON (sent as UTF-8 rather than with backslash-u escapes, which
the server reads alike). Where orjson refuses what the standard library accepts (sending a
non-string key, an integer beyond 64 bits or a lone surrogate; reading NaN or Infinity) the
standard library does it, exactly as before, so nothing the bot did before fails now. An integer
beyond 64 bits is read as a float: the server keeps its numbers as int64 and free-form JSON (a
post's props) as float64, so none larger ever comes from it. Signatures and digests keep their own
canonical encoders (gateway/signing.py, gateway/cards.py): their bytes must never change.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(raw: bytes | bytearray | str) -> Any:
    """``json.loads``: the same values, the same ``ValueError`` for what is not JSON."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def dumps(value: Any) -> bytes:
    """UTF-8 JSON of ``value``, compact; ``json.dumps`` (as aiohttp sent it) for what orjson refuses."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is one
        return json.dumps(value).encode()
