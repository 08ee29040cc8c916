"""The members a start adds are recorded once, with the incident, and their ``user_added`` events cost
no store read (issue 15, CPU per start): the start knows it made those joins itself
(``IncidentService.start_joins``). Every other join and leave is still read and recorded as before."""

from __future__ import annotations

from domain.models import EventKind
from tests.e2e.conftest import make_playbook
from tests.e2e.test_incidents import start_incident
from tests.e2e.test_timeline import settle, tbot  # noqa: F401  (the fixture)


def joins_and_leaves(events) -> list[tuple[str, str, str]]:
    return [(e.kind.value, e.details["user_id"], e.actor_id) for e in events
            if e.kind in (EventKind.MEMBER_JOINED, EventKind.MEMBER_LEFT)]


def counting_channel_reads(app) -> list[str]:
    """Replace the store's incident_by_channel with one that also records the channel asked about."""
    asked: list[str] = []
    original = app.store.incident_by_channel

    async def counted(channel_id: str):
        asked.append(channel_id)
        return await original(channel_id)

    app.store.incident_by_channel = counted
    return asked


async def test_a_starts_own_adds_are_recorded_once_without_a_read_and_later_joins_as_before(sandbox, tbot):  # noqa: F811
    ids = {name: sandbox.user_id(name) for name in ("alice", "bob", "carol", "dave")}
    playbook = await make_playbook(tbot, sandbox, title="Ops", members=("alice",))
    # A user who is gone (stored directly: the dialog refuses such ids): Mattermost refuses the add,
    # so no event and no join come for them, and nothing is left waiting for one.
    edited = playbook.model_copy(update={"invited_user_ids": (ids["bob"], "g" * 26),
                                         "default_commander_id": ids["carol"]})
    await tbot.store.update_playbook(edited, expected_version=playbook.version)
    asked = counting_channel_reads(tbot)

    incident, channel = await start_incident(sandbox, tbot)
    await settle(sandbox, tbot)
    timeline = await tbot.store.timeline(incident.id)
    # The creator, the commander and the invited member: one join each, by the creator, at the start.
    assert sorted(joins_and_leaves(timeline)) == sorted(
        ("member_joined", ids[name], ids["alice"]) for name in ("alice", "carol", "bob"))
    assert {ids["alice"], ids["bob"], ids["carol"]} <= sandbox.channel_members(channel["id"])
    # Their three user_added events were recognised without asking the store about the channel...
    assert channel["id"] not in asked
    assert len(tbot.incidents.start_joins) == 0  # ... and each was taken (none left to match a later add)

    # A join nobody's start made (dave, added by alice) and a leave go the usual way.
    await sandbox.user("alice").add_member(channel["id"], "dave")
    await sandbox.user("bob")._call("DELETE", f"/api/v4/channels/{channel['id']}/members/{ids['bob']}")
    await settle(sandbox, tbot)
    assert asked.count(channel["id"]) == 2
    after = joins_and_leaves(await tbot.store.timeline(incident.id))
    assert [(kind, user) for kind, user, _ in after[-2:]] == [("member_joined", ids["dave"]), ("member_left", ids["bob"])]
    # bob comes back: his new join is news, although the start once added him.
    await sandbox.user("alice").add_member(channel["id"], "bob")
    await settle(sandbox, tbot)
    assert joins_and_leaves(await tbot.store.timeline(incident.id))[-1][:2] == ("member_joined", ids["bob"])
    assert asked.count(channel["id"]) == 3
