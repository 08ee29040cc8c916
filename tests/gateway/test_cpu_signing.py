"""The signatures the bot makes for itself go through orjson and a direct dump of the payload (issue 15,
CPU per start) and are byte for byte what the standard library made: every button and dialog state
signed before still verifies, and one signed now verifies exactly as before."""

from __future__ import annotations

import json
import random
import typing

import pydantic
import pytest

from gateway import payloads
from gateway.payloads import ActionPayload, CheckStep, DialogPayload, ListPage, StartDialog, ViewStage
from gateway.signing import Signer, _canonical, _canonical_own, _scalar_dump, _scalar_fields_only, _unb64
from tests.gateway.test_cpu import a_card, plain_signature


def _annotations(annotation) -> typing.Iterator[object]:
    """Every type an annotation names, at any depth (nested models included)."""
    yield annotation
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        for field in annotation.model_fields.values():
            yield from _annotations(field.annotation)
    for argument in typing.get_args(annotation):
        yield from _annotations(argument)


def every_payload_model() -> list[type]:
    return [*payloads._subclasses(ActionPayload), *payloads._subclasses(DialogPayload)]


def test_no_payload_model_carries_a_float_anywhere():
    """What makes orjson's bytes the standard library's: a float is the one JSON value they write
    differently (and NaN, which orjson writes as null). A model that needs one must sign the old way."""
    models = every_payload_model()
    assert len(models) > 30
    for model in models:
        for field_name, field in model.model_fields.items():
            assert float not in set(_annotations(field.annotation)), f"{model.__name__}.{field_name}"


def _contexts(card: dict) -> list[dict]:
    return [action["integration"]["context"] for attachment in card["props"]["attachments"]
            for action in attachment.get("actions", [])]


def test_a_cards_buttons_are_signed_as_the_standard_library_signs_them_and_verify():
    card = a_card()
    contexts = _contexts(card)
    assert len(contexts) > 15
    signer = Signer("s3cret")
    for context in contexts:
        body = {key: context[key] for key in ("action", "channel_id", "payload")}
        assert context["signature"] == plain_signature("s3cret", "button", body)
        assert _canonical_own(["button", body]) == _canonical(["button", body])
        assert signer.open_action_context(context, body["channel_id"])[0] == body["action"]


@pytest.mark.parametrize("payload", [
    CheckStep(incident_id="i" * 26, step_id="s" * 26, mark="m:1"),
    CheckStep(incident_id="i" * 26, step_id="s" * 26, mark="", from_view=True),
    ViewStage(incident_id="i" * 26, stage=0), ViewStage(incident_id="i" * 26, stage=3),
    ListPage(team_id="t" * 26, page=2, owner_id="u" * 26, search="ü ✅ \"quoted\" \\ \n\t", status="ongoing"),
])
def test_a_button_signed_now_is_the_plain_signature_and_its_dump_is_pydantics(payload):
    signer = Signer("s3cret")
    context = signer.action_context(payload, "c" * 26)
    assert context["payload"] == payload.dump()
    if _scalar_fields_only(type(payload)):
        assert _scalar_dump(payload) == payload.dump()
        assert list(_scalar_dump(payload)) == list(payload.dump())  # the same keys, in the same order
    body = {"action": payload.action.value, "channel_id": "c" * 26, "payload": payload.dump()}
    assert context["signature"] == plain_signature("s3cret", "button", body)
    assert type(payload).parse(signer.open_action_context(context, "c" * 26)[1]) == payload


def test_the_direct_dump_of_every_keepable_model_is_pydantics():
    rng = random.Random(7)
    checked = 0
    for model in every_payload_model():
        if not issubclass(model, ActionPayload) or not _scalar_fields_only(model):
            continue
        for _ in range(4):
            values: dict[str, object] = {}
            for name, field in model.model_fields.items():
                keep_default = not field.is_required() and rng.random() < 0.5
                if keep_default:
                    continue
                values[name] = {str: lambda: rng.choice(["", "x" * 26, "ü✅"]), int: lambda: rng.choice([0, 1, 7]),
                                bool: lambda: rng.choice([True, False])}[field.annotation]()
            try:
                payload = model(**values)
            except pydantic.ValidationError:
                continue  # e.g. an empty id: not a payload the bot would make
            assert _scalar_dump(payload) == payload.dump(), (model.__name__, values)
            checked += 1
    assert checked > 40


def test_dialog_state_is_signed_as_before_and_opens():
    signer = Signer("s3cret")
    state = signer.dialog_state(StartDialog(team_id="t" * 26, post_id="p" * 26), "u" * 26, "c" * 26,
                                now_ms=1_700_000_000_000)
    encoded, signature = state.split(".")
    body = json.loads(_unb64(encoded))
    assert signature == plain_signature("s3cret", "dialog-state", body)
    opened = signer.open_dialog_state(state, "start", "u" * 26, "c" * 26, now_ms=1_700_000_000_001)
    assert opened.args == {"team_id": "t" * 26, "post_id": "p" * 26}


@pytest.mark.parametrize("value", [
    "".join(chr(c) for c in range(0x0, 0x800)),
    "".join(chr(c) for c in range(0xE000, 0x10000, 7)) + "".join(chr(c) for c in range(0x10000, 0x110000, 997)),
    {"é": 1, "e": [2 ** 63 - 1, -2 ** 63, 2 ** 64 - 1], "a": {"z": None, "b": True}},
    [2 ** 80, {"big": -2 ** 70}],  # beyond 64 bits: orjson refuses, the standard library writes it
])
def test_own_canonical_bytes_are_the_standard_librarys(value):
    assert _canonical_own(["button", value]) == _canonical(["button", value])
