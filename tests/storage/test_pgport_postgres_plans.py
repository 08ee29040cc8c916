"""PostgreSQL's plans for the list filters by field value (migration 0006): the statements the store
runs walk incidents_list_severity (severity) and incidents_list_fields (any other field), not the
table; stats read incident_metrics_stats (0004); the events of one subject read
timeline_events_subject (0007). Sequential scans are switched off so the plan says which index can
serve the statement (a table this small would otherwise be read whole)."""

from __future__ import annotations

import pytest

from storage.base import IncidentQuery

from .pg_plans import explain, page_sql

pytestmark = pytest.mark.backends("postgresql", reason="PostgreSQL's query plans")


async def _plan(url: str, sql: str, *args) -> str:
    return await explain(url, sql, args)


async def test_the_severity_filter_walks_its_index(store, store_url):
    sql, args = page_sql(IncidentQuery.of("team1", viewer_channel_ids=["c1"], field_values={"severity": "SEV1"}))
    plan = await _plan(store_url, sql, *args)
    assert "incidents_list_severity" in plan, plan
    assert "Sort" not in plan, plan  # newest first straight from the index


async def test_another_field_reads_the_partial_fields_index(store, store_url):
    sql, args = page_sql(IncidentQuery.of("team1", is_admin=True, field_values={"customer": "ACME"}))
    plan = await _plan(store_url, sql, *args)
    assert "incidents_list_fields" in plan, plan


async def test_stats_and_subjects_read_their_indexes(store, store_url):
    stats = await _plan(store_url, "SELECT incident_id, team_id, playbook_id, channel_id, public, severity,"
                        " created_at, resolve_ms FROM incident_metrics WHERE team_id = $1 AND created_at >= $2",
                        "team1", 0)
    assert "incident_metrics_stats" in stats, stats
    about = await _plan(store_url, "SELECT id FROM timeline_events WHERE incident_id = $1 AND subject_id = $2"
                        " ORDER BY seq", "i1", "p1")
    assert "timeline_events_subject" in about, about
