"""Playbook settings end to end through the sandbox (slice "settings", issue 17): the settings dialog
as users see it, its refusals, the YAML round trip with settings, and a start that uses them.

The world is the demo one plus: ``ops-status`` (public; alice, bob, the bot), ``quiet`` (public; alice
only), ``announcements`` (public; bob and the bot, posting moderated), an archived ``old-news``, and
a second team ``globex`` with its channel ``globex-news`` and erin, who is only in globex.
"""

from __future__ import annotations

import pytest
import yaml

from domain.durations import HOUR_MS
from domain.models import Playbook, ReminderDelivery
from sandbox import Sandbox, SandboxConfig
from tests.e2e.conftest import DEMO_SEED, EDIT_TIME_LIMIT, make_playbook
from tests.e2e.test_playbooks import dm_bot, export_file, last_ephemeral_with_buttons, stored
from tests.e2e.test_start_flow_calls import bot_calls, start

SETTINGS = {"broadcast": "", "interval": "none", "template": "", "reminders": "both", "invite": "",
            "commander": "", "followers": ""}


@pytest.fixture
async def sandbox():
    seed = yaml.safe_load(DEMO_SEED.read_text())
    seed["teams"].append({"name": "globex", "display_name": "Globex"})
    for user in seed["users"]:
        if user["username"] in ("bob", "incident"):
            user["teams"] = [*user["teams"], {"name": "globex", "roles": "team_user team_admin"}
                             if user["username"] == "incident" else "globex"]
    seed["users"].append({"username": "erin", "email": "erin@example.com", "teams": ["globex"]})
    seed["channels"] += [
        {"team": "acme", "name": "ops-status", "type": "O", "members": ["alice", "bob", "incident"]},
        {"team": "acme", "name": "quiet", "type": "O", "members": ["alice"]},
        {"team": "acme", "name": "announcements", "type": "O", "members": ["bob", "incident"]},
        {"team": "acme", "name": "old-news", "type": "O", "members": ["bob", "incident"]},
        {"team": "globex", "name": "town-square", "type": "O", "members": ["bob", "erin", "incident"]},
        {"team": "globex", "name": "globex-news", "type": "O", "members": ["bob", "erin", "incident"]},
    ]
    async with Sandbox(seed, config=SandboxConfig(record=True, post_edit_time_limit=EDIT_TIME_LIMIT)) as sb:
        sb.world.moderate_posting(sb.channel("acme", "announcements"))
        old_news = sb.world.channels[sb.channel("acme", "old-news")["id"]]
        sb.world.archive_channel(old_news, sb.user_id("bob"))
        yield sb


def settings_of(playbook: Playbook) -> tuple:
    return (playbook.updates, playbook.invited_user_ids, playbook.default_commander_id, playbook.auto_follower_ids)


