"""Issue 15, list p99: list totals stay exact while the SQLite store reuses the counts it made.

The SQLite store remembers a list's shared count (every match for an admin, the public matches
otherwise) with its team's list generation (migration 0009), which triggers move on every write the
list counts. These tests change the data every way the list can see and check the totals
against a count made by hand, on every backend; the ones about the generation itself are SQLite's.
"""

from __future__ import annotations

import sqlite3

import pytest

from domain import checklist, incidents
from domain.models import IncidentStatus, StepRef
from storage.base import IncidentSort

from .builders import T0, incident, playbook


def expected_total(made, *, viewer=(), admin=False, status=None, commander=None, search=None) -> int:
    """The total a list must show, counted by hand from the incidents' current state."""
    return sum(
        1 for i in made.values()
        if i.team_id == "team1"
        and (admin or i.public or i.channel_id in viewer)
        and (status is None or i.status == status)
        and (commander is None or i.commander_id == commander)
        and (search is None or search.lower() in i.name.lower())
    )


QUERIES = [
    {},
    {"admin": True},
    {"status": IncidentStatus.ONGOING},
    {"status": IncidentStatus.ENDED, "admin": True},
    {"commander": "bob"},
    {"search": "db"},
]


async def totals(store, made, viewer) -> list[tuple[int, int]]:
    """(stored total, hand-counted total) of every query in QUERIES, for ``viewer``, through both list calls."""
    found = []
    for q in QUERIES:
        kwargs = {"viewer_channel_ids": viewer, "is_admin": q.get("admin", False), "status": q.get("status"),
                  "commander_id": q.get("commander"), "search": q.get("search")}
        want = expected_total(made, viewer=viewer, **q)
        page = await store.list_incidents("team1", **kwargs)
        refs = await store.list_incident_refs("team1", sort=IncidentSort.NAME_ASC, **kwargs)
        found += [(page.total, want), (refs.total, want)]
    return found


def exact(pairs) -> bool:
    return all(got == want for got, want in pairs)


@pytest.fixture
async def team(store):
    """Twelve incidents in team1 (every third private, every fourth ended), and their current state by id."""
    pb = await store.create_playbook(playbook())
    made = {}
    for n in range(12):
        inc, events = incident(pb, name=["DB down", "API slow", "db lag"][n % 3] + f" {n}", public=n % 3 != 0,
                               creator="alice" if n % 2 else "bob", now=T0 + n)
        if n % 4 == 0:
            inc, more = incidents.end_incident(inc, "alice", T0 + 1000)
            events += more
        made[inc.id] = await store.create_incident(inc, events)
    other, events = incident(playbook(team_id="team2"), name="DB elsewhere")
    await store.create_incident(other, events)
    return made


async def test_totals_follow_every_write_the_list_counts(store, team):
    made = team
    private = [i for i in made.values() if not i.public]
    viewer = [private[0].channel_id, private[1].channel_id, "elsewhere"]
    assert exact(await totals(store, made, viewer))
    assert exact(await totals(store, made, viewer))  # asked again, nothing changed: the same answers

    async def check() -> None:
        assert exact(await totals(store, made, viewer))
        assert exact(await totals(store, made, []))

    # A new incident, public and private.
    for public in (True, False):
        inc, events = incident(name=f"DB new {public}", public=public, creator="bob", now=T0 + 50)
        made[inc.id] = await store.create_incident(inc, events)
        await check()
    # Ended, restarted, renamed, handed over, made private, deleted.
    some = next(i for i in made.values() if i.is_ongoing and i.public)
    made[some.id], _ = await store.mutate_incident(some.id, lambda i: incidents.end_incident(i, "alice", T0 + 60))
    await check()
    made[some.id], _ = await store.mutate_incident(some.id, lambda i: incidents.restart_incident(i, "alice", T0 + 70))
    await check()
    renamed = made[some.id].model_copy(update={"name": "Quiet now"})
    made[some.id] = await store.update_incident(renamed, previous=made[some.id])
    await check()
    handed = made[some.id].model_copy(update={"commander_id": "bob" if made[some.id].commander_id != "bob" else "carol"})
    made[some.id] = await store.update_incident(handed, previous=made[some.id])
    await check()
    hidden = made[some.id].model_copy(update={"public": False})
    made[some.id] = await store.update_incident(hidden, previous=made[some.id])
    await check()
    gone = private[1]
    assert await store.delete_incident(gone.id)
    del made[gone.id]
    await check()


