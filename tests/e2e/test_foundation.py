"""The bot's foundation through the sandbox: help, command registration, callback authentication."""

from __future__ import annotations

from urllib.parse import parse_qsl

import aiohttp
import pytest

from bot import CommandCenter, StartupError
from gateway.ids import Route
from settings import Settings
from tests.e2e.conftest import bot_settings

SUBCOMMANDS = ("start", "end", "restart", "commander", "stage", "check", "uncheck", "assign", "run", "step",
               "info", "list", "export", "announce", "playbook", "help")


def incident_commands(sandbox):
    team_id = sandbox.team("acme")["id"]
    return [c for c in sandbox.commands(team_id) if c["trigger"] == "incident" and not c.get("delete_at")]


async def test_help_by_slash_command(sandbox, bot):
    alice = sandbox.user("alice")
    before = len(sandbox.posts(sandbox.channel("acme", "town-square")["id"]))
    result = await alice.command("town-square", "/incident help")
    assert result.status == 200 and result.error is None
    assert len(result.ephemeral) == 1
    text = result.ephemeral[0]
    for word in SUBCOMMANDS:
        assert f"/incident {word}" in text
    assert "/incident check 1.2" in text  # examples are included
    # Ephemeral: nothing was posted to the channel for everyone.
    assert len(sandbox.posts(sandbox.channel("acme", "town-square")["id"])) == before


@pytest.mark.parametrize("text", ["/incident", "/incident frobnicate now", "/incident   HELP"])
async def test_no_or_unknown_subcommand_gives_help(sandbox, bot, text):
    result = await sandbox.user("bob").command("town-square", text)
    assert result.status == 200
    assert "/incident start" in result.ephemeral[0]
    if "frobnicate" in text:
        assert result.ephemeral[0].startswith("`frobnicate` is not a Command Center command")


async def test_help_by_direct_message(sandbox, bot):
    bob = sandbox.user("bob")
    dm = await bob.dm_channel("incident")
    await bob.post(dm, "help")
    bot_id = sandbox.user_id("incident")
    replies = await sandbox.wait_for(lambda: [p for p in sandbox.posts(dm) if p["user_id"] == bot_id])
    assert len(replies) == 1
    assert "Send me these words here" in replies[0]["message"]
    for word in SUBCOMMANDS:
        assert f"`{word}" in replies[0]["message"]


async def test_command_registered_once_across_restarts(sandbox, start_bot):
    first = await start_bot()
    commands = incident_commands(sandbox)
    assert len(commands) == 1
    command = commands[0]
    assert command["url"] == first.callback_base_url + Route.COMMAND.value
    assert command["auto_complete"] is True and command["auto_complete_hint"]
    await first.stop()
    second = await start_bot()  # a new port: the same command is updated, not duplicated
    await second.stop()
    third = await start_bot()
    commands = incident_commands(sandbox)
    assert len(commands) == 1
    assert commands[0]["id"] == command["id"]
    assert commands[0]["url"] == third.callback_base_url + Route.COMMAND.value
    # And the live bot accepts the command's token.
    result = await sandbox.user("alice").command("town-square", "/incident help")
    assert result.status == 200 and "/incident start" in result.ephemeral[0]


async def test_unchanged_command_is_left_alone(sandbox, start_bot):
    app = await start_bot(listen_port=0)
    port = app.inbound.port
    before = incident_commands(sandbox)[0]
    await app.stop()
    await start_bot(listen_port=port)
    after = incident_commands(sandbox)[0]
    assert after["update_at"] == before["update_at"]


async def test_wrong_or_missing_token_rejected_and_nothing_posted(sandbox, bot):
    channel = sandbox.channel("acme", "town-square")
    alice = sandbox.user("alice")
    await alice.command("town-square", "/incident help")
    genuine = [c for c in sandbox.callbacks if c.url.endswith(Route.COMMAND.value)][-1]
    posts_before = len(sandbox.posts(channel["id"]))
    async with aiohttp.ClientSession() as http:
        url = bot.callback_base_url + Route.COMMAND.value
        fields = dict(parse_qsl(genuine.body.decode()))
        # Replaying the very request Mattermost made is refused.
        async with http.post(url, data=fields) as response:
            assert response.status == 401
        for token in ("", "x" * 26):
            forged = {**fields, "token": token}
            async with http.post(url, data=forged) as response:
                assert response.status == 401
    assert len(sandbox.posts(channel["id"])) == posts_before


async def test_rotated_token_is_refused_until_restart(sandbox, bot):
    """An administrator regenerates the command token: Mattermost's requests now carry a token the
    bot has not seen, so the user gets an error and nothing happens."""
    admin = sandbox.user("alice")
    command = incident_commands(sandbox)[0]
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {admin.token}"}) as http:
        async with http.put(f"{sandbox.url}/api/v4/commands/{command['id']}/regen_token") as response:
            assert response.status == 200
    result = await admin.command("town-square", "/incident help")
    assert result.status != 200 and result.error is not None
    assert result.ephemeral == []


async def test_forged_clicks_and_dialogs_are_401(sandbox, bot):
    base = bot.callback_base_url
    user_id = sandbox.user_id("alice")
    channel_id = sandbox.channel("acme", "town-square")["id"]
    click = {"user_id": user_id, "channel_id": channel_id, "post_id": "p" * 26, "trigger_id": "",
             "context": {"a": "showhelp", "c": channel_id, "v": {}}}
    dialog = {"type": "dialog_submission", "callback_id": "none", "user_id": user_id, "channel_id": channel_id,
              "state": "e30.bad", "submission": {}, "cancelled": False}
    async with aiohttp.ClientSession() as http:
        async with http.post(base + Route.ACTION.value, json=click) as response:
            assert response.status == 401
        async with http.post(base + Route.DIALOG.value, json=dialog) as response:
            assert response.status == 401
        async with http.get(base + Route.HEALTH.value) as response:
            assert response.status == 200 and (await response.json())["websocket"] == "connected"


async def test_bad_token_gives_a_clear_startup_error(sandbox, tmp_path):
    app = CommandCenter(bot_settings(sandbox, tmp_path, bot_token="wrong-token"))
    with pytest.raises(StartupError, match="CC_BOT_TOKEN"):
        await app.start()


async def test_unreachable_mattermost_gives_a_clear_startup_error(tmp_path):
    app = CommandCenter(Settings(mattermost_url="http://127.0.0.1:9", bot_token="t", listen_port=0,
                                 data_dir=tmp_path, request_timeout=2))
    with pytest.raises(StartupError, match="CC_MATTERMOST_URL"):
        await app.start()
