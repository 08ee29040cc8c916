"""The bot's HTTP server fed literal Mattermost request bodies: authentication and dispatch."""

import base64
import time
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.ids import Action, Route
from gateway.inbound import CommandTokens, InboundServer
from gateway.models import ActionReply, CommandReply, DialogReply
from gateway.payloads import Blank, ShowHelp
from gateway.routing import DEFAULT_COMMAND, Registry, on_action, on_command, on_dialog
from gateway.signing import Signer

TEAM, CHANNEL, USER = "t" * 26, "c" * 26, "u" * 26
TOKEN = "k" * 26


class Recorder:
    """A plugin that remembers what reached it."""

    def __init__(self):
        self.calls = []

    @on_command("ping")
    async def ping(self, command):
        self.calls.append(("ping", command))
        return CommandReply(text=f"pong {command.arguments}")

    @on_command(DEFAULT_COMMAND)
    async def fallback(self, command):
        self.calls.append(("fallback", command))
        return CommandReply(text="help")

    @on_command("boom")
    async def boom(self, command):
        raise RuntimeError("internal detail that must not leak")

    @on_action(Action.SHOW_HELP)
    async def clicked(self, callback):
        self.calls.append(("click", callback))
        return ActionReply(ephemeral_text="clicked")


class DialogPlugin:
    def __init__(self):
        self.calls = []

    @on_dialog(__import__("gateway.ids", fromlist=["Dialog"]).Dialog.NONE)
    async def submitted(self, form):
        self.calls.append(form)
        if form.submission.get("name") == "x":
            return DialogReply(errors={"name": "Name must be 2 to 64 characters."})
        return DialogReply()


_counter = iter(range(10**9))


def trigger(user=USER, at_ms=None):
    at_ms = int(time.time() * 1000) if at_ms is None else at_ms
    client_id = f"{next(_counter):026d}"
    return base64.b64encode(f"{client_id}:{user}:{at_ms}:c2ln".encode()).decode()


def form(text="ping hello", token=TOKEN, **extra):
    fields = {"token": token, "team_id": TEAM, "team_domain": "acme", "channel_id": CHANNEL,
              "channel_name": "town-square", "user_id": USER, "user_name": "alice", "command": "/incident",
              "text": text, "trigger_id": trigger(), "response_url": "http://mm/hooks/commands/x"}
    fields.update(extra)
    return fields


@pytest.fixture
async def server():
    router, recorder, dialogs = Registry(), Recorder(), DialogPlugin()
    router.include(recorder)
    router.include(dialogs)
    tokens = CommandTokens()
    tokens.set(TEAM, TOKEN)
    signer = Signer("secret" * 8)

    async def health():
        return True, {"websocket": "connected"}

    inbound = InboundServer(router, signer, tokens, health)
    client = TestClient(TestServer(inbound.app))
    await client.start_server()
    yield client, recorder, dialogs, signer, inbound
    await client.close()


async def post_form(client, fields, headers=None):
    return await client.post(Route.COMMAND.value, data=urlencode(fields),
                             headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})})


async def test_slash_command_dispatch_and_reply(server):
    client, recorder, *_ = server
    response = await post_form(client, form(), {"Authorization": f"Token {TOKEN}"})
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    assert await response.json() == {"response_type": "ephemeral", "text": "pong hello"}
    assert recorder.calls[0][1].user_id == USER


async def test_get_method_command(server):
    client, _recorder, *_ = server
    response = await client.get(Route.COMMAND.value, params=form("ping q"))
    assert response.status == 200 and (await response.json())["text"] == "pong q"


async def test_unknown_subcommand_goes_to_fallback(server):
    client, recorder, *_ = server
    response = await post_form(client, form("frobnicate"))
    assert (await response.json())["text"] == "help"
    assert recorder.calls[-1][0] == "fallback"


@pytest.mark.parametrize("bad", [{"token": ""}, {"token": "z" * 26}, {"team_id": "o" * 26}])
async def test_wrong_or_missing_token_is_401_and_nothing_runs(server, bad):
    client, recorder, *_ = server
    fields = form()
    fields.update(bad)
    response = await post_form(client, fields)
    assert response.status == 401
    assert recorder.calls == []


async def test_header_token_must_agree_with_form(server):
    client, recorder, *_ = server
    response = await post_form(client, form(), {"Authorization": "Token " + "z" * 26})
    assert response.status == 401 and recorder.calls == []


async def test_replayed_command_rejected(server):
    client, recorder, *_ = server
    fields = form()
    assert (await post_form(client, fields)).status == 200
    assert (await post_form(client, fields)).status == 401
    assert len(recorder.calls) == 1


