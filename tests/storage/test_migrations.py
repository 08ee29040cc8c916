"""SQLite schema migrations: every earlier schema version upgrades to the latest, keeping data."""

from __future__ import annotations

import json
import sqlite3

import pytest

from domain.models import IncidentStatus
from storage import StorageError, migrations
from storage.sqlite import SqliteStore

from .builders import T0, incident, playbook

LATEST = len(migrations.load("sqlite"))


def write_v1_data(db_path) -> dict:
    """Rows as a version-1 bot would have written them, with raw SQL for that schema."""
    pb = playbook()
    inc, events = incident(pb, name="Old incident", public=False)
    stages = json.dumps([s.model_dump(mode="json") for s in inc.stages])
    pb_stages = json.dumps([s.model_dump(mode="json") for s in pb.stages])
    with sqlite3.connect(db_path) as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(
            "INSERT INTO playbooks (id, team_id, title, description, create_public_channel, stages, created_by,"
            " created_at, updated_at, version) VALUES (?, ?, ?, '', 1, ?, 'alice', ?, ?, 1)",
            (pb.id, pb.team_id, pb.title, pb_stages, T0, T0),
        )
        conn.execute("INSERT INTO playbook_members (playbook_id, user_id, position) VALUES (?, 'alice', 0)", (pb.id,))
        conn.execute(
            "INSERT INTO incidents (id, team_id, channel_id, name, description, commander_id, creator_id,"
            " playbook_id, playbook_title, stages, active_stage, status, created_at, ended_at, source_post_id,"
            " card_post_id, public, version)"
            " VALUES (?, ?, ?, ?, '', 'alice', 'alice', ?, ?, ?, 0, 'ongoing', ?, NULL, NULL, 'card1', 0, 1)",
            (inc.id, inc.team_id, inc.channel_id, inc.name, pb.id, pb.title, stages, T0),
        )
        conn.execute(
            "INSERT INTO timeline_events (id, incident_id, at, kind, actor_id, details) VALUES (?, ?, ?, ?, ?, '{}')",
            (events[0].id, inc.id, T0, "created", "alice"),
        )
    return {"playbook": pb, "incident": inc.model_copy(update={"card_post_id": "card1"}), "event": events[0]}


# Versions 2 to 5 only added tables and indexes, so version-1 rows are still what they wrote
# (version 6 adds nullable columns, NULL for those rows: see test_state_marks_migration; the
# writer names its columns, so it serves version 6 too; version 7 only adds the jobs table; version 8
# adds columns with defaults — no update settings, followers or due time — which the rows read back
# as the models' defaults: see test_status_update_columns_migration, so the writer serves it too;
# version 9 only adds the list generation and its triggers; version 10 only adds the alerts tables;
# version 11 adds the metrics summaries, which the store backfills when it opens: see
# tests/storage/test_store_metrics.py; version 12 adds the webhook columns with defaults, no targets,
# read back as the models' defaults; version 13 adds field and retrospective columns that are NULL or
# default for those rows, read back as the default severity field and no values or retrospective: see
# test_store_fields.py; version 14 adds a nullable timeline column, filled for the kinds that name a
# subject: see tests/storage/test_store_timeline.py;
# version 15 only adds the leases table).
DATA_WRITERS = {1: write_v1_data, 2: write_v1_data, 3: write_v1_data, 4: write_v1_data, 5: write_v1_data,
                6: write_v1_data, 7: write_v1_data, 8: write_v1_data, 9: write_v1_data,
                10: write_v1_data, 11: write_v1_data, 12: write_v1_data,
                13: write_v1_data, 14: write_v1_data, 15: write_v1_data}


def test_every_earlier_version_has_a_data_writer():
    assert set(DATA_WRITERS) >= set(range(1, LATEST))


@pytest.mark.parametrize("start_version", range(LATEST))
async def test_upgrade_from_each_earlier_version(tmp_path, start_version):
    db_path = tmp_path / "old.db"
    data = None
    if start_version > 0:
        old = SqliteStore(db_path)
        await old.open(schema_version=start_version)
        assert await old.schema_version() == start_version
        await old.close()
        data = DATA_WRITERS[start_version](db_path)

    store = SqliteStore(db_path)
    await store.open()
    try:
        assert await store.schema_version() == LATEST
        assert await store.integrity_check() == ["ok"]
        await store.set_setting("after", "upgrade")
        assert await store.get_setting("after") == "upgrade"
        if data is not None:
            inc = data["incident"]
            assert await store.get_incident(inc.id) == inc
            assert await store.incident_by_channel(inc.channel_id) == inc
            assert [e.id for e in await store.timeline(inc.id)] == [data["event"].id]
            assert await store.get_playbook(data["playbook"].id) == data["playbook"]
            assert [p.id for p in await store.playbooks_for_user("team1", "alice")] == [data["playbook"].id]
            page = await store.list_incidents(
                "team1", viewer_channel_ids=[inc.channel_id], status=IncidentStatus.ONGOING
            )
            assert [i.id for i in page.items] == [inc.id]
    finally:
        await store.close()
    with sqlite3.connect(db_path) as raw:
        indexes = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"incidents_list", "incidents_list_status", "playbook_members_user", "incidents_without_card",
                "incidents_update_due"} <= indexes
        versions = [row[0] for row in raw.execute("SELECT version FROM schema_migrations ORDER BY version")]
        assert versions == list(range(1, LATEST + 1))


async def test_reopening_applies_nothing_twice(tmp_path):
    for _ in range(3):
        store = SqliteStore(tmp_path / "x.db")
        await store.open()
        assert await store.schema_version() == LATEST
        await store.close()


async def test_a_failing_migration_changes_nothing(tmp_path, monkeypatch):
    db_path = tmp_path / "x.db"
    store = SqliteStore(db_path)
    await store.open()
    await store.set_setting("keep", "me")
    await store.close()
    broken = migrations.Migration(
        LATEST + 1, "broken", ("CREATE TABLE half_done (x INTEGER)", "THIS IS NOT SQL")
    )
    real = migrations.load("sqlite")
    monkeypatch.setattr(migrations, "load", lambda backend: [*real, broken])
    failing = SqliteStore(db_path)
    with pytest.raises(sqlite3.OperationalError):
        await failing.open()
    monkeypatch.undo()
    store = SqliteStore(db_path)
    await store.open()
    try:
        assert await store.schema_version() == LATEST
        assert await store.get_setting("keep") == "me"
    finally:
        await store.close()
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("SELECT count(*) FROM sqlite_master WHERE name = 'half_done'").fetchone() == (0,)


async def test_a_newer_database_is_refused(tmp_path):
    db_path = tmp_path / "x.db"
    store = SqliteStore(db_path)
    await store.open()
    await store.close()
    with sqlite3.connect(db_path) as raw:
        raw.execute("INSERT INTO schema_migrations VALUES (?, 'future', 0)", (LATEST + 1,))
    with pytest.raises(StorageError, match="newer than this version"):
        await SqliteStore(db_path).open()


def test_split_statements_keeps_triggers_whole():
    script = """
    -- a comment
    CREATE TABLE a (x INTEGER); -- trailing
    CREATE TRIGGER t AFTER INSERT ON a BEGIN
        UPDATE a SET x = x + 1; DELETE FROM a WHERE x > 9;
    END;
    """
    statements = migrations.split_statements(script)
    assert len(statements) == 2 and statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")
    with pytest.raises(ValueError, match="incomplete"):
        migrations.split_statements("CREATE TABLE b (x")
