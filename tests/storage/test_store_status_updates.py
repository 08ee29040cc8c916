"""Status updates in the store (issue 17): playbook update settings, incident followers and due
times survive a round trip on every backend, and the list can select the overdue incidents."""

from __future__ import annotations

import json
import sqlite3

import pytest

from domain import incidents, updates
from domain.models import IncidentStatus, ReminderDelivery, UpdateSettings
from domain.playbooks import edit_playbook, update_settings
from storage import migrations
from storage.sqlite import SqliteStore

from .builders import T0, incident, playbook

MIN = 60_000
SETTINGS = update_settings(broadcast_channel_ids=["bc1", "bc2"], interval_ms=30 * MIN,
                           template="**Impact:**\n**Next steps:**", reminder_delivery=ReminderDelivery.DM)

def configured_playbook(**kwargs):
    return playbook(updates=SETTINGS, invited_user_ids=["bob", "carol"], default_commander_id="bob",
                    auto_follower_ids=["dave", "erin"], **kwargs)

async def test_playbook_update_settings_round_trip(store):
    pb = await store.create_playbook(configured_playbook())
    stored = await store.get_playbook(pb.id)
    assert stored == pb
    assert stored.updates == SETTINGS
    assert (stored.invited_user_ids, stored.default_commander_id, stored.auto_follower_ids) == (
        ("bob", "carol"), "bob", ("dave", "erin"))

    edited = edit_playbook(stored, now=T0 + 1, updates=UpdateSettings(), invited_user_ids=[],
                           default_commander_id="", auto_follower_ids=["frank"])
    saved = await store.update_playbook(edited)
    again = await store.get_playbook(pb.id)
    assert again == saved
    assert again.updates == UpdateSettings() and again.invited_user_ids == ()
    assert again.default_commander_id is None and again.auto_follower_ids == ("frank",)
    assert [p.id for p in await store.playbooks_for_user("team1", "alice")] == [pb.id]

async def test_incident_followers_and_update_times_round_trip(store):
    pb = configured_playbook()
    inc, events = incident(pb)
    assert inc.next_update_due_at == T0 + 30 * MIN and inc.follower_ids == ("dave", "erin")
    await store.create_incident(inc, events)
    assert await store.get_incident(inc.id) == inc

    saved, _ = await store.mutate_incident(
        inc.id, lambda i: updates.post_update(i, "All good", "alice", T0 + MIN, next_in_ms=60 * MIN))
    saved, _ = await store.mutate_incident(saved.id, lambda i: updates.follow(i, "zed", T0 + 2 * MIN))
    saved, _ = await store.mutate_incident(saved.id, lambda i: updates.request_update(i, "zed", T0 + 3 * MIN))
    with_post = updates.set_update_post(saved, "post1")
    saved = await store.update_incident(with_post, previous=saved)
    stored = await store.get_incident(inc.id)
    assert stored == saved
    assert stored.updates == SETTINGS
    assert stored.follower_ids == ("dave", "erin", "zed")
    assert (stored.last_update_at, stored.last_update_by, stored.last_update_post_id) == (T0 + MIN, "alice", "post1")
    assert stored.next_update_due_at == T0 + 61 * MIN
    assert stored.update_requested_at == T0 + 3 * MIN
    assert await store.incident_by_channel(inc.channel_id) == stored
    assert await store.incidents_by_ids([inc.id]) == [stored]
    kinds = [e.kind.value for e in await store.timeline(inc.id)]
    assert kinds == ["created", "status_update", "followed", "update_requested"]
    status = (await store.timeline(inc.id))[1]
    assert status.details == {"message": "All good", "next_update_due_at": T0 + 61 * MIN, "final": False}

