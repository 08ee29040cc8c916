"""Severity, custom fields and the retrospective in the store (issue 18): definitions, values and
the retrospective survive a round trip on every backend, and the list filters by field value."""

from __future__ import annotations

import json
import sqlite3

import pytest

from domain import fields, incidents, retro
from domain.errors import ValidationError
from domain.models import DEFAULT_SEVERITY, FieldDef, FieldKind, RetroSettings, RetroStatus
from domain.playbooks import edit_playbook
from storage import migrations
from storage.sqlite import SqliteStore

from .builders import T0, incident, playbook

MIN = 60_000
CUSTOMER = FieldDef(id="customer", name="Customer", kind=FieldKind.SELECT, options=("ACME", "Globex"))
FIELDS = (DEFAULT_SEVERITY, CUSTOMER, FieldDef(id="owner", name="Owner", kind=FieldKind.USER),
          FieldDef(id="due", name="Due", kind=FieldKind.DATE), FieldDef(id="notes", name="Notes", kind=FieldKind.TEXT))
RETRO = RetroSettings(template="## What went well\n\n## What did not", reminder_interval_ms=60 * MIN)


def with_fields(**kwargs):
    return playbook(fields=FIELDS, retro=RETRO, **kwargs)


async def test_playbook_fields_and_retro_round_trip(store):
    pb = await store.create_playbook(with_fields())
    stored = await store.get_playbook(pb.id)
    assert stored == pb and stored.fields == FIELDS and stored.retro == RETRO

    edited = edit_playbook(stored, now=T0 + 1, fields=[], retro=RetroSettings())
    saved = await store.update_playbook(edited)
    again = await store.get_playbook(pb.id)
    assert again == saved and again.fields == () and again.retro == RetroSettings()
    assert [p.fields for p in await store.playbooks_for_user("team1", "alice")] == [()]


async def test_incident_field_values_and_retro_round_trip(store):
    inc, events = incident(with_fields())
    assert inc.fields == FIELDS and inc.retro == RETRO and inc.field_values == {}
    await store.create_incident(inc, events)
    assert await store.get_incident(inc.id) == inc

    saved, changed = await store.mutate_incident(
        inc.id, lambda i: fields.set_fields(i, {"severity": "sev2", "customer": "acme", "notes": "  It's \"quoted\" "},
                                            "alice", T0 + MIN))
    assert saved.field_values == {"severity": "SEV2", "customer": "ACME", "notes": "It's \"quoted\""}
    assert saved.severity == "SEV2"
    assert [e.details for e in changed] == [
        {"field_id": "severity", "name": "Severity", "old": None, "new": "SEV2"},
        {"field_id": "customer", "name": "Customer", "old": None, "new": "ACME"},
        {"field_id": "notes", "name": "Notes", "old": None, "new": "It's \"quoted\""}]
    saved, changed = await store.mutate_incident(inc.id, lambda i: fields.set_field(i, "severity", None, "bob", T0))
    assert "severity" not in saved.field_values and changed[0].details["old"] == "SEV2"
    assert await store.get_incident(inc.id) == saved

    ended, _ = await store.mutate_incident(inc.id, lambda i: incidents.end_incident(i, "alice", T0 + 2 * MIN))
    assert ended.retro_status is RetroStatus.PENDING
    assert await store.get_incident(inc.id) == ended
    published, _ = await store.mutate_incident(
        inc.id, lambda i: retro.publish_retro(i, "We fixed it.", "alice", T0 + 3 * MIN))
    stored = await store.get_incident(inc.id)
    assert stored == published
    assert (stored.retro_status, stored.retro_text, stored.retro_published_at, stored.retro_by) == (
        RetroStatus.PUBLISHED, "We fixed it.", T0 + 3 * MIN, "alice")
    assert await store.incidents_by_ids([inc.id]) == [stored]
    assert await store.incident_by_channel(inc.channel_id) == stored
    kinds = [e.kind.value for e in await store.timeline(inc.id)]
    assert kinds == ["created", "field_changed", "field_changed", "field_changed", "field_changed", "ended",
                     "retro_published"]


