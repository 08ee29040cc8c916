"""Signatures for what the bot hands to Mattermost and gets back: button contexts and dialog state.

Each carries one payload model (gateway/payloads.py); what is signed is the model's dump with its
action or dialog id, the channel (and for dialogs the user, expiry and nonce).

Mattermost forwards button clicks and dialog submissions unsigned, and anyone who can reach the
bot's port can POST them.  So every button context and dialog state the bot creates carries an
HMAC made with the bot's secret, and callbacks are accepted only when it verifies.  Replays are
stopped with the per-click trigger id Mattermost puts in every action callback (unique, bound to
the clicking user, time-stamped) and with single-use nonces in dialog state.  Both are recorded
in the store (:class:`ReplayGuard`), so a request captured before a restart stays spent after it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import orjson

from gateway.payloads import ActionPayload, DialogPayload


class SignatureError(Exception):
    """A callback's signature, freshness or binding did not verify."""


# One encoder for every signature: ``json.dumps`` with options builds a new encoder per call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class OutdatedPayload(SignatureError):
    """A genuine context or state signed by a previous version, in a format no longer read: the
    click or submission is answered with "out of date" (and the card redrawn), never acted on."""

    def __init__(self, action: str, old_args: dict[str, Any]) -> None:
        super().__init__("signed in a previous format")
        self.action = action
        #: What the old context carried (verified): enough to find, say, the incident whose card it was.
        self.old_args = old_args


#: Purposes of the signatures (a signature made for one never verifies as another).
_BUTTON = "button"
#: A second copy of a request whose single-use key the first copy spent.
ALREADY_HANDLED = "this request was already handled"
_DIALOG = "dialog-state"
#: The keys of a button context before payload models (``a`` action, ``c`` channel, ``v`` arguments, ``s``).
_LEGACY_ACTION_KEYS = frozenset({"a", "c", "v", "s"})


#: Per payload model: whether its contexts may be kept (every field a string, number or flag, so equal
#: field values mean an equal dump, and a kept dump holds nothing a caller could change inside).
_KEEPABLE: dict[type, bool] = {}


def _scalar_fields_only(model: type[ActionPayload]) -> bool:
    return all(field.annotation in (str, int, float, bool) for field in model.model_fields.values())


#: Per keepable payload model: its fields in order, each with its default (``_REQUIRED``: none).
_DUMP_FIELDS: dict[type, tuple[tuple[str, Any], ...]] = {}
_REQUIRED = object()


def _scalar_dump(payload: ActionPayload) -> dict[str, Any]:
    """``payload.dump()`` of a model whose fields are all strings, numbers or flags, without pydantic's
    serializer: such values are their own JSON form, and a dump leaves out those equal to their default."""
    fields = _DUMP_FIELDS.get(type(payload))
    if fields is None:
        fields = _DUMP_FIELDS[type(payload)] = tuple(
            (name, _REQUIRED if field.is_required() else field.default)
            for name, field in type(payload).model_fields.items())
    values = payload.__dict__
    return {name: values[name] for name, default in fields if default is _REQUIRED or values[name] != default}


def _canonical(value: Any) -> bytes:
    return _CANONICAL.encode(value).encode()


