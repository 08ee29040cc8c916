"""Typed signed payloads (gateway/payloads.py): one model per button and dialog, signed as the model's
dump, handed to handlers parsed; what does not parse is refused like a bad signature; contexts and
states signed by the previous version (one-letter keys) are answered "out of date", never acted on."""

from __future__ import annotations

import base64
import json
import time

import pytest
from aiohttp.test_utils import TestClient, TestServer

from domain.models import Incident, Stage, Step
from gateway import payloads as p
from gateway.cards import CardContext, incident_card
from gateway.ids import Action, Dialog, Route
from gateway.inbound import OUTDATED_BUTTON, OUTDATED_DIALOG, CommandTokens, InboundServer
from gateway.models import ActionCallback, ActionReply, DialogReply, DialogSubmission
from gateway.routing import Registry, on_action, on_dialog, on_outdated_button
from gateway.signing import OutdatedPayload, SignatureError, Signer

USER, CHANNEL, TEAM = "u" * 26, "c" * 26, "t" * 26
SIGNER = Signer("secret" * 8)
_counter = iter(range(10**9))


def trigger(user: str = USER) -> str:
    return base64.b64encode(f"{next(_counter):026d}:{user}:{int(time.time() * 1000)}:c2ln".encode()).decode()


def test_every_action_and_dialog_has_exactly_one_model():
    assert set(p.action_models()) == {action.value for action in Action}
    assert set(p.dialog_models()) == {dialog.value for dialog in Dialog} - {Dialog.PLAYBOOK_STEP.value}
    for action, model in p.action_models().items():
        assert model.action.value == action


def test_a_payload_round_trips_through_its_signed_context_with_readable_names():
    step = p.CheckStep(incident_id="i" * 26, step_id="s" * 26, mark="open@0", from_view=True)
    context = SIGNER.action_context(step, CHANNEL)
    assert set(context) == {"action", "channel_id", "payload", "signature"}
    assert context["payload"] == {"incident_id": "i" * 26, "step_id": "s" * 26, "mark": "open@0", "from_view": True}
    action, args = SIGNER.open_action_context(context, CHANNEL)
    assert action == "check" and p.CheckStep.parse(args) == step
    # Defaults are left out of what is signed (a card has many buttons) and come back on parsing.
    plain = SIGNER.action_context(p.CheckStep(incident_id="i", step_id="s", mark="m"), CHANNEL)
    assert "from_view" not in plain["payload"]
    assert p.CheckStep.parse(plain["payload"]).from_view is False


def test_a_payload_that_does_not_fit_its_model_is_a_payload_error():
    for raw in ({}, {"incident_id": "i"}, {"incident_id": "i", "step_id": "s", "mark": "m", "extra": 1},
                {"incident_id": "", "step_id": "s", "mark": "m"}, {"incident_id": "i" * 65, "step_id": "s", "mark": "m"},
                "not a dict", None):
        with pytest.raises(p.PayloadError):
            p.CheckStep.parse(raw)
    with pytest.raises(p.PayloadError):
        p.ListPage.parse({"team_id": "t", "owner_id": "u", "page": -1})


def test_a_dialog_state_carries_its_model_bound_to_dialog_user_and_channel():
    state = SIGNER.dialog_state(p.EndDialog(incident_id="i" * 26, mark="ongoing@0"), USER, CHANNEL)
    opened = SIGNER.open_dialog_state(state, "end", USER, CHANNEL)
    assert p.EndDialog.parse(opened.args) == p.EndDialog(incident_id="i" * 26, mark="ongoing@0")
    with pytest.raises(SignatureError, match="another dialog"):
        SIGNER.open_dialog_state(state, "restart", USER, CHANNEL)


def test_the_previous_formats_verify_as_outdated_and_nothing_else_does():
    old_body = {"a": "check", "c": CHANNEL, "v": {"i": "i" * 26, "s": "s" * 26, "m": "open@0"}}
    old = {**old_body, "s": SIGNER.sign("action", old_body)}  # exactly what the previous version posted
    with pytest.raises(OutdatedPayload) as outdated:
        SIGNER.open_action_context(old, CHANNEL)
    assert outdated.value.action == "check" and outdated.value.old_args["i"] == "i" * 26
    for forged in ({**old, "s": "x" * 43}, {**old, "v": {"i": "other"}}, {**old, "a": "end"}):
        with pytest.raises(SignatureError) as error:
            SIGNER.open_action_context(forged, CHANNEL)
        assert not isinstance(error.value, OutdatedPayload)
    with pytest.raises(SignatureError, match="outside its channel"):
        SIGNER.open_action_context(old, "x" * 26)
    # A new context's signature never verifies as an old one, nor the other way round.
    new = SIGNER.action_context(p.ShowHelp(), CHANNEL)
    with pytest.raises(SignatureError):
        SIGNER.open_action_context({"a": new["action"], "c": CHANNEL, "v": {}, "s": new["signature"]}, CHANNEL)
    old_state = {"d": "end", "u": USER, "c": CHANNEL, "e": 10**13, "n": "nonce", "v": {"i": "i" * 26}}
    encoded = base64.urlsafe_b64encode(json.dumps(old_state, sort_keys=True, separators=(",", ":")).encode())
    state = encoded.decode().rstrip("=") + "." + SIGNER.sign("dialog", old_state)
    with pytest.raises(OutdatedPayload):
        SIGNER.open_dialog_state(state, "end", USER, CHANNEL)


