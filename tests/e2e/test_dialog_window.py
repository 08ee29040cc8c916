"""Dialogs open within a trigger id's life (3 s on the strictest supported server), also under load.

The sandbox runs with its default 3 s trigger-id lifetime. What the bot asks Mattermost before
``POST /actions/dialogs/open`` decides whether a dialog opens on a slow or busy server, so those
calls are counted from the sandbox's recording.
"""

from __future__ import annotations

import asyncio

from bot import CommandCenter
from sandbox import Sandbox, SandboxConfig
from tests.e2e.conftest import bot_settings, make_playbook
from tests.e2e.test_incidents import card, start_incident

USERS = 20
DIALOG_OPEN = "/api/v4/actions/dialogs/open"


def crowd(users: int) -> dict:
    """A seed: team acme, ``users`` people and the bot, all in town-square."""
    names = [f"u{i:02d}" for i in range(users)]
    people = [{"username": name, "teams": [{"name": "acme"}]} for name in names]
    bot = {"username": "incident", "is_bot": True, "teams": [{"name": "acme", "roles": "team_user team_admin"}]}
    return {"teams": [{"name": "acme", "display_name": "ACME"}], "users": people + [bot],
            "channels": [{"team": "acme", "name": "town-square", "display_name": "Town Square", "type": "O",
                          "members": names + ["incident"]}]}


def bot_calls_before_dialog(sandbox: Sandbox) -> list[str]:
    """The bot's REST calls recorded before its (only) dialog open since the last clear_recording."""
    token = f"Bearer {sandbox.token_of('incident')}"
    calls = []
    for exchange in sandbox.recording:
        if exchange.path == DIALOG_OPEN:
            assert exchange.status == 200, exchange.response_body
            return calls
        if exchange.headers.get("Authorization") == token:
            calls.append(f"{exchange.method} {exchange.path}")
    raise AssertionError("no dialog was opened")


async def test_twenty_users_open_the_start_dialog_at_once_on_a_slow_server(tmp_path):
    """20 people type /incident start together while every lookup the bot makes takes 1.6 s:
    everyone gets the dialog (two lookups in a row before opening would outlive the trigger id)."""
    async with Sandbox(crowd(USERS), config=SandboxConfig()) as sandbox:
        assert sandbox.config.trigger_id_lifetime == 3.0
        app = CommandCenter(bot_settings(sandbox, tmp_path / "data"))
        await app.start()
        try:
            await app.wait_connected()
            people = [sandbox.user(f"u{i:02d}") for i in range(USERS)]
            for index, person in enumerate(people):
                await make_playbook(app, sandbox, title=f"Playbook {index}", members=(person.username,))
            sandbox.faults.add("slow", delay=1.6, path="/api/v4/users*", methods="GET", users=["incident"])
            sandbox.faults.add("slow", delay=1.6, path="/api/v4/teams/*", methods="GET", users=["incident"])

            # Whether each dialog opened within its trigger id's life is the sandbox's judgement (it
            # refuses an expired trigger id, as Mattermost does); nothing here reads a clock.
            outcomes = await asyncio.gather(*(person.command("town-square", f"/incident start Outage {index}")
                                              for index, person in enumerate(people)))
        finally:
            await app.stop()
    for index, result in enumerate(outcomes):
        assert result.status == 200 and not result.ephemeral, (index, result.ephemeral, result.error)
        assert result.dialog is not None, index
        options = result.dialog["dialog"]["elements"][0]["options"]
        assert [o["text"] for o in options] == [f"Playbook {index}"]