async def test_the_settings_dialog_as_users_see_it(sandbox, bot):
    await make_playbook(bot, sandbox, title="Ops", members=("bob", "carol"))
    bob = sandbox.user("bob")
    await bob.command("town-square", "/incident playbook show Ops")
    opened = await bob.click(last_ephemeral_with_buttons(bob, "town-square")["id"], "Settings")
    dialog = opened.dialog["dialog"]
    assert dialog["callback_id"] == "playbooksettings" and dialog["title"] == "Playbook settings"
    elements = {e["name"]: e for e in dialog["elements"]}
    assert list(elements) == ["broadcast", "interval", "template", "reminders", "invite", "commander", "followers",
                              "webhooks"]  # the webhooks field: docs/webhooks.md, tests/e2e/test_webhooks.py
    assert elements["interval"]["default"] == "none" and elements["reminders"]["default"] == "both"
    assert elements["template"]["type"] == "textarea"

    result = await bob.submit_dialog({**SETTINGS, "broadcast": "~ops-status", "interval": "1h30m",
                                      "template": "**Impact:**\n**Next:**", "reminders": "channel",
                                      "invite": "@carol @dave", "commander": "@carol", "followers": "@alice"})
    assert result.closed, result
    ops = await stored(bot, sandbox, "Ops")
    assert ops.updates.broadcast_channel_ids == (sandbox.channel("acme", "ops-status")["id"],)
    assert ops.updates.interval_ms == HOUR_MS * 3 // 2 and ops.updates.template == "**Impact:**\n**Next:**"
    assert ops.updates.reminder_delivery is ReminderDelivery.CHANNEL
    assert ops.invited_user_ids == (sandbox.user_id("carol"), sandbox.user_id("dave"))
    assert ops.default_commander_id == sandbox.user_id("carol")
    assert ops.auto_follower_ids == (sandbox.user_id("alice"),)
    dm = await bob.dm_channel("incident")
    assert any("Saved the settings of playbook **Ops**" in p["message"] for p in sandbox.posts(dm))
    # Opened again (by the command this time), the dialog shows what was saved.
    again = await bob.command("town-square", "/incident playbook settings Ops")
    shown = {e["name"]: e.get("default", "") for e in again.dialog["dialog"]["elements"]}
    assert shown == {"broadcast": "~ops-status", "interval": "1h30m", "template": "**Impact:**\n**Next:**",
                     "reminders": "channel", "invite": "@carol @dave", "commander": "@carol", "followers": "@alice",
                     "webhooks": ""}


async def test_broadcast_channels_are_refused_by_name_and_nothing_is_saved(sandbox, bot):
    original = await make_playbook(bot, sandbox, title="Ops", members=("bob",))
    bob = sandbox.user("bob")
    await bob.command("town-square", "/incident playbook settings Ops")
    result = await bob.submit_dialog({**SETTINGS, "broadcast": "~globex-news, ~quiet ~announcements ~leadership "
                                                               "~old-news ~town-square"})
    assert not result.closed and set(result.errors) == {"broadcast"}
    text = result.errors["broadcast"]
    assert "~globex-news: no such channel in this team" in text  # another team's channel
    assert "~quiet: you are not a member of it" in text
    assert "~announcements: you cannot post in it" in text  # moderated: bob may read, not post
    assert "~leadership: no such channel in this team that I am in" in text  # private, the bot is not in it
    assert "~old-news: no such channel in this team" in text  # archived: Mattermost finds no such name
    assert "~town-square" not in text  # the one allowed
    assert settings_of(await stored(bot, sandbox, "Ops")) == settings_of(original)
    # The bot left the public channel it joined only to ask (alice's ~quiet).
    assert sandbox.user_id("incident") not in sandbox.channel_members(sandbox.channel("acme", "quiet")["id"])


async def test_only_members_may_change_settings_and_people_must_be_in_the_team(sandbox, bot):
    original = await make_playbook(bot, sandbox, title="Ops", members=("bob",))
    carol = sandbox.user("carol")
    refused = await carol.command("town-square", "/incident playbook settings Ops")
    assert refused.dialog is None and refused.ephemeral[0].startswith('No playbook titled "Ops" that you can use.')
    bob = sandbox.user("bob")
    await bob.command("town-square", "/incident playbook settings Ops")
    result = await bob.submit_dialog({**SETTINGS, "invite": "@erin"})  # in globex only
    assert result.errors == {"invite": "There is no user @erin in this team. Check the spelling."}
    result = await bob.submit_dialog({**SETTINGS, "followers": "@zed"})
    assert result.errors == {"followers": "There is no user @zed in this team. Check the spelling."}
    result = await bob.submit_dialog({**SETTINGS, "commander": "@incident"})
    assert set(result.errors) == {"commander"} and "bot" in result.errors["commander"]
    assert settings_of(await stored(bot, sandbox, "Ops")) == settings_of(original)


