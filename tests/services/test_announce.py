"""IncidentService.announce: where an incident is announced, for whom, and what each channel answers."""

from __future__ import annotations

import pytest

from domain import NotFound, PermissionDenied
from tests.e2e.conftest import make_playbook
from tests.e2e.test_incidents import _new_channel, start_incident

UNSEEN = "no such channel in this team that I am in; for a private channel, add @incident to it first"


async def test_announces_where_the_user_is_and_says_why_not_elsewhere(sandbox, bot):
    await make_playbook(bot, sandbox, members=("bob",))
    incident, _channel = await start_incident(sandbox, bot, "bob", "Search is down")
    war_room = await _new_channel(sandbox, "war-room", "O")            # public, bob is not in it
    secret = await _new_channel(sandbox, "secret-ops", "P", "incident")  # private, the bot is in it, bob is not
    off_topic = sandbox.channel("acme", "off-topic")["id"]
    outcomes = await bot.incidents.announce(incident, sandbox.user_id("bob"),
                                            ["Off-Topic", "off-topic", "war-room", "secret-ops", "leadership", "nope"])
    assert outcomes == {"off-topic": "", "war-room": "you can only announce in channels you are a member of",
                        "secret-ops": UNSEEN, "leadership": UNSEEN, "nope": UNSEEN}
    # Once per channel, however it was typed; nothing where bob is not.
    posted = [p["message"] for p in sandbox.posts(off_topic)
              if p["user_id"] == sandbox.user_id("incident") and not p.get("type", "").startswith("system_")]
    assert posted == ["@bob started an incident in ~search-is-down: **Search is down**"]
    for cid in (war_room, secret):
        assert not [p for p in sandbox.posts(cid) if not p.get("type", "").startswith("system_")]
    # The bot looked into the public channel from inside and left it as it was.
    assert sandbox.user_id("incident") not in sandbox.channel_members(war_room)


async def test_only_members_of_the_incident_channel_announce(sandbox, bot):
    await make_playbook(bot, sandbox, members=("bob",), public=True)
    incident, _channel = await start_incident(sandbox, bot, "bob", "Search is down")
    with pytest.raises(PermissionDenied):  # carol sees the public incident but is not in its channel
        await bot.incidents.announce(incident, sandbox.user_id("carol"), ["off-topic"])
    private = await make_playbook(bot, sandbox, title="Quiet", members=("bob",), public=False)
    hidden, _ = await start_incident(sandbox, bot, "bob", "Quiet trouble", playbook=private.title)
    with pytest.raises(NotFound):
        await bot.incidents.announce(hidden, sandbox.user_id("carol"), ["off-topic"])


async def test_nothing_to_announce_asks_nothing(sandbox, bot):
    await make_playbook(bot, sandbox, members=("bob",))
    incident, _channel = await start_incident(sandbox, bot, "bob", "Search is down")
    assert await bot.incidents.announce(incident, sandbox.user_id("bob"), []) == {}
