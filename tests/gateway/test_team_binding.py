"""Every command and callback is bound to its channel's team (issue 13 F6).

The world is the demo seed plus a second team, globex (alice, bob and the bot). A command token is
per team, and anyone who holds acme's (an acme team admin can read it) can write any channel into
the form: the bot must refuse a channel of another team, however the request is dressed.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from bot import CommandCenter
from gateway.binding import ChannelTeams
from gateway.errors import MattermostError
from gateway.ids import Route
from gateway.models import Channel
from sandbox import Sandbox, SandboxConfig
from tests.e2e.conftest import EDIT_TIME_LIMIT, bot_settings
from tests.e2e.test_history import store_playbook, two_team_seed
from tests.e2e.test_incidents import start_incident
from tests.gateway.test_hostile import FORM, fresh_trigger, send, snapshot, url


@pytest.fixture
async def sandbox():
    async with Sandbox(two_team_seed(), config=SandboxConfig(post_edit_time_limit=EDIT_TIME_LIMIT)) as sb:
        yield sb


@pytest.fixture
async def bot(sandbox, tmp_path):
    app = CommandCenter(bot_settings(sandbox, tmp_path / "data"))
    await app.start()
    try:
        await app.wait_connected()
        yield app
    finally:
        await app.stop()


@pytest.fixture
async def globex_secret(sandbox, bot):
    """A private globex incident that bob started the way people do (slash command, dialog)."""
    await store_playbook(bot, sandbox, title="Globex security", team="globex", public=False, members=("bob",))
    incident, channel = await start_incident(sandbox, bot, "bob", "Globex breach", where="globex/town-square")
    assert channel["type"] == "P" and channel["team_id"] == sandbox.team("globex")["id"]
    return incident


def acme_command(sandbox, bot) -> dict[str, str]:
    """The fields of a genuine acme /incident command (typed by dave in acme's town-square)."""
    acme = sandbox.team("acme")["id"]
    return {"token": bot.tokens._by_team[acme], "team_id": acme, "team_domain": "acme",
            "channel_id": sandbox.channel("acme", "town-square")["id"], "channel_name": "town-square",
            "user_id": sandbox.user_id("dave"), "user_name": "dave", "command": "/incident", "text": "help"}


async def test_acme_token_cannot_act_on_a_globex_channel(sandbox, bot, globex_secret, http):
    """The issue's request: acme's token, team_id=acme, channel_id=globex's private incident channel,
    and a user id of a member there. It neither advances the stage nor answers with the info."""
    before = snapshot(bot, sandbox)
    bob = sandbox.user_id("bob")
    for text in ("stage next", "info", "check 1.1", "export", "end"):
        fields = {**acme_command(sandbox, bot), "channel_id": globex_secret.channel_id, "channel_name": "x",
                  "user_id": bob, "user_name": "bob", "text": text, "trigger_id": fresh_trigger(bob)}
        async with http.post(url(bot, Route.COMMAND), data=urlencode(fields).encode(),
                             headers={"Content-Type": FORM, "Authorization": f"Token {fields['token']}"}) as response:
            body = await response.text()
            assert response.status == 401, (text, body)
            assert "Globex breach" not in body and "another team" in body
    assert snapshot(bot, sandbox) == before
    current = await bot.store.get_incident(globex_secret.id)
    assert current.active_stage == 0 and current.steps_done == 0 and current.is_ongoing


async def test_the_binding_holds_after_the_bot_is_removed_from_the_incident_channel(sandbox, bot, globex_secret,
                                                                                     http):
    """Mattermost then no longer tells the bot the channel's team; the store still does."""
    world = sandbox.world
    world.remove_member(world.channels[globex_secret.channel_id], sandbox.user_id("incident"),
                        sandbox.user_id("bob"))
    bot.inbound.channel_teams._teams.clear()
    bob = sandbox.user_id("bob")
    fields = {**acme_command(sandbox, bot), "channel_id": globex_secret.channel_id, "user_id": bob,
              "text": "stage next", "trigger_id": fresh_trigger(bob)}
    assert await send(http, "POST", url(bot, Route.COMMAND), body=urlencode(fields).encode(),
                      content_type=FORM) == 401
    assert (await bot.store.get_incident(globex_secret.id)).active_stage == 0


async def test_clicks_and_dialogs_claiming_another_team_are_refused(sandbox, bot, globex_secret, http):
    """A click's and a dialog's team is the channel's (doPostAction; submitDialog on current servers):
    a request that names another team for a globex channel is forged and changes nothing."""
    bob = sandbox.user("bob")
    await bob.click(globex_secret.card_post_id, "End incident")
    click = [c for c in sandbox.callbacks if c.kind == "action"][-1].json()
    assert click["team_id"] == sandbox.team("globex")["id"]
    await bob.cancel_dialog()
    before = snapshot(bot, sandbox)
    acme = sandbox.team("acme")["id"]
    forged = {**click, "team_id": acme, "trigger_id": fresh_trigger(bob.id)}
    assert await send(http, "POST", url(bot, Route.ACTION), body=json.dumps(forged).encode(),
                      content_type="application/json") == 401
    # A genuine end dialog, submitted for the wrong team.
    opened = await bob.click(globex_secret.card_post_id, "End incident")
    assert opened.dialog is not None
    dialog = {"type": "dialog_submission", "callback_id": opened.dialog["dialog"]["callback_id"],
              "state": opened.dialog["dialog"]["state"], "user_id": bob.id,
              "channel_id": globex_secret.channel_id, "team_id": acme, "submission": {}, "cancelled": False}
    before = snapshot(bot, sandbox)[0]
    assert await send(http, "POST", url(bot, Route.DIALOG), body=json.dumps(dialog).encode(),
                      content_type="application/json") == 401
    assert snapshot(bot, sandbox)[0] == before
    assert (await bot.store.get_incident(globex_secret.id)).is_ongoing


async def test_genuine_commands_in_each_team_and_in_direct_messages_still_work(sandbox, bot, globex_secret):
    bob = sandbox.user("bob")
    result = await bob.command(globex_secret.channel_id, "/incident stage next")
    assert result.status == 200 and not result.ephemeral, (result.error, result.ephemeral)
    assert (await bot.store.get_incident(globex_secret.id)).active_stage == 1
    in_acme = await bob.command("town-square", "/incident help")
    assert in_acme.status == 200 and in_acme.ephemeral
    # A direct message belongs to no team: Mattermost checks the user's team itself.
    dm = await bob.dm_channel("alice")
    in_dm = await bob.command(dm, "/incident list")
    assert in_dm.status == 200 and in_dm.ephemeral, in_dm.error


class _Channels:
    def __init__(self, teams: dict[str, str]) -> None:
        self.teams = teams
        self.calls = 0

    async def get_channel(self, channel_id: str) -> Channel:
        self.calls += 1
        if channel_id not in self.teams:
            raise MattermostError(403, "api.context.permissions.app_error", "no")
        return Channel(id=channel_id, team_id=self.teams[channel_id])


async def test_channel_teams_costs_one_lookup_per_channel_and_follows_a_moved_channel():
    import asyncio

    channels = _Channels({"c1": "acme", "dm": ""})
    teams = ChannelTeams(channels)
    results = await asyncio.gather(*(teams.mismatch("c1", "acme") for _ in range(20)))
    assert results == [None] * 20 and channels.calls == 1
    assert await teams.mismatch("c1", "globex") == "the channel belongs to another team"
    assert await teams.mismatch("dm", "globex") is None  # direct messages have no team
    assert await teams.mismatch("hidden", "acme") is None  # unknown to the bot: it cannot act there
    channels.teams["c1"] = "globex"  # a system admin moved the channel
    calls = channels.calls
    assert await teams.mismatch("c1", "globex") is None
    assert channels.calls == calls + 1
