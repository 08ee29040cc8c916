"""The one "may post" check over the sandbox (services/channels.py): a broadcast channel whose
posting is moderated (channel scheme roles without create_post) is refused when the playbook
settings name it and when a status update is copied there — the same answer, from Mattermost's
roles, at both times."""

from __future__ import annotations

from tests.e2e.conftest import make_playbook
from tests.e2e.test_incidents import start_incident
from tests.e2e.test_playbook_settings import SETTINGS
from tests.e2e.test_status_updates import configure, dm_texts, post_update, updates_in


async def test_a_moderated_broadcast_channel_is_refused_when_configured_and_when_sending(sandbox, bot):
    await make_playbook(bot, sandbox, title="Ops", members=("alice",))
    alice = sandbox.user("alice")
    await alice.add_member("off-topic", "incident")  # alice and the bot are both in off-topic
    off_topic = sandbox.channel("acme", "off-topic")
    await alice.command("town-square", "/incident playbook settings Ops")
    accepted = await alice.submit_dialog({**SETTINGS, "broadcast": "~off-topic"})
    assert accepted.closed, accepted
    incident, channel = await start_incident(sandbox, bot, "alice", "Checkout errors")
    await configure(bot, incident, broadcast=(off_topic["id"],))
    assert (await post_update(sandbox, "alice", channel["id"], "Before moderation")).closed
    await bot.scheduler.settle()
    assert len(updates_in(sandbox, off_topic["id"])) == 1

    sandbox.world.moderate_posting(off_topic)  # the members' role is now the channel scheme's, without create_post
    await alice.command("town-square", "/incident playbook settings Ops")
    refused = await alice.submit_dialog({**SETTINGS, "broadcast": "~off-topic"})
    assert not refused.closed and "~off-topic: you cannot post in it" in refused.errors["broadcast"]
    assert (await post_update(sandbox, "alice", channel["id"], "After moderation")).closed
    await bot.scheduler.settle()
    copies = [p["message"] for p in updates_in(sandbox, off_topic["id"])]
    assert len(copies) == 1 and "Before moderation" in copies[0]
    report = (await dm_texts(sandbox, "alice"))[-1]
    assert "but not copied to" in report and "~off-topic: you cannot post in it" in report
    assert len(updates_in(sandbox, channel["id"])) == 2  # the incident channel has both
