"""Trigger ids: minted for every slash command and button click, redeemed to open one dialog.

Mirrors server/public/model/integration_action.go ``GenerateTriggerIdForUser`` (a client id,
the user id and the time, signed) and ``DecodeAndVerifyTriggerId`` (its checks and error ids, in
order), as app/integration_action.go ``OpenInteractiveDialog`` calls it; the lifetime is
``SandboxConfig.trigger_id_lifetime`` (sandbox/README.md, "Trigger ids").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import TYPE_CHECKING

from .errors import AppError
from .ids import new_id, now_ms

if TYPE_CHECKING:  # the Sandbox is handed in; app.py imports this module
    from .app import Sandbox


def issue_trigger_id(sb: Sandbox, user_id: str) -> tuple[str, str]:
    """A (client trigger id, signed trigger id) pair bound to ``user_id`` and to now."""
    client_id = new_id()
    payload = f"{client_id}:{user_id}:{now_ms()}"
    sig = base64.b64encode(hmac.new(sb.signing_key, payload.encode(), hashlib.sha256).digest()).decode()
    return client_id, base64.b64encode(f"{payload}:{sig}".encode()).decode()


def decode_trigger_id(sb: Sandbox, trigger_id: str) -> tuple[str, str]:
    """Verify a trigger id; returns (client trigger id, user id) or raises the Mattermost error.

    As model/integration_action.go ``DecodeAndVerifyTriggerId`` (called by app/integration_action.go
    ``OpenInteractiveDialog``): every failure is 400 with an ``interactive_message.decode_trigger_id.*``
    id, and age is checked before the signature. The lifetime is ``trigger_id_lifetime`` (3 s by default).
    """
    def fail(reason: str, message: str) -> AppError:
        return AppError(400, f"interactive_message.decode_trigger_id.{reason}", message)
    try:
        decoded = base64.b64decode(trigger_id.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise fail("base64_decode_failed", "Failed to decode base64 for trigger ID for interactive dialog.") from None
    parts = decoded.split(":")
    if len(parts) != 4:
        raise fail("missing_data", "Trigger ID missing required data for interactive dialog.")
    client_id, user_id, ms, sig = parts
    try:
        issued = int(ms)
    except ValueError:
        raise fail("missing_data", "Trigger ID missing required data for interactive dialog.") from None
    lifetime_ms = int(sb.config.trigger_id_lifetime * 1000)
    if now_ms() - issued > lifetime_ms:
        raise fail("expired", f"Trigger ID for interactive dialog is expired. "
                              f"Maximum time allowed is {lifetime_ms}ms.")
    try:
        raw_sig = base64.b64decode(sig.encode(), validate=True)
    except (binascii.Error, ValueError):
        raise fail("base64_decode_failed_signature",
                   "Failed to decode base64 signature of trigger ID for interactive dialog.") from None
    expected = hmac.new(sb.signing_key, f"{client_id}:{user_id}:{ms}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(raw_sig, expected):
        raise fail("verify_signature_failed", "Signature verification failed of trigger ID for interactive dialog.")
    return client_id, user_id
