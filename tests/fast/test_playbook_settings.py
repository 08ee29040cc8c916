"""The playbook settings dialog and the start settings on the fake Mattermost (slice "settings")."""

from __future__ import annotations

from domain.durations import HOUR_MS
from domain.models import ReminderDelivery

SETTINGS = {"broadcast": "", "interval": "none", "template": "", "reminders": "both", "invite": "",
            "commander": "", "followers": ""}


async def open_settings(fast, user, title: str = "Outage"):
    reply = await fast.slash(user, fast.town, f'playbook settings "{title}"')
    assert reply.text == "", reply.text
    dialog = fast.mm.dialogs[-1]
    assert dialog.dialog["callback_id"] == "playbooksettings"
    return dialog


async def test_the_dialog_saves_every_setting_and_shows_them_again(fast):
    playbook = await fast.playbook()
    status = fast.mm.add_channel(fast.acme, "ops-status", [fast.people.alice])
    dialog = await open_settings(fast, fast.people.alice)
    reply = await fast.submit(fast.people.alice, dialog, {
        **SETTINGS, "broadcast": "~ops-status", "interval": "1h", "template": "**Impact:**", "reminders": "dm",
        "invite": "@bob, @carol", "commander": "@bob", "followers": "@carol"})
    assert reply.closes, (reply.errors, reply.error)
    saved = await fast.store.get_playbook(playbook.id)
    assert saved.updates.broadcast_channel_ids == (status.id,) and saved.updates.interval_ms == HOUR_MS
    assert saved.updates.template == "**Impact:**" and saved.updates.reminder_delivery is ReminderDelivery.DM
    assert saved.invited_user_ids == (fast.people.bob.id, fast.people.carol.id)
    assert saved.default_commander_id == fast.people.bob.id and saved.auto_follower_ids == (fast.people.carol.id,)
    again = {e["name"]: e for e in (await open_settings(fast, fast.people.alice)).dialog["elements"]}
    assert again["broadcast"]["default"] == "~ops-status" and again["interval"]["default"] == "1h"
    assert again["invite"]["default"] == "@bob @carol" and again["commander"]["default"] == "@bob"
    assert again["reminders"]["default"] == "dm"


async def test_a_channel_of_another_team_or_one_the_editor_is_not_in_is_refused_by_name(fast):
    playbook = await fast.playbook()
    fast.mm.add_channel(fast.acme, "quiet", [fast.people.bob])
    dialog = await open_settings(fast, fast.people.alice)
    reply = await fast.submit(fast.people.alice, dialog, {**SETTINGS, "broadcast": "~lobby ~quiet"})
    assert set(reply.errors) == {"broadcast"}
    assert "~lobby: no such channel in this team" in reply.errors["broadcast"]
    assert "~quiet: you are not a member of it" in reply.errors["broadcast"]
    assert (await fast.store.get_playbook(playbook.id)).version == playbook.version


async def test_people_outside_the_team_are_refused_at_their_field(fast):
    playbook = await fast.playbook()
    dialog = await open_settings(fast, fast.people.alice)
    reply = await fast.submit(fast.people.alice, dialog, {**SETTINGS, "invite": "@dave"})
    assert reply.errors == {"invite": "There is no user @dave in this team. Check the spelling."}
    reply = await fast.submit(fast.people.alice, dialog, {**SETTINGS, "commander": "@nobody"})
    assert set(reply.errors) == {"commander"}
    reply = await fast.submit(fast.people.alice, dialog, {**SETTINGS, "commander": "@bob @carol"})
    assert set(reply.errors) == {"commander"}
    assert (await fast.store.get_playbook(playbook.id)).version == playbook.version


async def test_hostile_values_are_field_errors_and_save_nothing(fast):
    playbook = await fast.playbook()
    dialog = await open_settings(fast, fast.people.alice)
    for values, field in (({"interval": "9999d"}, "interval"), ({"interval": "soon"}, "interval"),
                          ({"template": "x" * 16_001}, "template"), ({"reminders": "everyone"}, "reminders"),
                          ({"invite": ["@bob"]}, "invite")):
        reply = await fast.submit(fast.people.alice, dialog, {**SETTINGS, **values})
        assert set(reply.errors) == {field}, (values, reply.errors, reply.error)
    assert (await fast.store.get_playbook(playbook.id)).version == playbook.version


async def test_only_the_playbooks_members_may_open_or_save_its_settings(fast):
    playbook = await fast.playbook(members=(fast.people.alice,))
    reply = await fast.slash(fast.people.bob, fast.town, 'playbook settings "Outage"')
    assert reply.text.startswith('No playbook titled "Outage" that you can use.')
    dialog = await open_settings(fast, fast.people.alice)
    saved = await fast.submit(fast.people.alice, dialog, {**SETTINGS, "interval": "30m"})
    assert saved.closes
    assert (await fast.store.get_playbook(playbook.id)).updates.interval_ms == HOUR_MS // 2


async def test_a_start_uses_the_commander_invites_and_followers(fast):
    playbook = await fast.playbook()
    p = fast.people
    stored = playbook.model_copy(update={"invited_user_ids": (p.carol.id, p.dave.id),
                                         "default_commander_id": p.bob.id, "auto_follower_ids": (p.carol.id,)})
    playbook = await fast.store.update_playbook(stored, expected_version=playbook.version)
    incident = await fast.start(p.alice, playbook=playbook)
    assert incident.commander_id == p.bob.id and incident.follower_ids == (p.carol.id,)
    members = fast.mm.channel_members_of[incident.channel_id]
    assert {p.alice.id, p.bob.id, p.carol.id} <= members and p.dave.id not in members
    told = [post.message for post in fast.mm.dms_to(p.alice) if "has started" in post.message]
    assert "Its commander is @bob" in told[-1] and "@dave, who could not be added" in told[-1]
