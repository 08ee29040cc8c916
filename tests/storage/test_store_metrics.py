"""Metrics summaries in the store (issue 18, migration 0010): on every backend the stored summary
equals the recomputation from the incident's events, after any mix of writes; it is written in
the same transaction as the events (a rolled-back write leaves it alone); stats read rows of it
only; and incidents from before the summaries existed get theirs from their events."""

from __future__ import annotations

import random
import sqlite3

import asyncpg
import pytest

from domain import checklist, incidents, updates
from domain.errors import DomainError, NotFound
from domain.ids import new_id
from domain.metrics import MetricsRow, summarize
from domain.models import EventKind, Incident, TimelineEvent
from storage.sqlite import SqliteStore

from .builders import T0, incident, playbook

MIN = 60_000


async def recomputed(store, incident_id: str):
    stored = await store.get_incident(incident_id)
    return summarize(stored.created_at, await store.timeline(incident_id))


def _random_operation(rng: random.Random, now: int):
    """One domain operation (it may be refused: ended incidents are read-only, stages have bounds)."""
    who = rng.choice(["alice", "bob", "carol"])
    choice = rng.randrange(9)
    if choice == 0:
        return lambda i: incidents.end_incident(i, who, now, final_update=rng.choice(["", "done"]))
    if choice == 1:
        return lambda i: incidents.restart_incident(i, who, now)
    if choice == 2:
        return lambda i: incidents.set_stage(i, rng.randrange(2), who, now)
    if choice == 3:
        return lambda i: updates.post_update(i, "news", who, now, next_in_ms=None)
    if choice in (4, 5):
        ref = (rng.randrange(2), rng.randrange(3))
        return lambda i: checklist.set_step_state(i, ref, choice == 4, who, now)
    if choice == 6:
        return lambda i: updates.follow(i, who, now)
    if choice == 7:
        return lambda i: incidents.change_commander(i, who, who, now, new_commander_in_channel=True)
    return lambda i: checklist.add_step(i, rng.randrange(2), "extra", who, now)


@pytest.mark.parametrize("seed", range(4))
async def test_the_stored_summary_equals_the_recomputation_after_random_writes(store, seed):
    rng = random.Random(seed)
    pb = await store.create_playbook(playbook())
    made = []
    for n in range(3):
        inc, events = incident(pb, name=f"Incident {n}", now=T0 + n)
        made.append(await store.create_incident(inc, events))
    now = T0 + 10
    for _ in range(60):
        now += rng.choice([0, 1, MIN, 17 * MIN, -5])  # the clock may step back: intervals count 0 then
        target = rng.choice(made)
        how = rng.randrange(3)
        try:
            if how == 0:
                await store.mutate_incident(target.id, _random_operation(rng, now))
            elif how == 1:  # a write of the whole incident, as the card's post id is saved
                current = await store.get_incident(target.id)
                changed, events = _random_operation(rng, now)(current)
                await store.update_incident(changed, events, previous=current)
            else:  # events that do not change the incident, for one or several incidents at once
                await store.append_events([
                    TimelineEvent(id=new_id(), incident_id=i.id, at=now, kind=EventKind.STATUS_UPDATE,
                                  actor_id="bob", details={"message": "x"})
                    for i in rng.sample(made, rng.randrange(1, 3))])
        except DomainError:
            pass
        assert await store.incident_summary(target.id) == await recomputed(store, target.id)
    for inc in made:
        assert await store.incident_summary(inc.id) == await recomputed(store, inc.id)


async def test_metrics_rows_follow_the_incident_as_last_written(store):
    pb = await store.create_playbook(playbook())
    other = await store.create_playbook(playbook(title="Other"))
    first, events = incident(pb, name="First", now=T0)
    first = first.model_copy(update={"field_values": {"severity": "SEV2"}})
    await store.create_incident(first, events)
    second, events = incident(other, name="Second", public=False, now=T0 + 10 * MIN)
    await store.create_incident(second, events)
    foreign, events = incident(playbook(team_id="team2"), name="Elsewhere", now=T0)
    await store.create_incident(foreign, events)

    rows = sorted(await store.metrics_rows("team1", since=T0), key=lambda r: r.created_at)
    assert rows == [
        MetricsRow(incident_id=first.id, team_id="team1", playbook_id=pb.id, channel_id=first.channel_id,
                   public=True, severity="SEV2", created_at=T0, resolve_ms=None),
        MetricsRow(incident_id=second.id, team_id="team1", playbook_id=other.id, channel_id=second.channel_id,
                   public=False, severity=None, created_at=T0 + 10 * MIN, resolve_ms=None),
    ]
    assert [r.incident_id for r in await store.metrics_rows("team1", since=T0 + 1)] == [second.id]
    assert [r.incident_id for r in await store.metrics_rows("team1", since=T0, playbook_id=pb.id)] == [first.id]
    assert await store.metrics_rows("team1", since=T0, playbook_id="nope") == []

    def field_change(i: Incident):
        changed = i.model_copy(update={"field_values": {"severity": "SEV1"}})
        return changed, [TimelineEvent(id=new_id(), incident_id=i.id, at=T0 + 20 * MIN, kind=EventKind.FIELD_CHANGED,
                                       actor_id="alice", details={"field_id": "severity", "old": None, "new": "SEV1"})]

    await store.mutate_incident(second.id, field_change)
    (row,) = await store.metrics_rows("team1", since=T0 + 1)
    assert row.severity == "SEV1" and row.resolve_ms is None
    ended = (await store.get_incident(first.id)).model_copy(update={"field_values": {"severity": "SEV2"}})
    ended, events = incidents.end_incident(ended, "alice", T0 + 30 * MIN)
    await store.update_incident(ended, events)
    assert {r.incident_id: r.resolve_ms for r in await store.metrics_rows("team1", since=T0)}[first.id] == 30 * MIN


