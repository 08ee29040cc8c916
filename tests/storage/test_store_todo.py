"""The store's ``/incident todo`` query (issue 17), on every backend: ongoing incidents of a team
with an open step assigned to the user, newest first, capped."""

from __future__ import annotations

from domain import checklist, incidents
from domain.models import StepRef
from domain.todo import open_steps_of

from .builders import T0, incident, playbook


async def _stored(store, *, now=T0, team_id="team1", assign=(), done=(), name="Database down"):
    pb = playbook(team_id=team_id)
    inc, events = incident(pb, now=now, name=name)
    for ref, who in assign:
        inc, more = checklist.assign_step(inc, StepRef(*ref), who, "alice", now, assignee_in_channel=True)
        events = [*events, *more]
    for ref in done:
        inc, more = checklist.check_step(inc, StepRef(*ref), "alice", now)
        events = [*events, *more]
    return await store.create_incident(inc, events)


async def test_todo_finds_open_steps_assigned_to_the_user_newest_first(store):
    older = await _stored(store, now=T0, assign=[((0, 0), "bob")])
    newer = await _stored(store, now=T0 + 10, assign=[((1, 2), "bob"), ((0, 1), "carol")])
    third = await _stored(store, now=T0 + 20, assign=[((0, 1), "carol")])
    found = await store.incidents_with_open_steps_of("team1", "bob")
    assert [i.id for i in found] == [newer.id, older.id]
    assert [s.ref for s in open_steps_of(found[0], "bob")] == [StepRef(1, 2)]
    assert [i.id for i in await store.incidents_with_open_steps_of("team1", "carol")] == [third.id, newer.id]


async def test_todo_leaves_out_done_steps_ended_incidents_and_other_teams(store):
    await _stored(store, assign=[((0, 0), "bob")], done=[(0, 0)])
    ended = await _stored(store, assign=[((0, 1), "bob")])
    await store.mutate_incident(ended.id, lambda i: incidents.end_incident(i, "alice", T0 + 5))
    await _stored(store, team_id="team2", assign=[((0, 0), "bob")])
    assert await store.incidents_with_open_steps_of("team1", "bob") == []
    assert len(await store.incidents_with_open_steps_of("team2", "bob")) == 1


async def test_todo_does_not_match_another_field_naming_the_user(store):
    # The commander, the creator and a step's last actor are not assignments.
    await _stored(store, assign=[((0, 0), "bob")], done=[(0, 0)])
    inc = await _stored(store, name="bob")
    assert inc.creator_id == "alice"
    assert await store.incidents_with_open_steps_of("team1", "alice") == []
    assert await store.incidents_with_open_steps_of("team1", "bob") == []


async def test_todo_is_capped_and_reads_the_stored_state(store):
    ids = [(await _stored(store, now=T0 + n, assign=[((0, 0), "bob")])).id for n in range(5)]
    assert [i.id for i in await store.incidents_with_open_steps_of("team1", "bob", limit=3)] == ids[::-1][:3]
    # Checking the step takes the incident off the list at once.
    await store.mutate_incident(ids[4], lambda i: checklist.check_step(i, StepRef(0, 0), "bob", T0 + 9))
    assert ids[4] not in [i.id for i in await store.incidents_with_open_steps_of("team1", "bob")]
    # Unassigning too.
    await store.mutate_incident(ids[3], lambda i: checklist.assign_step(i, StepRef(0, 0), None, "bob", T0 + 9,
                                                                           assignee_in_channel=True))
    assert [i.id for i in await store.incidents_with_open_steps_of("team1", "bob")] == ids[::-1][2:]