def _canonical_own(value: Any) -> bytes:
    """:func:`_canonical`'s bytes, for what the bot signs itself (its payload models' dumps: strings,
    integers, flags, None, lists and dicts with string keys — never a float, which
    tests/gateway/test_cpu_signing.py checks for every payload model). For those orjson's sorted,
    compact UTF-8 output is the standard library's byte for byte (every code point, every 64-bit
    integer) at a tenth of the CPU; what orjson refuses (an integer beyond 64 bits) goes the old way.
    Verifying a callback always uses :func:`_canonical`: what comes back may be anything."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError is one
        return _canonical(value)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """HMAC-SHA256 over canonical JSON, with a purpose label so one signature never fits another use."""

    #: Button contexts remembered (see :meth:`action_context`): a card's ~25 buttons for ~160 cards.
    CONTEXTS_KEPT = 4096

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"command-center:" + secret.encode()).digest()
        # The key's HMAC state (its padded inner and outer hashes) made once; every signature
        # continues a copy of it instead of hashing the key again (a card signs ~20 buttons).
        self._keyed = hmac.new(self._key, digestmod=hashlib.sha256)
        # (payload model, channel, its field values) -> (payload dump, signature), oldest first.
        self._contexts: dict[tuple[Any, ...], tuple[dict[str, Any], str]] = {}

    def sign(self, purpose: str, payload: Any) -> str:
        mac = self._keyed.copy()
        mac.update(_canonical([purpose, payload]))
        return _b64(mac.digest())

    def _sign_own(self, purpose: str, payload: Any) -> str:
        """:meth:`sign` for a body the bot made (see :func:`_canonical_own`): the same signature."""
        mac = self._keyed.copy()
        mac.update(_canonical_own([purpose, payload]))
        return _b64(mac.digest())

    def verify(self, purpose: str, payload: Any, signature: object) -> bool:
        if not isinstance(signature, str):
            return False
        return hmac.compare_digest(self.sign(purpose, payload), signature)

    # Button contexts -------------------------------------------------------------------------

    def action_context(self, payload: ActionPayload, channel_id: str) -> dict[str, Any]:
        """The ``integration.context`` of a button: its payload model, signed with its action id and
        bound to one channel.

        A card is drawn again after every change and for its duration, and most of its buttons carry
        the same payload as last time: the signatures of recent (payload, channel) pairs are kept
        (payload models are frozen, so equal models sign alike), and each call still gets dicts of
        its own."""
        kind = type(payload)
        cacheable = _KEEPABLE.get(kind)
        if cacheable is None:
            cacheable = _KEEPABLE[kind] = _scalar_fields_only(kind)
        key = (kind, channel_id, *payload.__dict__.values()) if cacheable else None
        if key is not None:
            kept = self._contexts.get(key)
            if kept is not None:
                return {"action": payload.action.value, "channel_id": channel_id, "payload": {**kept[0]},
                        "signature": kept[1]}
        dump = _scalar_dump(payload) if cacheable else payload.dump()
        body = {"action": payload.action.value, "channel_id": channel_id, "payload": dump}
        signature = self._sign_own(_BUTTON, body)
        if key is not None:
            if len(self._contexts) >= self.CONTEXTS_KEPT:
                self._contexts.pop(next(iter(self._contexts)), None)
            self._contexts[key] = ({**dump}, signature)
        return {**body, "signature": signature}

    def open_action_context(self, context: object, channel_id: str) -> tuple[str, dict[str, Any]]:
        """Verify a button context from a callback; return (action id, payload dump) for the action's
        model to parse. :class:`OutdatedPayload` for a genuine context of the previous format."""
        if not isinstance(context, dict):
            raise SignatureError("missing context")
        if "signature" not in context and _LEGACY_ACTION_KEYS <= context.keys():
            self._open_legacy_action(context, channel_id)
        body = {"action": context.get("action"), "channel_id": context.get("channel_id"),
                "payload": context.get("payload")}
        if not isinstance(body["action"], str) or not isinstance(body["payload"], dict):
            raise SignatureError("malformed context")
        if not self.verify(_BUTTON, body, context.get("signature")):
            raise SignatureError("bad context signature")
        if body["channel_id"] != channel_id:
            raise SignatureError("context used outside its channel")
        return body["action"], body["payload"]

    def _open_legacy_action(self, context: dict[str, Any], channel_id: str) -> None:
        """A context with one-letter keys, as versions before the payload models signed them."""
        body = {"a": context.get("a"), "c": context.get("c"), "v": context.get("v")}
        if not isinstance(body["a"], str) or not isinstance(body["v"], dict):
            raise SignatureError("malformed context")
        if not self.verify("action", body, context.get("s")):
            raise SignatureError("bad context signature")
        if body["c"] != channel_id:
            raise SignatureError("context used outside its channel")
        raise OutdatedPayload(body["a"], body["v"])

    # Dialog state ---------------------------------------------------------------------------

    def dialog_state(self, payload: DialogPayload, user_id: str, channel_id: str,
                     *, lifetime_s: int = 3600, now_ms: int | None = None) -> str:
        """Opaque ``state`` for a dialog: its payload model, who it is for, where, until when, and a
        single-use nonce."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        body = {"dialog": payload.dialog.value, "user_id": user_id, "channel_id": channel_id,
                "expires_at": now_ms + lifetime_s * 1000, "nonce": secrets.token_urlsafe(12),
                "payload": payload.dump()}
        return _b64(_canonical_own(body)) + "." + self._sign_own(_DIALOG, body)

    def open_dialog_state(self, state: object, dialog: str, user_id: str, channel_id: str,
                          *, now_ms: int | None = None) -> DialogState:
        if not isinstance(state, str) or state.count(".") != 1:
            raise SignatureError("missing or malformed state")
        encoded, signature = state.split(".")
        try:
            body = json.loads(_unb64(encoded))
        except (ValueError, binascii.Error):
            raise SignatureError("undecodable state") from None
        if not isinstance(body, dict):
            raise SignatureError("bad state signature")
        if "dialog" not in body and self.verify("dialog", body, signature):
            raise OutdatedPayload(str(body.get("d", "")), {})  # the previous format, genuine
        if not self.verify(_DIALOG, body, signature):
            raise SignatureError("bad state signature")
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        if body.get("dialog") != dialog:
            raise SignatureError("state belongs to another dialog")
        if body.get("user_id") != user_id:
            raise SignatureError("state belongs to another user")
        if body.get("channel_id") != channel_id:
            raise SignatureError("state belongs to another channel")
        expires_at = body.get("expires_at")
        if not isinstance(expires_at, int) or expires_at < now_ms:
            raise SignatureError("dialog expired")
        if not isinstance(body.get("payload"), dict) or not isinstance(body.get("nonce"), str):
            raise SignatureError("malformed state")
        return DialogState(nonce=body["nonce"], args=body["payload"], expires_at_ms=expires_at)


