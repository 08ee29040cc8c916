"""Signed button contexts and dialog state; the trigger-id replay guard."""

import base64
import time

import pytest

from gateway.payloads import CheckStep, StartDialog
from gateway.signing import ReplayGuard, SignatureError, Signer, TriggerGuard


def trigger(user_id: str, client_id: str = "c" * 26, at_ms: int | None = None) -> str:
    at_ms = int(time.time() * 1000) if at_ms is None else at_ms
    return base64.b64encode(f"{client_id}:{user_id}:{at_ms}:c2ln".encode()).decode()


def test_action_context_round_trip_and_tamper():
    signer = Signer("s" * 40)
    step = CheckStep(incident_id="i1", step_id="s1", mark="open@0")
    context = signer.action_context(step, "chan1")
    assert signer.open_action_context(dict(context), "chan1") == ("check", step.dump())
    assert CheckStep.parse(signer.open_action_context(dict(context), "chan1")[1]) == step
    with pytest.raises(SignatureError, match="outside its channel"):
        signer.open_action_context(dict(context), "chan2")
    for tampered in ({**context, "action": "end"}, {**context, "payload": {**step.dump(), "step_id": "s2"}},
                     {**context, "signature": "x"}, {k: v for k, v in context.items() if k != "signature"}):
        with pytest.raises(SignatureError):
            signer.open_action_context(tampered, "chan1")
    with pytest.raises(SignatureError):
        Signer("t" * 40).open_action_context(dict(context), "chan1")


def test_dialog_state_binding_and_expiry():
    signer = Signer("s" * 40)
    state = signer.dialog_state(StartDialog(team_id="t1", post_id="p"), "u1", "c1", lifetime_s=60,
                                now_ms=1_000_000)
    opened = signer.open_dialog_state(state, "start", "u1", "c1", now_ms=1_000_001)
    assert opened.args == {"team_id": "t1", "post_id": "p"} and opened.nonce
    for args, message in ((("end", "u1", "c1"), "another dialog"), (("start", "u2", "c1"), "another user"),
                          (("start", "u1", "c2"), "another channel")):
        with pytest.raises(SignatureError, match=message):
            signer.open_dialog_state(state, *args, now_ms=1_000_001)
    with pytest.raises(SignatureError, match="expired"):
        signer.open_dialog_state(state, "start", "u1", "c1", now_ms=1_000_000 + 61_000)
    encoded, sig = state.split(".")
    with pytest.raises(SignatureError):
        signer.open_dialog_state(encoded[:-2] + "AA." + sig, "start", "u1", "c1", now_ms=1_000_001)
    for junk in (None, "", "nodot", "a.b.c", 5):
        with pytest.raises(SignatureError):
            signer.open_dialog_state(junk, "start", "u1", "c1")


async def test_trigger_guard_rejects_replay_stale_and_other_user():
    guard = TriggerGuard(max_age_s=60)
    good = trigger("u1", "a" * 26)
    await guard.check(good, "u1")
    with pytest.raises(SignatureError, match="already used"):
        await guard.check(good, "u1")
    with pytest.raises(SignatureError, match="another user"):
        await guard.check(trigger("u1", "b" * 26), "u2")
    with pytest.raises(SignatureError, match="stale"):
        await guard.check(trigger("u1", "d" * 26, at_ms=int(time.time() * 1000) - 120_000), "u1")
    for junk in ("", None, "!!!", base64.b64encode(b"only:two").decode(), trigger("u1", "e" * 65)):
        with pytest.raises(SignatureError):
            await guard.check(junk, "u1")


async def test_trigger_guard_reads_its_injected_clock():
    now = {"ms": int(time.time() * 1000) + 600_000}  # ten minutes of simulated time have passed
    guard = TriggerGuard(max_age_s=60, replays=ReplayGuard(clock=lambda: now["ms"] / 1000))
    await guard.check(trigger("u1", "e" * 26, at_ms=now["ms"] - 1_000), "u1")
    with pytest.raises(SignatureError, match="stale"):
        await guard.check(trigger("u1", "f" * 26), "u1")  # minted on the wall clock: ten minutes old here
