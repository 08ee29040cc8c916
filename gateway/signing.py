"""Signatures for what the bot hands to Mattermost and gets back: button contexts and dialog state.

Mattermost forwards button clicks and dialog submissions unsigned, and anyone who can reach the
bot's port can POST them.  So every button context and dialog state the bot creates carries an
HMAC made with the bot's secret, and callbacks are accepted only when it verifies.  Replays are
stopped with the per-click trigger id Mattermost puts in every action callback (unique, bound to
the clicking user, time-stamped) and with single-use nonces in dialog state.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable


class SignatureError(Exception):
    """A callback's signature, freshness or binding did not verify."""


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """HMAC-SHA256 over canonical JSON, with a purpose label so one signature never fits another use."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"command-center:" + secret.encode()).digest()

    def sign(self, purpose: str, payload: Any) -> str:
        return _b64(hmac.new(self._key, _canonical([purpose, payload]), hashlib.sha256).digest())

    def verify(self, purpose: str, payload: Any, signature: object) -> bool:
        if not isinstance(signature, str):
            return False
        return hmac.compare_digest(self.sign(purpose, payload), signature)

    # Button contexts -------------------------------------------------------------------------

    def action_context(self, action: str, channel_id: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``integration.context`` of a button: the action, its arguments, bound to one channel."""
        body = {"a": action, "c": channel_id, "v": args or {}}
        return {**body, "s": self.sign("action", body)}

    def open_action_context(self, context: object, channel_id: str) -> tuple[str, dict[str, Any]]:
        """Verify a button context from a callback; return (action, args)."""
        if not isinstance(context, dict):
            raise SignatureError("missing context")
        body = {"a": context.get("a"), "c": context.get("c"), "v": context.get("v")}
        if not isinstance(body["a"], str) or not isinstance(body["v"], dict):
            raise SignatureError("malformed context")
        if not self.verify("action", body, context.get("s")):
            raise SignatureError("bad context signature")
        if body["c"] != channel_id:
            raise SignatureError("context used outside its channel")
        return body["a"], body["v"]

    # Dialog state ---------------------------------------------------------------------------

    def dialog_state(self, dialog: str, user_id: str, channel_id: str, args: dict[str, Any] | None = None,
                     *, lifetime_s: int = 3600, now_ms: int | None = None) -> str:
        """Opaque ``state`` for a dialog: who it is for, where, until when, and a single-use nonce."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        body = {"d": dialog, "u": user_id, "c": channel_id, "e": now_ms + lifetime_s * 1000,
                "n": secrets.token_urlsafe(12), "v": args or {}}
        return _b64(_canonical(body)) + "." + self.sign("dialog", body)

    def open_dialog_state(self, state: object, dialog: str, user_id: str, channel_id: str,
                          *, now_ms: int | None = None) -> DialogState:
        if not isinstance(state, str) or state.count(".") != 1:
            raise SignatureError("missing or malformed state")
        encoded, signature = state.split(".")
        try:
            body = json.loads(_unb64(encoded))
        except (ValueError, binascii.Error):
            raise SignatureError("undecodable state") from None
        if not isinstance(body, dict) or not self.verify("dialog", body, signature):
            raise SignatureError("bad state signature")
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        if body.get("d") != dialog:
            raise SignatureError("state belongs to another dialog")
        if body.get("u") != user_id:
            raise SignatureError("state belongs to another user")
        if body.get("c") != channel_id:
            raise SignatureError("state belongs to another channel")
        if not isinstance(body.get("e"), int) or body["e"] < now_ms:
            raise SignatureError("dialog expired")
        if not isinstance(body.get("v"), dict) or not isinstance(body.get("n"), str):
            raise SignatureError("malformed state")
        return DialogState(nonce=body["n"], args=body["v"])


@dataclass(frozen=True)
class DialogState:
    nonce: str
    args: dict[str, Any]


class OnceCache:
    """Remembers keys for ``ttl_s`` seconds; ``add`` returns False for a key already present."""

    def __init__(self, ttl_s: float, max_items: int = 100_000) -> None:
        self.ttl_s = ttl_s
        self.max_items = max_items
        self._seen: OrderedDict[str, float] = OrderedDict()

    def _expire(self, now: float) -> None:
        while self._seen:
            at = next(iter(self._seen.values()))
            if now - at < self.ttl_s and len(self._seen) <= self.max_items:
                break
            self._seen.popitem(last=False)

    def __contains__(self, key: str) -> bool:
        self._expire(time.monotonic())
        return key in self._seen

    def add(self, key: str) -> bool:
        now = time.monotonic()
        self._expire(now)
        if key in self._seen:
            return False
        self._seen[key] = now
        return True


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class TriggerGuard:
    """Rejects replayed callbacks using Mattermost's trigger id.

    A trigger id is base64 of ``"<client id>:<user id>:<millis>:<signature>"``, minted by the
    server for one command or click.  A genuine callback's trigger id names the same user as the
    request, is fresh, and is never seen twice.
    """

    def __init__(self, max_age_s: float = 300.0, clock: Callable[[], int] | None = None) -> None:
        self.max_age_s = max_age_s
        self.clock = clock or wall_clock_ms  # injectable: tests let simulated time pass for the bot too
        self._seen = OnceCache(ttl_s=max_age_s * 2)

    def check(self, trigger_id: object, user_id: str, *, now_ms: int | None = None) -> None:
        if not isinstance(trigger_id, str) or not trigger_id:
            raise SignatureError("missing trigger id")
        try:
            decoded = base64.b64decode(trigger_id + "=" * (-len(trigger_id) % 4), validate=False).decode()
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise SignatureError("undecodable trigger id") from None
        parts = decoded.split(":")
        if len(parts) < 4 or not parts[0]:
            raise SignatureError("malformed trigger id")
        client_id, trigger_user, millis = parts[0], parts[1], parts[2]
        if trigger_user != user_id:
            raise SignatureError("trigger id belongs to another user")
        try:
            issued_ms = int(millis)
        except ValueError:
            raise SignatureError("malformed trigger id time") from None
        now_ms = self.clock() if now_ms is None else now_ms
        if abs(now_ms - issued_ms) > self.max_age_s * 1000:
            raise SignatureError("stale trigger id")
        if not self._seen.add(client_id):
            raise SignatureError("trigger id already used")
