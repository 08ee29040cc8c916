"""Two people start incidents with the same name at the same moment (issue 13 F10).

Each gets an incident of their own in a channel of their own (the later one's channel name gets a
short suffix, as for any taken name), and nobody is added to a channel that is not theirs.
"""

from __future__ import annotations

import asyncio

from tests.e2e.conftest import make_playbook
from tests.e2e.test_incidents import all_incidents

ADD_MEMBER = r"^/api/v4/channels/[a-z0-9]{26}/members$"


async def open_start_dialog(sandbox, username: str, name: str) -> str:
    person = sandbox.user(username)
    result = await person.command("town-square", f"/incident start {name}")
    assert result.dialog is not None, result.ephemeral
    return result.dialog["dialog"]["elements"][0]["options"][0]["value"]


async def test_same_name_starts_at_once_each_get_their_own_private_channel(sandbox, bot):
    await make_playbook(bot, sandbox, title="Security", members=("bob", "carol"), public=False)
    bob, carol = sandbox.user("bob"), sandbox.user("carol")
    bob_playbook = await open_start_dialog(sandbox, "bob", "Leaked key")
    carol_playbook = await open_start_dialog(sandbox, "carol", "Leaked key")
    # bob's start has created its channel and is about to add him; carol submits right then.
    gate = sandbox.gates.hold("POST", ADD_MEMBER, token=sandbox.token_of("incident"))
    bob_submit = asyncio.create_task(bob.submit_dialog({"playbook": bob_playbook, "name": "Leaked key"}))
    await asyncio.wait_for(gate.reached.wait(), 10)
    carol_outcome = await carol.submit_dialog({"playbook": carol_playbook, "name": "Leaked key"})
    gate.release()
    bob_outcome = await bob_submit
    assert bob_outcome.closed and carol_outcome.closed, (bob_outcome, carol_outcome)

    incidents = {i.creator_id: i for i in await all_incidents(bot) if i.name == "Leaked key"}
    assert set(incidents) == {bob.id, carol.id}
    bobs, carols = incidents[bob.id], incidents[carol.id]
    assert bobs.channel_id != carols.channel_id
    bot_id = sandbox.user_id("incident")
    assert sandbox.channel_members(bobs.channel_id) == {bob.id, bot_id}
    assert sandbox.channel_members(carols.channel_id) == {carol.id, bot_id}
    names = {sandbox.channel_by_id(bobs.channel_id)["name"], sandbox.channel_by_id(carols.channel_id)["name"]}
    assert "leaked-key" in names and any(n.startswith("leaked-key-") for n in names)
    # Each is told where their own incident is.
    for person, incident in ((bob, bobs), (carol, carols)):
        dm = await person.dm_channel("incident")
        channel_name = sandbox.channel_by_id(incident.channel_id)["name"]
        await sandbox.wait_for(lambda: [p for p in sandbox.posts(dm) if f"~{channel_name}." in p["message"]])
        assert not [p for p in sandbox.posts(dm) if "already has an incident" in p["message"]]
    # Nothing is left half-made: no start journal, no name claim.
    assert await bot.store.settings_with_prefix("start:") == {}
    assert await bot.store.settings_with_prefix("start-channel:") == {}