async def test_another_store_on_the_same_database_sees_the_same_totals(store, store_factory, team):
    made = team
    assert exact(await totals(store, made, []))
    other = store_factory()
    await other.open()
    try:
        inc, events = incident(name="DB from elsewhere", now=T0 + 90)
        made[inc.id] = await other.create_incident(inc, events)
        victim = next(iter(made.values()))
        made[victim.id], _ = await other.mutate_incident(
            victim.id, lambda i: incidents.end_incident(i, "bob", T0 + 91) if i.is_ongoing
            else incidents.restart_incident(i, "bob", T0 + 91))
    finally:
        await other.close()
    assert exact(await totals(store, made, []))


async def test_a_rolled_back_write_leaves_no_count_behind(store, team):
    made = team
    assert exact(await totals(store, made, []))
    inc, events = incident(name="DB rolled back", now=T0 + 80)
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await store.create_incident(inc, events)
            assert exact(await totals(store, {**made, inc.id: inc}, []))  # the transaction sees its own write
            raise RuntimeError("roll back")
    assert exact(await totals(store, made, []))
    # The next write counts again from what is stored, not from the rolled-back transaction's view.
    again, events = incident(name="DB committed", now=T0 + 81)
    made[again.id] = await store.create_incident(again, events)
    assert exact(await totals(store, made, []))


def generation(path, team_id: str = "team1") -> int:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT n FROM list_generations WHERE team_id = ?", (team_id,)).fetchone()
        return row[0] if row else 0


@pytest.mark.backends("sqlite", reason="the list generation is the SQLite store's (migration 0009)")
async def test_checklist_edits_leave_the_generation_and_counted_writes_move_it(store, team):
    made = team
    path = store.path
    some = next(i for i in made.values() if i.is_ongoing)
    before = generation(path)
    saved, _ = await store.mutate_incident(some.id, lambda i: checklist.check_step(i, StepRef(0, 0), "bob", T0 + 5))
    saved, _ = await store.mutate_incident(some.id, lambda i: checklist.uncheck_step(i, StepRef(0, 0), "bob", T0 + 6))
    card = saved.model_copy(update={"card_post_id": "post9", "description": "more words"})
    await store.update_incident(card, previous=saved)
    assert generation(path) == before  # toggles, cards and descriptions change no list total
    saved, _ = await store.mutate_incident(some.id, lambda i: incidents.end_incident(i, "bob", T0 + 7))
    assert generation(path) == before + 1
    inc, events = incident(now=T0 + 8)
    await store.create_incident(inc, events)
    assert generation(path) == before + 2
    elsewhere = generation(path, "team2")
    other, events = incident(playbook(team_id="team2"), now=T0 + 9)
    await store.create_incident(other, events)
    assert generation(path, "team2") == elsewhere + 1 and generation(path) == before + 2  # teams count apart
    with sqlite3.connect(path) as conn:  # no store call moves an incident, but the trigger covers it
        conn.execute("UPDATE incidents SET team_id = 'team3' WHERE id = ?", (inc.id,))
    assert generation(path) == before + 3 and generation(path, "team3") == 1  # both teams' lists changed


@pytest.mark.backends("sqlite", reason="counts the SQLite store's count statements")
async def test_a_repeated_list_does_not_count_the_team_again(store, team):
    made = team
    statements: list[str] = []
    for reader in store._readers or [store._writer]:
        raw = reader._conn
        await reader._execute(lambda raw=raw: raw.set_trace_callback(statements.append))
    viewer = [i.channel_id for i in made.values() if not i.public][:1]
    first = await store.list_incidents("team1", viewer_channel_ids=viewer)
    team_counts = [s for s in statements if s.startswith("SELECT count(*)") and "channel_id IN" not in s]
    assert len(team_counts) == 1
    statements.clear()
    second = await store.list_incidents("team1", viewer_channel_ids=viewer)
    assert second.total == first.total == expected_total(made, viewer=viewer)
    assert [s for s in statements if s.startswith("SELECT count(*)") and "channel_id IN" not in s] == []
    assert any(s.startswith("SELECT count(*)") and "channel_id IN" in s for s in statements)  # the viewer's own


async def test_a_checklist_read_again_is_the_same_and_a_changed_one_is_read_anew(store):
    pb = await store.create_playbook(playbook())
    one, events = incident(pb, name="One")
    await store.create_incident(one, events)
    first = (await store.list_incidents("team1")).items[0]
    again = (await store.list_incidents("team1")).items[0]
    assert first == again and first.stages == one.stages
    await store.mutate_incident(one.id, lambda i: checklist.check_step(i, StepRef(0, 1), "bob", T0 + 1))
    changed = (await store.list_incidents("team1")).items[0]
    stored = await store.get_incident(one.id)
    assert changed.step(StepRef(0, 1)).done and stored is not None and stored.step(StepRef(0, 1)).done
    assert not first.step(StepRef(0, 1)).done and not again.step(StepRef(0, 1)).done  # what was read stays as read