async def test_a_rolled_back_write_leaves_the_summary_alone(store):
    inc, events = incident()
    await store.create_incident(inc, events)
    before = await store.incident_summary(inc.id)
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await store.mutate_incident(inc.id, lambda i: incidents.end_incident(i, "alice", T0 + MIN))
            await store.append_events([TimelineEvent(id=new_id(), incident_id=inc.id, at=T0 + 2 * MIN,
                                                     kind=EventKind.STATUS_UPDATE, actor_id="bob")])
            raise RuntimeError("crash before the commit")
    assert await store.incident_summary(inc.id) == before == await recomputed(store, inc.id)
    assert before.ongoing and before.first_update_at is None


async def test_deleting_an_incident_deletes_its_summary(store):
    inc, events = incident()
    await store.create_incident(inc, events)
    assert await store.delete_incident(inc.id)
    assert await store.incident_summary(inc.id) is None
    assert await store.metrics_rows("team1", since=0) == []
    with pytest.raises(NotFound):
        await store.save_summary(inc, summarize(inc.created_at, []))


async def _forget_summaries(store, backend: str) -> None:
    """Make the store look as if its incidents were recorded before migration 0010."""
    if backend == "sqlite":
        with sqlite3.connect(store.path) as raw:
            raw.execute("DELETE FROM incident_metrics")
    elif backend == "postgresql":
        conn = await asyncpg.connect(store.url)
        try:
            await conn.execute("DELETE FROM incident_metrics")
        finally:
            await conn.close()
    else:
        store._db.data.w_summaries().clear()


async def test_incidents_without_a_summary_get_it_from_their_events(store, backend):
    made = []
    for n in range(5):
        inc, events = incident(name=f"Old {n}", now=T0 + n)
        await store.create_incident(inc, events)
        await store.mutate_incident(inc.id, lambda i: updates.post_update(i, "hi", "bob", T0 + MIN, next_in_ms=None))
        await store.mutate_incident(inc.id, lambda i: incidents.end_incident(i, "bob", T0 + 9 * MIN))
        made.append(inc.id)
    await _forget_summaries(store, backend)
    assert sorted(await store.incidents_without_summary()) == sorted(made)
    assert await store.metrics_rows("team1", since=0) == []
    # A write to one of them before the backfill computes its summary from its whole timeline.
    await store.mutate_incident(made[0], lambda i: incidents.restart_incident(i, "bob", T0 + 20 * MIN))
    assert await store.incident_summary(made[0]) == await recomputed(store, made[0])
    assert await store.backfill_metrics(batch=2) == 4
    assert await store.incidents_without_summary() == []
    for incident_id in made:
        summary = await store.incident_summary(incident_id)
        assert summary == await recomputed(store, incident_id)
    rows = sorted(await store.metrics_rows("team1", since=0), key=lambda r: r.created_at)
    assert [r.resolve_ms for r in rows] == [None, 9 * MIN - 1, 9 * MIN - 2, 9 * MIN - 3, 9 * MIN - 4]
    assert await store.backfill_metrics() == 0


@pytest.mark.backends("sqlite", reason="the backfill when an upgraded SQLite database is opened")
async def test_opening_an_upgraded_database_backfills_the_summaries(tmp_path):
    path = tmp_path / "old.db"
    store = SqliteStore(path)
    await store.open()
    inc, events = incident()
    await store.create_incident(inc, events)
    await store.mutate_incident(inc.id, lambda i: incidents.end_incident(i, "alice", T0 + 5 * MIN))
    await store.close()
    with sqlite3.connect(path) as raw:
        raw.execute("DELETE FROM incident_metrics")
    reopened = SqliteStore(path)
    await reopened.open()
    try:
        summary = await reopened.incident_summary(inc.id)
        assert summary is not None and summary.resolve_ms == 5 * MIN
        assert summary == await recomputed(reopened, inc.id)
    finally:
        await reopened.close()


@pytest.mark.backends("sqlite", reason="SQLite's query plan")
async def test_stats_rows_are_read_from_the_covering_index_only(store):
    with sqlite3.connect(store.path) as raw:
        plan = " ".join(str(row[-1]) for row in raw.execute(
            "EXPLAIN QUERY PLAN SELECT incident_id, team_id, playbook_id, channel_id, public, severity, created_at,"
            " resolve_ms FROM incident_metrics WHERE team_id = ? AND created_at >= ? AND playbook_id = ?",
            ("t", 0, "p")))
    assert "COVERING INDEX incident_metrics_stats" in plan, plan
