"""The store's timeline queries (issue 18), on every backend: the events about one post or member
are found by their subject, in recorded order, and the rest of the timeline is left alone."""

from __future__ import annotations

import sqlite3

import pytest

from domain._ops import event
from domain.models import EventKind
from domain.timeline import subject_of
from storage import migrations
from storage.sqlite import SqliteStore

from .builders import T0, incident


async def _stored(store):
    inc, events = incident()
    return await store.create_incident(inc, events)


async def test_events_about_a_post_come_in_recorded_order_and_only_that_posts(store):
    inc = await _stored(store)
    added = event(inc, EventKind.POST_ADDED, "bob", T0 + 5, post_id="p1", author_id="carol", excerpt="hi")
    other = event(inc, EventKind.POST_ADDED, "bob", T0 + 1, post_id="p2", author_id="carol", excerpt="yo")
    edited = event(inc, EventKind.POST_EDITED, "carol", T0 + 9, post_id="p1", excerpt="hello")
    removed = event(inc, EventKind.POST_REMOVED, "bob", T0 + 2, post_id="p1")  # earlier time, later record
    await store.append_events([added, other])
    await store.append_events([edited])
    await store.append_events([removed])
    assert [e.id for e in await store.events_about(inc.id, "p1")] == [added.id, edited.id, removed.id]
    assert [e.id for e in await store.events_about(inc.id, "p2")] == [other.id]
    assert await store.events_about(inc.id, "nothing") == []
    assert (await store.events_about(inc.id, "p1"))[1].details == {"post_id": "p1", "excerpt": "hello"}
    assert len(await store.timeline(inc.id)) == 5  # created + four


async def test_events_about_a_member_and_a_hidden_event(store):
    inc = await _stored(store)
    joined = event(inc, EventKind.MEMBER_JOINED, "bob", T0 + 1, user_id="bob")
    left = event(inc, EventKind.MEMBER_LEFT, "alice", T0 + 2, user_id="bob")
    await store.append_events([joined, left])
    hidden = event(inc, EventKind.EVENT_HIDDEN, "alice", T0 + 3, event_id=joined.id, number=2)
    _, _ = await store.mutate_incident(inc.id, lambda i: (i, [hidden]))
    assert [e.kind for e in await store.events_about(inc.id, "bob")] == [EventKind.MEMBER_JOINED,
                                                                         EventKind.MEMBER_LEFT]
    assert [e.id for e in await store.events_about(inc.id, joined.id)] == [hidden.id]


async def test_events_about_are_per_incident_and_go_with_a_deleted_incident(store):
    first, second = await _stored(store), await _stored(store)
    await store.append_events([event(first, EventKind.POST_ADDED, "bob", T0, post_id="p1")])
    await store.append_events([event(second, EventKind.POST_ADDED, "bob", T0, post_id="p1")])
    assert len(await store.events_about(first.id, "p1")) == 1
    assert await store.delete_incident(first.id)
    assert await store.events_about(first.id, "p1") == []
    assert len(await store.events_about(second.id, "p1")) == 1


async def test_events_written_in_a_transaction_are_found_after_it_commits(store):
    inc = await _stored(store)
    async with store.transaction():
        assert await store.events_about(inc.id, "p9") == []
        await store.append_events([event(inc, EventKind.POST_ADDED, "bob", T0, post_id="p9")])
    assert len(await store.events_about(inc.id, "p9")) == 1


def _timeline_version() -> int:
    return next(m.version for m in migrations.load("sqlite") if m.name == "timeline")


async def test_the_timeline_migration_fills_in_the_subject_of_earlier_events(tmp_path):
    path = tmp_path / "old.db"
    old = SqliteStore(path)
    await old.open(schema_version=_timeline_version() - 1)
    inc, _ = incident()
    await old.create_incident(inc)  # no events: they are written below as the old schema has them
    await old.close()
    pinned = event(inc, EventKind.POST_ADDED, "bob", T0, post_id="p1")
    with sqlite3.connect(path) as conn:  # as a bot of the previous version would have written it
        conn.execute("INSERT INTO timeline_events (id, incident_id, at, kind, actor_id, details)"
                     " VALUES (?, ?, ?, ?, ?, ?)", (pinned.id, inc.id, T0, "post_added", "bob", '{"post_id":"p1"}'))
    store = SqliteStore(path)
    await store.open()
    try:
        assert [e.id for e in await store.events_about(inc.id, "p1")] == [pinned.id]
        with sqlite3.connect(path) as conn:
            plan = " ".join(str(row) for row in conn.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM timeline_events WHERE incident_id = ? AND subject_id = ?"
                " ORDER BY seq", (inc.id, "p1")))
        assert "timeline_events_subject" in plan
    finally:
        await store.close()


@pytest.mark.parametrize("kind, details, subject", [
    (EventKind.POST_ADDED, {"post_id": "p"}, "p"), (EventKind.MEMBER_LEFT, {"user_id": "u"}, "u"),
    (EventKind.EVENT_HIDDEN, {"event_id": "e"}, "e"), (EventKind.STEP_CHECKED, {"step_id": "s"}, None),
    (EventKind.POST_ADDED, {"post_id": 7}, None),
])
def test_subject_of(kind, details, subject):
    inc, _ = incident()
    assert subject_of(event(inc, kind, "bob", T0, **details)) == subject