class Handlers:
    def __init__(self) -> None:
        self.seen: list[object] = []

    @on_action(Action.CHECK)
    async def check(self, callback: ActionCallback, step: p.CheckStep) -> ActionReply:
        self.seen.append(step)
        return ActionReply(ephemeral_text=f"checked {step.step_id}")

    @on_dialog(Dialog.END)
    async def end(self, form: DialogSubmission, dialog: p.EndDialog) -> DialogReply:
        self.seen.append(dialog)
        return DialogReply()

    @on_outdated_button()
    async def outdated(self, callback: ActionCallback) -> ActionReply:
        self.seen.append(("outdated", callback.action, dict(callback.args)))
        return ActionReply(ephemeral_text="This card is out of date — it has been refreshed; try again.")


async def test_the_registry_hands_handlers_the_parsed_model():
    handlers = Handlers()
    registry = Registry([handlers])
    assert registry.payload_models[("action", "check")] is p.CheckStep
    callback = ActionCallback(user_id=USER, channel_id=CHANNEL, action="check",
                              args={"incident_id": "i", "step_id": "s", "mark": "m"})
    assert (await registry.action(callback)).ephemeral_text == "checked s"
    assert handlers.seen == [p.CheckStep(incident_id="i", step_id="s", mark="m")]
    with pytest.raises(p.PayloadError):
        await registry.action(callback.model_copy(update={"args": {"incident_id": "i"}}))


def test_a_handler_must_take_its_own_actions_model():
    class Wrong:
        @on_action(Action.END)
        async def end(self, callback: ActionCallback, step: p.CheckStep) -> ActionReply:
            return ActionReply()

    class Untyped:
        @on_action(Action.END)
        async def end(self, callback: ActionCallback, step) -> ActionReply:  # type: ignore[no-untyped-def]
            return ActionReply()

    with pytest.raises(ValueError, match="CheckStep, the payload of 'check'"):
        Registry([Wrong()])
    with pytest.raises(ValueError, match="must be annotated"):
        Registry([Untyped()])


@pytest.fixture
async def server():
    handlers = Handlers()
    registry = Registry([handlers])
    tokens = CommandTokens()
    tokens.set(TEAM, "k" * 26)

    async def health():
        return True, {}

    inbound = InboundServer(registry, SIGNER, tokens, health, trigger="ir")
    client = TestClient(TestServer(inbound.app))
    await client.start_server()
    yield client, handlers
    await client.close()


def click(context: object, **extra: object) -> dict:
    return {"user_id": USER, "channel_id": CHANNEL, "team_id": TEAM, "post_id": "p" * 26,
            "trigger_id": trigger(), "type": "button", "context": context, **extra}


async def test_a_signed_payload_that_does_not_parse_is_refused_like_a_bad_signature(server):
    client, handlers = server
    good = SIGNER.action_context(p.CheckStep(incident_id="i", step_id="s", mark="m"), CHANNEL)
    assert (await client.post(Route.ACTION.value, json=click(good))).status == 200
    # Signed by the bot (so the signature verifies) but not a CheckStep: refused before any handler.
    body = {"action": "check", "channel_id": CHANNEL, "payload": {"incident_id": "i"}}
    malformed = {**body, "signature": SIGNER.sign("button", body)}
    refused = await client.post(Route.ACTION.value, json=click(malformed))
    forged = await client.post(Route.ACTION.value, json=click({**good, "signature": "x"}))
    assert refused.status == forged.status == 401
    assert "CheckStep" in (await refused.json())["error"]
    state_body = SIGNER.dialog_state(p.Blank(), USER, CHANNEL)  # a state for another dialog's model
    submission = {"type": "dialog_submission", "callback_id": "end", "user_id": USER, "channel_id": CHANNEL,
                  "team_id": TEAM, "submission": {}, "state": state_body}
    assert (await client.post(Route.DIALOG.value, json=submission)).status == 401
    assert len(handlers.seen) == 1


