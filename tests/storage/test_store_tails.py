"""Issue 15, store tails: one thread hop per toggle and per list page; light references for the list walk.

Every ``await`` on an aiosqlite connection is a hand-off to its thread and a wake-up of the
event loop; on a loaded machine each may wait for a CPU, so they are counted here.
"""

from __future__ import annotations

import asyncio
import sqlite3

import aiosqlite
import pytest

from domain import checklist, incidents
from domain.errors import InvalidState, NotFound, ValidationError
from domain.models import EventKind, IncidentStatus, StepRef
from storage import IncidentRef
from storage.base import REFS_PER_PAGE_MAX, IncidentSort

from .builders import T0, incident, playbook, writes_on_the_writers_thread


@pytest.fixture
def hops(monkeypatch) -> list[str]:
    """Names of the calls handed to aiosqlite connection threads, in order."""
    seen: list[str] = []
    real = aiosqlite.Connection._execute

    async def counting(self, fn, *args, **kwargs):
        seen.append(args[0].split()[0] if args and isinstance(args[0], str) else getattr(fn, "__name__", "call"))
        return await real(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
    return seen


@pytest.mark.backends("sqlite", reason="counts hand-offs to aiosqlite threads")
async def test_a_toggle_is_one_hop_to_the_writer(store, hops):
    inc, events = incident()
    await store.create_incident(inc, events)
    hops.clear()
    trips = store.writer_trips
    saved, new_events = await store.mutate_incident(
        inc.id, lambda i: checklist.check_step(i, StepRef(0, 0), "bob", T0 + 1)
    )
    # BEGIN, SELECT, UPDATE, INSERT and COMMIT together, in one trip, which the loop's thread runs
    # itself: no hand-off at all.
    assert store.writer_trips - trips == 1 and hops == [], hops
    assert saved.version == inc.version + 1 and [e.kind for e in new_events] == [EventKind.STEP_CHECKED]
    assert await store.get_incident(inc.id) == saved
    assert [e.kind for e in await store.timeline(inc.id)][-1] == EventKind.STEP_CHECKED
    # On the writer's own thread the same toggle is one hand-off.
    writes_on_the_writers_thread(store)
    hops.clear()
    saved, _ = await store.mutate_incident(inc.id, lambda i: checklist.check_step(i, StepRef(0, 1), "bob", T0 + 2))
    assert len(hops) == 1 and saved.version == inc.version + 2, hops
    assert await store.get_incident(inc.id) == saved


@pytest.mark.backends("sqlite", reason="counts hand-offs to aiosqlite threads")
async def test_a_list_page_is_one_hop_to_a_reader(store, hops):
    for n in range(20):
        await store.create_incident(*incident(name=f"Outage {n}", now=T0 + n, public=n % 2 == 0))
    hops.clear()
    page = await store.list_incidents("team1", viewer_channel_ids=[], page=1, per_page=5)
    assert len(hops) == 1, hops
    assert page.total == 10 and [i.name for i in page.items] == [f"Outage {n}" for n in (8, 6, 4, 2, 0)]


@pytest.mark.backends("sqlite", reason="counts hand-offs to aiosqlite threads")
async def test_a_noop_toggle_writes_nothing_and_is_one_hop(store, hops):
    inc, events = incident()
    await store.create_incident(inc, events)
    hops.clear()
    trips = store.writer_trips
    same, none = await store.mutate_incident(inc.id, lambda i: (i, []))
    assert store.writer_trips - trips == 1 and hops == [] and none == [] and same.version == inc.version
    assert len(await store.timeline(inc.id)) == 1


async def test_a_failing_operation_writes_nothing_and_frees_the_writer(store):
    inc, events = incident()
    await store.create_incident(inc, events)
    ended, more = incidents.end_incident(inc, "alice", T0 + 5)
    await store.update_incident(ended, more)
    with pytest.raises(InvalidState, match="has ended"):
        await store.mutate_incident(inc.id, lambda i: checklist.check_step(i, StepRef(0, 0), "bob", T0 + 6))
    with pytest.raises(NotFound, match="no longer exists"):
        await store.mutate_incident("nosuchincident0000000000000", lambda i: (i, []))
    # The writer is free and nothing half-written is left behind.
    await store.set_setting("after", "failure")
    assert (await store.get_incident(inc.id)).version == ended.version + 1
    assert len(await store.timeline(inc.id)) == 1 + len(more)


async def test_a_cancelled_toggle_commits_whole_or_not_at_all_and_later_writes_go_on(store):
    writes_on_the_writers_thread(store)  # a write the loop's thread runs itself is over before any cancel
    inc, events = incident()
    await store.create_incident(inc, events)
    task = asyncio.create_task(
        store.mutate_incident(inc.id, lambda i: checklist.check_step(i, StepRef(0, 0), "bob", T0 + 1))
    )
    await asyncio.sleep(0)  # let it queue its work, then cancel the caller
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    saved, _ = await store.mutate_incident(inc.id, lambda i: checklist.check_step(i, StepRef(0, 1), "bob", T0 + 2))
    stored = await store.get_incident(inc.id)
    assert stored == saved and stored.step(StepRef(0, 1)).done
    checked = [e for e in await store.timeline(inc.id) if e.kind == EventKind.STEP_CHECKED]
    # Either the cancelled toggle committed entirely (version, step and event) or not at all.
    assert len(checked) == stored.version - inc.version
    assert stored.step(StepRef(0, 0)).done is (len(checked) == 2)


async def test_a_toggle_inside_an_outer_transaction_joins_it(store):
    inc, events = incident()
    await store.create_incident(inc, events)
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await store.mutate_incident(inc.id, lambda i: checklist.check_step(i, StepRef(0, 0), "bob", T0 + 1))
            raise RuntimeError("the outer transaction fails")
    assert await store.get_incident(inc.id) == inc  # rolled back with it


async def test_an_operation_may_not_change_the_incident_id(store):
    first, first_events = incident()
    second, second_events = incident()
    await store.create_incident(first, first_events)
    await store.create_incident(second, second_events)
    hijack = second.model_copy(update={"name": "hijacked"})
    with pytest.raises(Exception, match="must not change the incident's id"):
        await store.mutate_incident(first.id, lambda i: (hijack, []))
    assert await store.get_incident(second.id) == second and await store.get_incident(first.id) == first


# -- light references --------------------------------------------------------------------------

async def _mixed_team(store) -> list:
    pb = playbook()
    made = []
    for n in range(30):
        inc, events = incident(pb, name=f"{'DB' if n % 3 else 'API'} outage {n}", now=T0 + n * 1000,
                               public=n % 4 != 0)
        if n % 5 == 0:
            inc, more = incidents.end_incident(inc, "alice", T0 + n * 1000 + 1)
            events += more
        await store.create_incident(inc, events)
        made.append(inc)
    await store.create_incident(*incident(playbook(team_id="team2"), name="Other team"))
    return made


@pytest.mark.parametrize("arguments", [
    {},
    {"status": IncidentStatus.ONGOING},
    {"status": IncidentStatus.ENDED},
    {"commander_id": "alice"},
    {"search": "db out"},
    {"sort": IncidentSort.NAME_ASC},
    {"sort": IncidentSort.CREATED_ASC, "status": IncidentStatus.ONGOING},
])
async def test_refs_select_and_order_exactly_like_the_list(store, arguments):
    made = await _mixed_team(store)
    mine = [made[0].channel_id, made[8].channel_id]
    for visibility in ({"is_admin": True}, {"viewer_channel_ids": mine}, {}):
        for page in range(3):
            full = await store.list_incidents("team1", page=page, per_page=7, **visibility, **arguments)
            refs = await store.list_incident_refs("team1", page=page, per_page=7, **visibility, **arguments)
            assert refs.total == full.total
            assert refs.items == [IncidentRef(i.id, i.team_id, i.channel_id, i.public) for i in full.items]
            assert await store.incidents_by_ids([r.id for r in refs.items]) == full.items


async def test_refs_take_large_pages_and_refuse_larger_ones(store):
    await _mixed_team(store)
    assert len((await store.list_incident_refs("team1", is_admin=True, per_page=REFS_PER_PAGE_MAX)).items) == 30
    with pytest.raises(ValidationError, match=f"1 to {REFS_PER_PAGE_MAX} incidents"):
        await store.list_incident_refs("team1", is_admin=True, per_page=REFS_PER_PAGE_MAX + 1)
    with pytest.raises(ValidationError, match="start at 1"):
        await store.list_incident_refs("team1", is_admin=True, page=-1)


async def test_refs_keep_private_incidents_of_other_channels_and_teams_out(store):
    made = await _mixed_team(store)
    refs = await store.list_incident_refs("team1", viewer_channel_ids=["chan-of-someone-else"], per_page=100)
    assert {r.id for r in refs.items} == {i.id for i in made if i.public}
    assert all(r.team_id == "team1" for r in refs.items)
    assert (await store.list_incident_refs("team3", is_admin=True)).items == []


async def test_incidents_by_ids_keeps_the_order_given_and_ignores_unknown_or_hostile_ids(store):
    made = await _mixed_team(store)
    wanted = [made[5].id, "x' OR 1=1 --", made[1].id, made[5].id, "", made[20].id]
    assert [i.id for i in await store.incidents_by_ids(wanted)] == [made[5].id, made[1].id, made[5].id, made[20].id]
    assert await store.incidents_by_ids([]) == []
    many = [f"missing{n:019d}" for n in range(20_000)] + [made[3].id]
    assert [i.id for i in await store.incidents_by_ids(many)] == [made[3].id]


@pytest.mark.backends("sqlite", reason="reads SQLite's query plans")
async def test_the_walk_never_reads_table_rows(store):
    """Every list index covers the references, so walking reads only index pages."""
    await _mixed_team(store)
    with sqlite3.connect(store.path) as raw:
        for arguments, order in [
            ("", "created_at DESC, rowid DESC"),
            (" AND status = 'ended'", "created_at DESC, rowid DESC"),
            (" AND commander_id = 'alice'", "created_at ASC, rowid ASC"),
            (" AND playbook_id = 'p'", "created_at DESC, rowid DESC"),
            ("", "name COLLATE NOCASE ASC, rowid ASC"),
            (" AND name LIKE '%db%' ESCAPE '\\'", "created_at DESC, rowid DESC"),
        ]:
            plan = " / ".join(row[3] for row in raw.execute(
                "EXPLAIN QUERY PLAN SELECT id, team_id, channel_id, public FROM incidents"
                f" WHERE team_id = 'team1' AND (public = 1 OR channel_id IN (SELECT value FROM json_each('[]')))"
                f"{arguments} ORDER BY {order} LIMIT 100"))
            assert "COVERING INDEX" in plan, (arguments, order, plan)


@pytest.mark.backends("sqlite", reason="about SQLite's PRAGMAs and WAL checkpoint")
async def test_a_toggle_right_after_a_checkpoint_or_a_fresh_open_commits(store_factory):
    """A PRAGMA answer left unread stays an active statement on aiosqlite's thread (its last
    result is kept alive there) and a COMMIT in the same call would be refused."""
    store = store_factory()
    await store.open()
    try:
        inc, events = incident()
        await store.create_incident(inc, events)
        await store.close()
        await store.open()  # the writer's last call is now its opening PRAGMAs
        first, _ = await store.mutate_incident(inc.id, lambda i: checklist.check_step(i, StepRef(0, 0), "bob", T0 + 1))
        await store.checkpoint()
        second, _ = await store.mutate_incident(inc.id, lambda i: checklist.check_step(i, StepRef(0, 1), "bob", T0 + 2))
        assert second.version == first.version + 1 == inc.version + 2
        assert await store.get_incident(inc.id) == second
    finally:
        await store.close()