async def test_the_list_filters_by_field_values(store):
    pb = with_fields()
    made = {}
    for name, values, public in (("One", {"severity": "SEV1", "customer": "ACME"}, True),
                                 ("Two", {"severity": "SEV2", "customer": "ACME"}, True),
                                 ("Three", {"severity": "SEV1"}, True),
                                 ("Hidden", {"severity": "SEV1", "customer": "ACME"}, False)):
        inc, events = incident(pb, name=name, public=public)
        await store.create_incident(inc, events)
        made[name], _ = await store.mutate_incident(inc.id, lambda i, v=values: fields.set_fields(i, v, "alice", T0))
    other, events = incident(playbook(team_id="team2"), name="Other team")
    await store.create_incident(other, events)
    await store.mutate_incident(other.id, lambda i: fields.set_field(i, "severity", "SEV1", "alice", T0))

    async def names(**kwargs):
        page = await store.list_incidents("team1", sort="name asc", **kwargs)
        refs = await store.list_incident_refs("team1", sort="name asc", **kwargs)
        assert [r.id for r in refs.items] == [i.id for i in page.items] and refs.total == page.total
        assert page.total == len(page.items)
        return [i.name for i in page.items]

    assert await names(field_values={"severity": "SEV1"}) == ["One", "Three"]
    assert await names(field_values={"severity": "SEV1"}, viewer_channel_ids=[made["Hidden"].channel_id]) == [
        "Hidden", "One", "Three"]
    assert await names(field_values={"severity": "SEV1", "customer": "ACME"}, is_admin=True) == ["Hidden", "One"]
    assert await names(field_values={"customer": "ACME"}, status="ongoing") == ["One", "Two"]
    assert await names(field_values={"customer": "Globex"}) == []
    assert await names(field_values={"severity": "SEV4"}) == []
    assert await names() == ["One", "Three", "Two"]

    # A change moves the list (and its counted total) at once.
    await store.mutate_incident(made["Three"].id, lambda i: fields.set_field(i, "severity", "SEV3", "bob", T0 + 1))
    assert await names(field_values={"severity": "SEV1"}) == ["One"]
    await store.mutate_incident(made["Two"].id, lambda i: fields.set_field(i, "severity", "SEV1", "bob", T0 + 2))
    assert await names(field_values={"severity": "SEV1"}) == ["One", "Two"]


async def test_a_field_filter_with_a_hostile_id_is_refused(store):
    for bad in ('x"y', "$.a", "", "A" * 40):
        with pytest.raises(ValidationError):
            await store.list_incidents("team1", field_values={bad: "1"})
    with pytest.raises(ValidationError):
        await store.list_incidents("team1", field_values={f"f{n}": "1" for n in range(6)})
    # A hostile value is only a value.
    page = await store.list_incidents("team1", field_values={"severity": "' OR 1=1 --"})
    assert page.total == 0


@pytest.mark.backends("sqlite", reason="about SQLite's query plan for the severity filter")
async def test_the_severity_filter_reads_its_index(store, store_url):
    path = store_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as raw:
        plan = " ".join(row[3] for row in raw.execute(
            "EXPLAIN QUERY PLAN SELECT rowid FROM incidents WHERE team_id = 'team1'"
            " AND (public = 1 OR channel_id IN (SELECT value FROM json_each('[]')))"
            " AND json_extract(field_values, '$.severity') = 'SEV1' ORDER BY created_at DESC, rowid DESC LIMIT 15"))
    assert "COVERING INDEX incidents_list_severity" in plan, plan
    with sqlite3.connect(path) as raw:
        counted = " ".join(row[3] for row in raw.execute(
            "EXPLAIN QUERY PLAN SELECT count(*) FROM incidents WHERE team_id = 'team1' AND public = 1"
            " AND field_values <> '{}' AND json_extract(field_values, '$.\"customer\"') = 'ACME'"))
    assert "COVERING INDEX incidents_list_fields" in counted, counted


async def test_fields_columns_migration(tmp_path):
    """A version-9 database: existing rows read back with the default severity field, no values, no retro."""
    db_path = tmp_path / "v9.db"
    old = SqliteStore(db_path)
    await old.open(schema_version=9)
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
        assert await store.schema_version() == len(migrations.load("sqlite"))
        stored = await store.get_incident(inc.id)
        assert stored == inc
        assert stored.fields == (DEFAULT_SEVERITY,) and stored.field_values == {} and stored.retro_status is None
        assert (await store.get_playbook(pb.id)).fields == (DEFAULT_SEVERITY,)
        saved, _ = await store.mutate_incident(inc.id, lambda i: fields.set_field(i, "severity", "SEV3", "a", T0))
        assert (await store.list_incidents("team1", field_values={"severity": "SEV3"})).items == [saved]
    finally:
        await store.close()