async def test_handler_failure_becomes_a_user_message_without_details(server):
    client, *_ = server
    response = await post_form(client, form("boom"))
    body = await response.json()
    assert response.status == 200
    assert "Something went wrong" in body["text"] and "internal detail" not in body["text"]


async def test_malformed_command_bodies(server):
    client, recorder, *_ = server
    response = await client.post(Route.COMMAND.value, data=b"\xff\xfe=\xff",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status in (400, 401)
    fields = form()
    del fields["user_id"]
    assert (await post_form(client, fields)).status == 400
    assert recorder.calls == []


def action_body(signer, context=None, **extra):
    body = {"user_id": USER, "user_name": "alice", "channel_id": CHANNEL, "channel_name": "inc", "team_id": TEAM,
            "team_domain": "acme", "post_id": "p" * 26, "trigger_id": trigger(), "type": "button",
            "context": context if context is not None else signer.action_context(ShowHelp(), CHANNEL)}
    body.update(extra)
    return body


async def test_signed_click_dispatches(server):
    client, recorder, _, signer, _ = server
    response = await client.post(Route.ACTION.value, json=action_body(signer))
    assert response.status == 200 and await response.json() == {"ephemeral_text": "clicked"}
    assert recorder.calls[-1][1].action == Action.SHOW_HELP


async def test_forged_unsigned_replayed_clicks_rejected(server):
    client, recorder, _, signer, _ = server
    unsigned = {"action": Action.SHOW_HELP.value, "channel_id": CHANNEL, "payload": {}}
    forged = Signer("other-secret" * 4).action_context(ShowHelp(), CHANNEL)
    moved = signer.action_context(ShowHelp(), "x" * 26)
    for context in (unsigned, forged, moved, {}):
        response = await client.post(Route.ACTION.value, json=action_body(signer, context))
        assert response.status == 401
    body = action_body(signer)
    assert (await client.post(Route.ACTION.value, json=body)).status == 200
    assert (await client.post(Route.ACTION.value, json=body)).status == 401  # replay
    other_user = action_body(signer, user_id="o" * 26)  # trigger id names USER
    assert (await client.post(Route.ACTION.value, json=other_user)).status == 401
    assert len(recorder.calls) == 1
    for raw in (b"not json", b"[1,2]"):
        response = await client.post(Route.ACTION.value, data=raw, headers={"Content-Type": "application/json"})
        assert response.status == 400


def dialog_body(signer, submission, user=USER, state=None, cancelled=False):
    return {"type": "dialog_submission", "callback_id": "none", "user_id": user, "channel_id": CHANNEL,
            "team_id": TEAM, "submission": None if cancelled else submission, "cancelled": cancelled,
            "state": state if state is not None else signer.dialog_state(Blank(), USER, CHANNEL)}


async def test_dialog_errors_keep_it_open_then_submit_once(server):
    client, _, dialogs, signer, _ = server
    state = signer.dialog_state(Blank(), USER, CHANNEL)
    response = await client.post(Route.DIALOG.value, json=dialog_body(signer, {"name": "x"}, state=state))
    assert await response.json() == {"errors": {"name": "Name must be 2 to 64 characters."}}
    response = await client.post(Route.DIALOG.value, json=dialog_body(signer, {"name": "ok"}, state=state))
    assert response.status == 200 and await response.json() == {}
    replay = await client.post(Route.DIALOG.value, json=dialog_body(signer, {"name": "ok"}, state=state))
    assert replay.status == 401
    assert [form.submission["name"] for form in dialogs.calls] == ["x", "ok"]


async def test_forged_or_tampered_dialog_rejected(server):
    client, _, dialogs, signer, _ = server
    state = signer.dialog_state(Blank(), USER, CHANNEL)
    cases = [
        dialog_body(signer, {"name": "ok"}, state=""),
        dialog_body(signer, {"name": "ok"}, state=Signer("x" * 40).dialog_state(Blank(), USER, CHANNEL)),
        dialog_body(signer, {"name": "ok"}, user="o" * 26, state=state),
        {**dialog_body(signer, {"name": "ok"}), "callback_id": "unknown"},
    ]
    for body in cases:
        assert (await client.post(Route.DIALOG.value, json=body)).status == 401
    assert (await client.post(Route.DIALOG.value, json={**dialog_body(signer, {}), "type": "other"})).status == 400
    assert dialogs.calls == []


async def test_oversized_body_rejected(server):
    client, recorder, *_ = server
    response = await post_form(client, form("ping " + "x" * (2 * 1024 * 1024)))
    assert response.status == 413 and recorder.calls == []


async def test_healthz(server):
    client, *_ = server
    response = await client.get(Route.HEALTH.value)
    assert response.status == 200 and (await response.json())["websocket"] == "connected"
