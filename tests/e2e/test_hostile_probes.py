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