async def test_hostile_input_is_a_field_error(sandbox, bot):
    original = await make_playbook(bot, sandbox, title="Ops", members=("bob",))
    bob = sandbox.user("bob")
    await bob.command("town-square", "/incident playbook settings Ops")
    for values, field in (({"interval": "1h; DROP TABLE"}, "interval"), ({"interval": "8d"}, "interval"),
                          ({"template": "<script>" * 3000}, "template"), ({"reminders": "all"}, "reminders"),
                          ({"broadcast": "~" + "a" * 70}, "broadcast"), ({"commander": "@bob @carol"}, "commander")):
        result = await bob.submit_dialog({**SETTINGS, **values})
        assert not result.closed and set(result.errors) == {field}, (values, result)
    result = await bob.submit_dialog({**SETTINGS, "broadcast": "~<!channel>"})
    assert "<!channel>" not in result.errors["broadcast"]
    assert settings_of(await stored(bot, sandbox, "Ops")) == settings_of(original)


async def test_export_then_import_keeps_the_settings(sandbox, bot):
    await make_playbook(bot, sandbox, title="Round trip", members=("alice", "bob"))
    alice = sandbox.user("alice")
    await alice.command("town-square", '/incident playbook settings "Round trip"')
    assert (await alice.submit_dialog({**SETTINGS, "broadcast": "~ops-status ~town-square", "interval": "4h",
                                       "template": "Impact:", "reminders": "dm", "invite": "@carol",
                                       "commander": "@bob", "followers": "@carol @dave"})).closed
    original = await stored(bot, sandbox, "Round trip")
    _, text = await export_file(sandbox, "alice", "Round trip")
    assert "broadcast_channels:\n- ops-status\n- town-square\n" in text and "commander: bob\n" in text
    await bot.store.delete_playbook(original.id)
    replies = await dm_bot(sandbox, "alice", "playbook import", files=[("round-trip.yaml", text.encode())])
    assert replies[0]["message"].startswith("Imported a new playbook **Round trip**")
    imported = await stored(bot, sandbox, "Round trip")
    assert imported.id != original.id and settings_of(imported) == settings_of(original)
    # A file naming a channel the importer cannot post in is refused at its line.
    bad = text.replace("- town-square\n", "- announcements\n")
    replies = await dm_bot(sandbox, "alice", "playbook import", files=[("round-trip.yaml", bad.encode())])
    assert "~announcements: you are not a member of it." in replies[0]["message"]
    assert settings_of(await stored(bot, sandbox, "Round trip")) == settings_of(original)


async def test_a_start_uses_the_default_commander_invites_and_followers(sandbox, bot):
    playbook = await make_playbook(bot, sandbox, title="Ops", members=("alice",))
    ids = {name: sandbox.user_id(name) for name in ("alice", "bob", "carol", "dave", "erin")}
    # erin is not in the team (stored directly: the dialog refuses her), as if she had left it since.
    edited = playbook.model_copy(update={"invited_user_ids": (ids["dave"], ids["erin"]),
                                         "default_commander_id": ids["carol"], "auto_follower_ids": (ids["bob"],)})
    await bot.store.update_playbook(edited, expected_version=playbook.version)
    await start(sandbox, "alice", "Warm up")
    sandbox.clear_recording()
    await start(sandbox, "alice", "Payments down")
    incident = next(i for i in (await bot.store.list_incidents(sandbox.team("acme")["id"], is_admin=True,
                                                               per_page=50)).items if i.name == "Payments down")
    assert incident.commander_id == ids["carol"] and incident.follower_ids == (ids["bob"],)
    members = sandbox.channel_members(incident.channel_id)
    assert {ids["alice"], ids["carol"], ids["dave"]} <= members and ids["erin"] not in members
    # One add per person: the creator, the commander, each invitee (erin's refused by Mattermost).
    adds = [c for c in bot_calls(sandbox) if c[0] == "POST" and c[1].endswith("/members")]
    assert len(adds) == 4 and sum(status >= 400 for *_, status in adds) == 1, adds
    dm = await sandbox.user("alice").dm_channel("incident")
    told = [p["message"] for p in sandbox.posts(dm) if "Payments down" in p["message"]][-1]
    assert "Its commander is @carol, as the playbook says." in told
    assert "The playbook invites @erin, who could not be added to the channel" in told