async def test_the_list_selects_overdue_incidents(store):
    pb = configured_playbook()  # first update due 30 min after the start
    early, e1 = incident(pb, name="Early", now=T0)
    late, e2 = incident(pb, name="Late", now=T0 + 20 * MIN)
    quiet, e3 = incident(playbook(), name="No interval", now=T0)
    hidden, e4 = incident(pb, name="Private", now=T0, public=False)
    for inc, events in ((early, e1), (late, e2), (quiet, e3), (hidden, e4)):
        await store.create_incident(inc, events)

    async def overdue_names(at, **kwargs):
        page = await store.list_incidents("team1", overdue_at=at, sort="name asc", **kwargs)
        refs = await store.list_incident_refs("team1", overdue_at=at, sort="name asc", **kwargs)
        assert [r.id for r in refs.items] == [i.id for i in page.items] and refs.total == page.total
        return [i.name for i in page.items]

    assert await overdue_names(T0 + 29 * MIN) == []
    assert await overdue_names(T0 + 30 * MIN) == ["Early"]  # due at that moment: overdue
    assert await overdue_names(T0 + 50 * MIN) == ["Early", "Late"]
    assert await overdue_names(T0 + 50 * MIN, viewer_channel_ids=[hidden.channel_id]) == ["Early", "Late", "Private"]
    assert await overdue_names(T0 + 50 * MIN, is_admin=True, commander_id="alice",
                               status=IncidentStatus.ONGOING) == ["Early", "Late", "Private"]
    # Agrees with the domain rule, incident by incident.
    for inc in (early, late, quiet):
        assert (inc.name in await overdue_names(T0 + 40 * MIN)) == updates.overdue(inc, T0 + 40 * MIN)

    # An update moves the due time; ending clears it; the list follows.
    await store.mutate_incident(early.id, lambda i: updates.post_update(i, "Fixed?", "alice", T0 + 40 * MIN,
                                                                        next_in_ms=15 * MIN))
    await store.mutate_incident(late.id, lambda i: incidents.end_incident(i, "alice", T0 + 41 * MIN))
    assert await overdue_names(T0 + 50 * MIN) == []
    assert await overdue_names(T0 + 55 * MIN) == ["Early"]
    assert (await store.list_incidents("team1", is_admin=True)).total == 4  # no filter: all, as before

@pytest.mark.backends("sqlite", reason="about SQLite's query plan for the overdue list")
async def test_the_overdue_list_reads_its_partial_index(store, store_url):
    path = store_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as raw:
        plan = " ".join(row[3] for row in raw.execute(
            "EXPLAIN QUERY PLAN SELECT id, team_id, channel_id, public FROM incidents WHERE team_id = 'team1'"
            " AND status = 'ongoing' AND next_update_due_at IS NOT NULL AND next_update_due_at <= 5"))
    assert "incidents_update_due" in plan, plan

async def test_status_update_columns_migration(tmp_path):
    """A version-7 database: existing rows read back with the defaults (nothing due, no followers)."""
    db_path = tmp_path / "v7.db"
    old = SqliteStore(db_path)
    await old.open(schema_version=7)
    pb = playbook()
    inc, _ = incident(pb)

    await old.close()
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "INSERT INTO playbooks (id, team_id, title, description, create_public_channel, stages, created_by,"
            " created_at, updated_at, version) VALUES (?, 'team1', ?, '', 1, ?, 'alice', ?, ?, 1)",
            (pb.id, pb.title, json.dumps([s.model_dump(mode="json") for s in pb.stages]), T0, T0))
        conn.execute("INSERT INTO playbook_members (playbook_id, user_id, position) VALUES (?, 'alice', 0)", (pb.id,))
        conn.execute(
            "INSERT INTO incidents (id, team_id, channel_id, name, description, commander_id, creator_id,"
            " playbook_id, playbook_title, stages, active_stage, status, created_at, public, version)"
            " VALUES (?, 'team1', ?, ?, '', 'alice', 'alice', ?, ?, ?, 0, 'ongoing', ?, 1, 1)",
            (inc.id, inc.channel_id, inc.name, pb.id, pb.title,
             json.dumps([s.model_dump(mode="json") for s in inc.stages]), T0))
    store = SqliteStore(db_path)
    await store.open()
    try:
        assert await store.schema_version() == len(migrations.load("sqlite")) >= 8
        stored = await store.get_incident(inc.id)
        assert stored == inc
        assert stored.updates == UpdateSettings() and stored.follower_ids == ()
        assert stored.next_update_due_at is None and stored.last_update_at is None
        assert await store.get_playbook(pb.id) == pb
        assert (await store.list_incidents("team1", overdue_at=T0 + 10**9)).total == 0
        # The upgraded rows take the new fields.
        followed, _ = await store.mutate_incident(inc.id, lambda i: updates.follow(i, "zed", T0 + 1))
        assert (await store.get_incident(inc.id)).follower_ids == ("zed",) == followed.follower_ids
    finally:
        await store.close()
