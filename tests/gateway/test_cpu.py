"""The cheaper hot paths of the CPU slice (issue 15) give exactly what the plain versions gave:
signatures, the card's visible digest, the path check and the Authorization header."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import string

import pytest

from domain import incidents, playbooks
from gateway.cards import CardContext, incident_card, visible_digest
from gateway.errors import MattermostError
from gateway.payloads import CheckStep, StartDialog
from gateway.signing import SignatureError, Signer
from gateway.transport import _PATH_SEGMENT, AiohttpClient, check_path


def plain_signature(secret: str, purpose: str, payload) -> str:
    """The signature as first written: a fresh HMAC over json.dumps of [purpose, payload]."""
    key = hashlib.sha256(b"command-center:" + secret.encode()).digest()
    body = json.dumps([purpose, payload], sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(hmac.new(key, body, hashlib.sha256).digest()).rstrip(b"=").decode()


def plain_digest(card) -> str:
    """The visible digest by the standard library: strip every "integration", sorted compact JSON, SHA-256."""
    def strip(value):
        if isinstance(value, dict):
            return {key: strip(item) for key, item in value.items() if key != "integration"}
        if isinstance(value, list):
            return [strip(item) for item in value]
        return value
    return hashlib.sha256(json.dumps(strip(card), sort_keys=True, ensure_ascii=False,
                                     separators=(",", ":")).encode()).hexdigest()


def a_card(name: str = "Payments down ✅ «ü»") -> dict:
    stages = [playbooks.StageDraft(title=f"Stage {s + 1}", steps=tuple(
        playbooks.StepDraft(title=f"Step {s + 1}.{n + 1} `x`", description="Look at *errors*" if n % 2 else "",
                            command="/echo hi" if n == 0 else "")
        for n in range(4))) for s in range(3)]
    playbook = playbooks.new_playbook(team_id="t" * 26, title="Response", created_by="u" * 26,
                                      now=1_700_000_000_000, stages=stages)
    incident, _ = incidents.start_incident(playbook, name=name, channel_id="c" * 26, creator_id="u" * 26,
                                           now=1_700_000_000_000)
    ctx = CardContext(usernames={"u" * 26: "alice"}, signer=Signer("s3cret"), action_url="http://bot/actions",
                      now_ms=1_700_000_100_000)
    return incident_card(incident, ctx)


# Signing -------------------------------------------------------------------------------------

@pytest.mark.parametrize("payload", [
    {"a": "check", "c": "chan", "v": {"i": "x" * 26, "s": "y" * 26, "m": 3}},
    {"d": "start", "u": "ü✅", "e": 1_700_000_000_000, "n": "nonce", "v": {}},
    [], "", {"nested": [{"b": 1, "a": [None, True, 1.5]}]},
])
def test_a_signature_is_the_plain_hmac_of_the_canonical_json(payload):
    signer = Signer("s3cret")
    assert signer.sign("action", payload) == plain_signature("s3cret", "action", payload)
    # The kept keyed state is never consumed: the same payload signs the same way again and again.
    assert signer.sign("action", payload) == signer.sign("action", payload)
    assert signer.sign("dialog", payload) == plain_signature("s3cret", "dialog", payload)
    assert Signer("other").sign("action", payload) != signer.sign("action", payload)


def test_many_contexts_in_a_row_each_verify_and_a_changed_one_does_not():
    signer = Signer("s3cret")
    contexts = [signer.action_context(CheckStep(incident_id=str(n), step_id="s", mark=f"m{n}"), f"chan{n}")
                for n in range(50)]
    for n, context in enumerate(contexts):
        assert signer.open_action_context(context, f"chan{n}") == (
            "check", {"incident_id": str(n), "step_id": "s", "mark": f"m{n}"})
    forged = {**contexts[0], "payload": {"incident_id": "0", "step_id": "s", "mark": "m1"}}
    with pytest.raises(SignatureError):
        signer.open_action_context(forged, "chan0")


def test_dialog_state_still_opens_and_stays_bound():
    signer = Signer("s3cret")
    state = signer.dialog_state(StartDialog(team_id="t", post_id="p"), "alice", "chan", now_ms=1000)
    opened = signer.open_dialog_state(state, "start", "alice", "chan", now_ms=2000)
    assert opened.args == {"team_id": "t", "post_id": "p"}
    encoded, signature = state.split(".")
    body = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    assert signature == plain_signature("s3cret", "dialog-state", body)
    with pytest.raises(SignatureError):
        signer.open_dialog_state(state, "start", "bob", "chan", now_ms=2000)


# The card's visible digest --------------------------------------------------------------------

def test_the_visible_digest_is_the_plain_one_and_ignores_only_the_signed_contexts():
    card = a_card()
    assert visible_digest(card) == plain_digest(card)
    resigned = json.loads(json.dumps(card))
    for attachment in resigned["props"]["attachments"]:
        for action in attachment.get("actions", []):
            action["integration"]["context"]["s"] = "another signature"
    assert visible_digest(resigned) == visible_digest(card)
    renamed = json.loads(json.dumps(card))
    renamed["props"]["attachments"][2]["text"] += " (changed)"
    assert visible_digest(renamed) != visible_digest(card)
    assert visible_digest(renamed) == plain_digest(renamed)


def test_the_visible_digest_of_odd_shapes_is_the_plain_one():
    for value in ({}, {"integration": 1}, {"a": [[{"integration": 2, "b": [1, {"c": None}]}]]},
                  {"props": {"attachments": []}, "message": "✅ ü \u2028 \x00 \"q\" \\"}, {"big": 2**70, "n": -(2**63)}):
        assert visible_digest(value) == plain_digest(value)


# The path check -------------------------------------------------------------------------------

def plain_check(endpoint: str) -> bool:
    """The check as first written: every segment of safe characters and none of them . or .."""
    return all(segment not in (".", "..") and _PATH_SEGMENT.fullmatch(segment)
               for segment in endpoint.split("?", 1)[0].split("/"))


def accepted(endpoint: str) -> bool:
    try:
        check_path(endpoint, "GET")
        return True
    except MattermostError as error:
        assert error.status == 400 and error.error_id == "api.context.invalid_url_param.app_error"
        return False


@pytest.mark.parametrize("endpoint", [
    "/api/v4/users/me", "/api/v4/posts/abc/pin", "/api/v4/users/../teams", "/api/v4/users/./me", "..",
    "./api", ".", "/api/v4/.well-known/x", "/api/v4/a..b", "/api/v4/a/..", "/api/v4/a/.", "/api/v4/x%2F..",
    "/api/v4/us\ner", "/api/v4/x?next=../../y", "/api/v4/emoji/+1", "/api/v4/users/a@b.c", "",
    "/api/v4//double", "/api/v4/ü", "/api/v4/a b",
])
def test_the_path_check_accepts_and_refuses_exactly_what_it_did(endpoint):
    assert accepted(endpoint) == bool(plain_check(endpoint))


def test_the_path_check_agrees_with_the_plain_one_on_random_paths():
    rng = random.Random(15)
    alphabet = string.ascii_letters + string.digits + "._-+@/?%\n ü"
    for _ in range(5000):
        endpoint = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))
        assert accepted(endpoint) == bool(plain_check(endpoint)), endpoint


# The Authorization header ---------------------------------------------------------------------

def test_the_authorization_header_is_built_once_per_token():
    client = AiohttpClient({"scheme": "http", "url": "127.0.0.1", "port": 1, "basepath": "", "auth": None,
                            "debug": False, "proxy": None, "timeout": 1, "request_timeout": 1, "verify": True})
    assert client._auth_headers() == {}
    client.token = "first"
    headers = client._auth_headers()
    assert headers == {"Authorization": "Bearer first"} and client._auth_headers() is headers
    client.token = "second"
    assert client._auth_headers() == {"Authorization": "Bearer second"}


def test_card_times_are_the_plain_utc_minute():
    import datetime as dt

    from gateway.cards import format_time

    for ms in (0, 59_999, 60_000, 1_700_000_000_123, -1, -60_001, 1_764_620_000_000, 4_102_444_800_000):
        assert format_time(ms) == dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