async def test_what_the_bot_asks_before_each_dialog(sandbox, bot):
    """Per dialog, the REST calls made before it opens: none that Mattermost has vouched for already
    (the slash command's team, the clicker's read access), none for who may change what."""
    await make_playbook(bot, sandbox, members=("bob", "carol"))
    bob, carol = sandbox.user("bob"), sandbox.user("carol")
    incident, channel = await start_incident(sandbox, bot, user="bob")  # bob's user record is cached from here
    await bob.command(channel["id"], "/incident commander @bob")

    measured: dict[str, list[str]] = {}

    async def measure(name: str, person, act) -> None:
        sandbox.clear_recording()
        result = await act()
        assert result.dialog is not None, (name, result.ephemeral, result.error)
        measured[name] = bot_calls_before_dialog(sandbox)
        await person.cancel_dialog()

    await measure("start (slash, first time)", carol, lambda: carol.command("town-square", "/incident start Second"))
    await measure("start (slash)", bob, lambda: bob.command("town-square", "/incident start Second"))
    await measure("end (slash)", bob, lambda: bob.command(channel["id"], "/incident end"))
    await measure("end (button)", bob, lambda: bob.click(incident.card_post_id, "End incident"))
    await measure("commander (button)", bob, lambda: bob.click(incident.card_post_id, "Change commander"))
    step = card(sandbox, incident)["props"]["attachments"][2]["actions"][1]
    await measure("assign (button)", bob, lambda: bob.click(incident.card_post_id, step["id"]))
    await measure("playbook create (slash)", bob, lambda: bob.command("town-square", "/incident playbook create"))
    await measure("playbook edit (slash)", bob,
                  lambda: bob.command("town-square", '/incident playbook edit "Incident Response"'))
    await measure("playbook delete (slash)", bob,
                  lambda: bob.command("town-square", '/incident playbook delete "Incident Response"'))
    await measure("playbook import (slash)", bob, lambda: bob.command("town-square", "/incident playbook import"))
    assert measured == {
        # who carol is (a system admin sees every playbook) is asked once a minute; her team never
        "start (slash, first time)": [f"GET /api/v4/users/{carol.id}"],
        "start (slash)": [], "end (slash)": [], "end (button)": [],
        # what these dialogs show: the channel's members (known from its creation and the
        # user_added / user_removed events since) and the people not seen in the last minute: none
        "commander (button)": [], "assign (button)": [],
        "playbook create (slash)": [], "playbook edit (slash)": [], "playbook delete (slash)": [],
        "playbook import (slash)": [],
    }


async def test_a_dialog_from_a_button_in_a_direct_message_checks_the_team_in_one_round_trip(sandbox, bot):
    """The start button in a DM carries a team Mattermost has not vouched for: the bot asks, but
    the user and the membership at once."""
    await make_playbook(bot, sandbox, members=("carol",))
    carol = sandbox.user("carol")
    dm = await carol.dm_channel("incident")
    await carol.post(dm, "start")
    offer = await sandbox.wait_for(lambda: [p for p in sandbox.posts(dm) if p["props"].get("attachments")])
    sandbox.faults.add("slow", delay=1.6, path="/api/v4/users*", methods="GET", users=["incident"])
    sandbox.faults.add("slow", delay=1.6, path="/api/v4/teams/*", methods="GET", users=["incident"])
    sandbox.clear_recording()
    action = await carol.click(offer[0]["id"], "Start incident in ACME")
    assert action.dialog is not None and not action.ephemeral, (action.ephemeral, action.error)
    asked = {call.split()[1].split("/")[3] for call in bot_calls_before_dialog(sandbox)}
    assert asked <= {"users", "teams"}


async def test_who_may_change_is_checked_when_the_dialog_is_submitted(sandbox, bot):
    """dave opens the commander and end dialogs as a member, then leaves the channel: what he submits
    afterwards is refused and nothing changes. (A non-member cannot click at all: Mattermost refuses a
    click on a post in a channel one is not in, api4 doPostAction.)"""
    await make_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    dave = sandbox.user("dave")
    await sandbox.user("alice").add_member(channel["id"], "dave")
    opened = await dave.click(incident.card_post_id, "Change commander")
    assert opened.dialog is not None
    world = sandbox.world
    world.remove_member(world.channels[channel["id"]], dave.id, dave.id)
    outcome = await dave.submit_dialog({"commander": sandbox.user_id("alice")})
    assert not outcome.closed and "Only members of the incident channel" in (outcome.error or "")
    current = await bot.store.get_incident(incident.id)
    assert current.is_ongoing and current.commander_id == sandbox.user_id("alice")
