"""Upgrading a PostgreSQL database made by the first PostgreSQL release (schema version 2, before the
alerts, metrics, webhooks, fields and timeline migrations): its incidents read back with the default
severity field, no values, no webhooks and no retrospective; the timeline's subjects are filled in;
and the store backfills their metrics summaries when it opens."""

from __future__ import annotations

import json

import asyncpg
import pytest

from domain import incidents
from domain.metrics import summarize
from domain.models import DEFAULT_SEVERITY, EventKind, TimelineEvent
from storage import migrations
from storage.postgres import PostgresStore
from storage.sqlite import _stages_json
from tests import pg

from .builders import T0, incident

pytestmark = pytest.mark.backends("postgresql", reason="PostgreSQL's own migrations")


@pytest.fixture
def empty_database():
    url = pg.fresh_database(migrated=False)
    yield url
    pg.drop_database(url)


async def test_a_version_2_database_is_upgraded_with_its_rows(empty_database):
    old = PostgresStore(empty_database, pool_size=1)
    await old.open(schema_version=2)
    await old.close()
    inc, events = incident()
    ended, more = incidents.end_incident(inc, "alice", T0 + 5_000)
    pinned = TimelineEvent(id="e" * 26, incident_id=inc.id, at=T0 + 1, kind=EventKind.POST_ADDED, actor_id="bob",
                           details={"post_id": "p" * 26})
    conn = await asyncpg.connect(empty_database)
    try:  # rows as version 2 wrote them (its columns only)
        await conn.execute(
            "INSERT INTO incidents (id, team_id, channel_id, name, commander_id, creator_id, status, created_at,"
            " ended_at, public, version, stages) VALUES ($1, $2, $3, $4, $5, $6, 'ended', $7, $8, 1, 2, $9)",
            inc.id, inc.team_id, inc.channel_id, inc.name, inc.commander_id, inc.creator_id, inc.created_at,
            ended.ended_at, _stages_json(inc.stages))
        for event in (*events, pinned, *more):
            await conn.execute("INSERT INTO timeline_events (id, incident_id, at, kind, actor_id, details)"
                               " VALUES ($1, $2, $3, $4, $5, $6)", event.id, event.incident_id, event.at,
                               event.kind.value, event.actor_id, json.dumps(event.details))
    finally:
        await conn.close()

    store = PostgresStore(empty_database, pool_size=2)
    await store.open()
    try:
        assert await store.schema_version() == len(migrations.load("postgres"))
        stored = await store.get_incident(inc.id)
        assert stored is not None
        assert stored.fields == (DEFAULT_SEVERITY,) and stored.field_values == {} and stored.webhooks == ()
        assert stored.retro_status is None
        assert [e.id for e in await store.events_about(inc.id, "p" * 26)] == [pinned.id]
        summary = await store.incident_summary(inc.id)  # backfilled at open
        assert summary is not None and summary == summarize(stored.created_at, await store.timeline(inc.id))
        assert summary.resolve_ms == 5_000
        page = await store.list_incidents(inc.team_id, is_admin=True, field_values={"severity": "SEV1"})
        assert page.total == 0
    finally:
        await store.close()
