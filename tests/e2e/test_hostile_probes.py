"""Probes of the red-team pass over every path that no other file covered (indexed by class in
tests/gateway/test_hostile_classes.py)."""

from __future__ import annotations

from tests.e2e.conftest import make_playbook
from tests.e2e.test_incidents import start_incident

# -- visibility: a direct message between two other people is neither announced into nor named ---------

async def test_announce_into_a_direct_message_of_others_is_answered_as_missing(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice",))
    _, channel = await start_incident(sandbox, bot, "alice", "Checkout errors")
    dm = await sandbox.user("bob").dm_channel("carol")
    dm_name = sandbox.world.channels[dm]["name"]
    before = len(sandbox.posts(dm))
    alice = sandbox.user("alice")
    hidden = await alice.command(channel["id"], f"/incident announce ~{dm_name} look")
    missing = await alice.command(channel["id"], "/incident announce ~no-such-channel look")
    assert hidden.status == missing.status == 200
    assert [t.replace(dm_name, "NAME") for t in hidden.ephemeral] == \
        [t.replace("no-such-channel", "NAME") for t in missing.ephemeral]
    assert len(sandbox.posts(dm)) == before


# -- playbook membership: a captured playbook button sent as a non-member does nothing ----------------

async def test_a_captured_playbook_button_sent_as_a_non_member_does_nothing(sandbox, bot):
    import json

    import aiohttp

    from gateway.ids import Route
    from tests.e2e.test_playbooks import last_ephemeral_with_buttons
    from tests.gateway.test_hostile import fresh_trigger, url

    playbook = await make_playbook(bot, sandbox, title="Secret plan", members=("dave",))
    dave = sandbox.user("dave")
    await dave.command("town-square", "/incident playbook show Secret plan")
    card = last_ephemeral_with_buttons(dave, "town-square")
    exported = await dave.click(card["id"], "Export YAML")
    assert "as a YAML file" in exported.ephemeral[0]
    captured = [c for c in sandbox.callbacks if c.kind == "action"][-1].json()
    carol = sandbox.user_id("carol")  # in the team and the channel, not a member of the playbook
    carol_dm = await sandbox.user("carol").dm_channel("incident")
    before = len(sandbox.posts(carol_dm))
    async with aiohttp.ClientSession() as http:
        for forged in ({**captured, "user_id": carol, "user_name": "carol", "trigger_id": fresh_trigger(carol)},):
            async with http.post(url(bot, Route.ACTION), data=json.dumps(forged).encode(),
                                 headers={"Content-Type": "application/json"}) as response:
                assert response.status == 200
                answer = await response.json()
    assert answer["ephemeral_text"].startswith("Playbook not found")
    assert "Secret plan" not in answer["ephemeral_text"]
    assert len(sandbox.posts(carol_dm)) == before  # no YAML sent to carol
    assert await bot.store.get_playbook(playbook.id) == playbook