@dataclass(frozen=True)
class DialogState:
    nonce: str
    args: dict[str, Any]
    #: When the state stops being accepted (epoch ms): its nonce need not be remembered longer.
    expires_at_ms: int = 0


class SingleUseKeys(Protocol):
    """Where used keys are recorded: the store (:class:`storage.Store` implements this)."""

    async def claim_single_use(self, kind: str, key: str, *, expires_at: int, now: int) -> bool: ...

    async def claim_single_use_or_fail(self, kind: str, key: str, *, expires_at: int, now: int,
                                       taken: Callable[[], BaseException]) -> None: ...

    async def release_single_use(self, kind: str, key: str) -> bool: ...

    async def prune_single_use(self, now: int, *, max_entries: int) -> int: ...


class MemoryKeys:
    """:class:`SingleUseKeys` in memory, for servers run without a store (unit tests)."""

    def __init__(self) -> None:
        self._expiry: dict[tuple[str, str], int] = {}

    async def claim_single_use(self, kind: str, key: str, *, expires_at: int, now: int) -> bool:
        held = self._expiry.get((kind, key))
        if held is not None and held >= now:
            return False
        self._expiry[(kind, key)] = expires_at
        return True

    async def claim_single_use_or_fail(self, kind: str, key: str, *, expires_at: int, now: int,
                                       taken: Callable[[], BaseException]) -> None:
        if not await self.claim_single_use(kind, key, expires_at=expires_at, now=now):
            raise taken()

    async def release_single_use(self, kind: str, key: str) -> bool:
        return self._expiry.pop((kind, key), None) is not None

    async def prune_single_use(self, now: int, *, max_entries: int) -> int:
        before = len(self._expiry)
        kept = sorted(((at, k) for k, at in self._expiry.items() if at >= now), reverse=True)[:max(0, max_entries)]
        self._expiry = {k: at for at, k in kept}
        return before - len(self._expiry)