async def test_a_click_on_a_button_of_the_previous_version_is_answered_not_acted_on(server):
    client, handlers = server
    body = {"a": "check", "c": CHANNEL, "v": {"i": "i" * 26, "s": "s" * 26, "m": "open@0"}}
    response = await client.post(Route.ACTION.value, json=click({**body, "s": SIGNER.sign("action", body)}))
    assert response.status == 200
    assert await response.json() == {"ephemeral_text": "This card is out of date — it has been refreshed; "
                                                       "try again."}
    assert handlers.seen == [("outdated", "check", body["v"])]   # never the Check handler
    # Its trigger id is spent like any other: a replay of the same old click is refused.
    spent = click({**body, "s": SIGNER.sign("action", body)})
    assert (await client.post(Route.ACTION.value, json=spent)).status == 200
    assert (await client.post(Route.ACTION.value, json=spent)).status == 401


async def test_without_an_outdated_handler_the_inbound_server_answers_itself():
    registry = Registry()
    inbound = InboundServer(registry, SIGNER, CommandTokens(), lambda: None)  # type: ignore[arg-type]
    client = TestClient(TestServer(inbound.app))
    await client.start_server()
    try:
        body = {"a": "showhelp", "c": CHANNEL, "v": {}}
        response = await client.post(Route.ACTION.value, json=click({**body, "s": SIGNER.sign("action", body)}))
        assert response.status == 200 and (await response.json())["ephemeral_text"] == OUTDATED_BUTTON
        unknown = SIGNER.action_context(p.ShowHelp(), CHANNEL)
        answer = await (await client.post(Route.ACTION.value, json=click(unknown))).json()
        assert "/incident help" in answer["ephemeral_text"]     # the default trigger, through the helper
    finally:
        await client.close()


async def test_a_dialog_opened_before_an_update_is_answered_in_the_dialog(server):
    client, handlers = server
    old_state = {"d": "end", "u": USER, "c": CHANNEL, "e": 10**13, "n": "nonce", "v": {"i": "i" * 26}}
    encoded = base64.urlsafe_b64encode(json.dumps(old_state, sort_keys=True, separators=(",", ":")).encode())
    state = encoded.decode().rstrip("=") + "." + SIGNER.sign("dialog", old_state)
    submission = {"type": "dialog_submission", "callback_id": "end", "user_id": USER, "channel_id": CHANNEL,
                  "team_id": TEAM, "submission": {}, "state": state}
    response = await client.post(Route.DIALOG.value, json=submission)
    assert response.status == 200 and await response.json() == {"error": OUTDATED_DIALOG}
    assert handlers.seen == []


def ids(n: int) -> str:
    return f"{n:026d}".replace("0", "b")


def test_a_full_card_stays_far_inside_the_post_props_limit():
    """model/post.go: PostPropsMaxRunes = 800000, PostPropsMaxUserRunes = PostPropsMaxRunes - 40000.
    Readable payload names cost about 45 bytes a button (measured: 172 → 217 bytes a context)."""
    from sandbox.state import MAX_PROPS_RUNES, props_runes

    stages = tuple(Stage(id=ids(100 + s), title=f"Stage {s}", steps=tuple(
        Step(id=ids(1000 + s * 100 + n), title=f"Step {n}", description="Why", command="/echo hi",
             assignee_id=ids(3)) for n in range(50))) for s in range(3))
    incident = Incident(id="a" * 26, team_id=ids(1), channel_id=ids(2), name="Checkout down", commander_id=ids(3),
                        creator_id=ids(3), stages=stages, created_at=0)
    ctx = CardContext(usernames={ids(3): "alice"}, signer=SIGNER, action_url="http://127.0.0.1:8065/mattermost/action",
                      now_ms=0)
    card = incident_card(incident, ctx)
    contexts = [a["integration"]["context"] for att in card["props"]["attachments"] for a in att.get("actions", [])]
    per_button = max(len(json.dumps(c, separators=(",", ":"))) for c in contexts)
    print(f"buttons={len(contexts)} context_bytes_max={per_button} props_runes={props_runes(card['props'])}")
    assert per_button < 300
    # 205 buttons in about 86,000 runes: a ninth of what a bot's post may carry (the card at every playbook
    # limit is checked in test_step_descriptions_card).
    assert props_runes(card["props"]) < (MAX_PROPS_RUNES - 40_000) // 5