class ReplayGuard:
    """Single-use keys (dialog nonces, trigger ids), recorded where a restart cannot forget them.

    A key is kept until it expires: the moment the request carrying it would be refused as stale
    anyway, so nothing older than the longest validity window is kept.  Expired keys are pruned
    now and then, and the table is bounded (the soonest-expiring keys go first).
    """

    def __init__(self, keys: SingleUseKeys | None = None, *, clock: Callable[[], float] = time.time,
                 max_entries: int = 100_000, prune_every_s: float = 60.0) -> None:
        self.keys: SingleUseKeys = keys if keys is not None else MemoryKeys()
        self.clock = clock
        self.max_entries = max_entries
        self.prune_every_ms = int(prune_every_s * 1000)
        self._claims_since_prune = 0
        self._pruned_at_ms: int | None = None

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def claim(self, kind: str, key: str, expires_at_ms: int) -> bool:
        """Mark ``key`` used; False if it was used already (a replay)."""
        now = self.now_ms()
        claimed = await self.keys.claim_single_use(kind, key, expires_at=expires_at_ms, now=now)
        await self._pruned_now_and_then(now)
        return claimed

    async def claim_or_fail(self, kind: str, key: str, expires_at_ms: int,
                            taken: Callable[[], BaseException]) -> None:
        """Mark ``key`` used, or raise ``taken()`` if it was used already. Inside a store transaction
        the claim may go with the transaction's next statement, and ``taken()`` be raised from there
        (``SingleUseKeys.claim_single_use_or_fail``)."""
        now = self.now_ms()
        await self.keys.claim_single_use_or_fail(kind, key, expires_at=expires_at_ms, now=now, taken=taken)
        await self._pruned_now_and_then(now)

    async def _pruned_now_and_then(self, now: int) -> None:
        self._claims_since_prune += 1
        if (self._pruned_at_ms is None or now - self._pruned_at_ms >= self.prune_every_ms
                or self._claims_since_prune >= max(1, self.max_entries // 10)):
            await self.prune(now)

    @asynccontextmanager
    async def deferred(self, kind: str, key: str, expires_at_ms: int) -> AsyncIterator[PendingKey]:
        """Run a handler marked :func:`spends_own_key` with its key's claim pending: the handler spends it
        in its first write transaction (:func:`spend_pending_key`), one commit for both. A handler that
        returns without spending it (nothing written) has it spent by the caller afterwards."""
        pending = PendingKey(self, kind, key, expires_at_ms)
        token = _PENDING.set(pending)
        try:
            yield pending
        finally:
            _PENDING.reset(token)

    async def release(self, kind: str, key: str) -> None:
        """Give a key back: what it was claimed for did not happen (a dialog answered with errors)."""
        await self.keys.release_single_use(kind, key)

    async def prune(self, now_ms: int | None = None) -> int:
        now = self.now_ms() if now_ms is None else now_ms
        self._pruned_at_ms, self._claims_since_prune = now, 0
        return await self.keys.prune_single_use(now, max_entries=self.max_entries)


_F = TypeVar("_F", bound=Callable[..., Any])
_SPENDS_OWN_KEY = "_command_center_spends_own_key"


def spends_own_key(handler: _F) -> _F:
    """Mark a dialog handler that spends its submission's single-use key itself, inside its first write
    transaction (:func:`spend_pending_key`), so the claim costs no commit of its own.

    The handler promises that nothing before that write has an effect (it only reads), and that it
    spends the key before any other write or Mattermost call. Until then a second copy of the
    submission may run the same reads; only one of them gets past the write."""
    setattr(handler, _SPENDS_OWN_KEY, True)
    return handler


def spends_own_key_marked(handler: object) -> bool:
    return bool(getattr(handler, _SPENDS_OWN_KEY, False))


@dataclass
class PendingKey:
    """A single-use key whose claim waits for the first write of the request's handler (see
    :meth:`ReplayGuard.deferred`). ``spent``: None until claimed, then whether the claim succeeded."""

    guard: ReplayGuard
    kind: str
    key: str
    expires_at_ms: int
    spent: bool | None = None

    async def spend(self) -> bool:
        """Claim the key now (joining the caller's store transaction, if any) unless it was already:
        True if this request holds it, False if another copy does (a replay). A claim made in a
        transaction that is then rolled back is gone with it; the handler failed, and the caller
        gives the key back anyway (as for a dialog answered with errors)."""
        if self.spent is None:
            self.spent = await self.guard.claim(self.kind, self.key, self.expires_at_ms)
        return self.spent

    async def spend_or_fail(self) -> None:
        """:meth:`spend`, raising SignatureError for a replay; inside a store transaction the claim may
        go with the transaction's next statement (one trip fewer), the SignatureError then raised from
        there and the transaction rolled back. ``spent`` is True from now on unless the claim is refused."""
        if self.spent is None:
            self.spent = True

            def taken() -> BaseException:  # may run on the store's thread: note the refusal, build the error
                self.spent = False
                return SignatureError(ALREADY_HANDLED)

            try:
                await self.guard.claim_or_fail(self.kind, self.key, self.expires_at_ms, taken)
            except BaseException:
                if self.spent:  # failed for another reason (the store): not spent after all
                    self.spent = None
                raise
        elif not self.spent:
            raise SignatureError(ALREADY_HANDLED)


_PENDING: ContextVar[PendingKey | None] = ContextVar("command_center_pending_key", default=None)


async def spend_pending_key() -> None:
    """Spend the current request's deferred single-use key (a no-op when there is none): call it inside
    the handler's first write transaction. SignatureError when another copy of the request spent it."""
    pending = _PENDING.get()
    if pending is not None:
        await pending.spend_or_fail()


class TriggerGuard:
    """Rejects replayed callbacks using Mattermost's trigger id.

    A trigger id is base64 of ``"<client id>:<user id>:<millis>:<signature>"``, minted by the
    server for one command or click.  A genuine callback's trigger id names the same user as the
    request, is fresh, and is never seen twice (``replays`` remembers it across restarts, for as
    long as it would be fresh).
    """

    KIND = "trigger"

    def __init__(self, max_age_s: float = 300.0, replays: ReplayGuard | None = None) -> None:
        self.max_age_s = max_age_s
        self.replays = replays or ReplayGuard()

    def verify(self, trigger_id: object, user_id: str, *, now_ms: int | None = None) -> tuple[str, int]:
        """Check the form, user and freshness of a trigger id; returns (its key, when it goes stale)."""
        if not isinstance(trigger_id, str) or not trigger_id:
            raise SignatureError("missing trigger id")
        try:
            decoded = base64.b64decode(trigger_id + "=" * (-len(trigger_id) % 4), validate=False).decode()
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise SignatureError("undecodable trigger id") from None
        parts = decoded.split(":")
        if len(parts) < 4 or not 0 < len(parts[0]) <= 64:  # Mattermost's are 26 characters
            raise SignatureError("malformed trigger id")
        client_id, trigger_user, millis = parts[0], parts[1], parts[2]
        if trigger_user != user_id:
            raise SignatureError("trigger id belongs to another user")
        try:
            issued_ms = int(millis)
        except ValueError:
            raise SignatureError("malformed trigger id time") from None
        now_ms = self.replays.now_ms() if now_ms is None else now_ms
        if abs(now_ms - issued_ms) > self.max_age_s * 1000:
            raise SignatureError("stale trigger id")
        return client_id, issued_ms + int(self.max_age_s * 1000)

    async def check(self, trigger_id: object, user_id: str, *, now_ms: int | None = None) -> None:
        """:meth:`verify`, then spend the trigger id; SignatureError if anything is wrong or it was used."""
        key, stale_at = self.verify(trigger_id, user_id, now_ms=now_ms)
        if not await self.replays.claim(self.KIND, key, stale_at):
            raise SignatureError("trigger id already used")
