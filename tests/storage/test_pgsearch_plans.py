"""Issue 20, PostgreSQL's plans for the list's name search (migration 0009_pgsearch): a term of three
characters or more may take its candidates from the trigram index incidents_name_trgm, and the
statements holding it are planned for their term on every run (never kept as a generic plan); a
shorter term, and the count of the viewer's own private incidents, test each row's name instead (no
LIKE the index could serve). Sequential scans are switched off, so the plan shows which index can
serve a statement (a table this small would otherwise be read whole)."""

from __future__ import annotations

import asyncpg
import pytest

from storage.base import IncidentQuery
from storage.postgres import PostgresStore, _count_statement, _Params, _private_count
from storage.sqlite import _INCIDENT_COLUMNS

from .builders import T0, incident, playbook
from .pg_plans import explain, page_sql

pytestmark = pytest.mark.backends("postgresql", reason="PostgreSQL's query plans and prepared statements")


@pytest.fixture
async def many(store, store_url):
    """12,000 incidents over 4 teams whose names share most of their trigrams, and one rare name in team1."""
    pb = await store.create_playbook(playbook())
    for n in range(400):
        inc, events = incident(pb, name=f"Queue incident {n}", public=n % 2 == 0, now=T0 + n)
        await store.create_incident(inc, events)
    rare, events = incident(pb, name="Disk full on db-7", public=True, now=T0 + 1000)
    await store.create_incident(rare, events)
    # Copies of the first 400 rows (all but their id, channel, team and name): the planner sees a
    # team with many incidents, as in the benchmark, without writing each one through the store.
    copied = {"id": "id || '-' || g", "channel_id": "channel_id || '-' || g",
              "team_id": "'team' || (g % 4 + 1)", "name": "'Queue incident ' || g || '-' || seq"}
    columns = [c.strip() for c in _INCIDENT_COLUMNS.split(",")]
    conn = await asyncpg.connect(store_url)
    try:
        await conn.execute(
            f"INSERT INTO incidents ({', '.join(columns)}) SELECT {', '.join(copied.get(c, c) for c in columns)}"
            " FROM incidents, generate_series(1, 29) AS g WHERE name LIKE 'Queue incident %' AND id NOT LIKE '%-%'")
    finally:
        await conn.close()
    return rare


async def _plan(url: str, statement: tuple[str, list]) -> str:
    return await explain(url, *statement, prepare="VACUUM (ANALYZE) incidents")


async def test_a_rare_term_takes_its_candidates_from_the_trigram_index(many, store_url):
    query = IncidentQuery.of("team1", viewer_channel_ids=["c1"], search="DISK FULL")
    page = await _plan(store_url, page_sql(query))
    assert "incidents_name_trgm" in page, page
    count = await _plan(store_url, _count_statement(query))
    assert "incidents_name_trgm" in count, count


async def test_short_terms_and_the_private_count_test_each_rows_name(many, store_url):
    for term in ("d", "db", "7"):
        query = IncidentQuery.of("team1", viewer_channel_ids=["c1"], search=term)
        for statement in (page_sql(query), _count_statement(query)):
            plan = await _plan(store_url, statement)
            # No LIKE the trigram index could take the name's candidates for: a test of each row.
            assert "~~" not in plan and "strpos" in plan, (term, plan)
        count = await _plan(store_url, _count_statement(query))
        # The team's count reads the narrow index of (team, public, folded name) alone.
        assert "Index Only Scan using incidents_list_counts" in count, (term, count)
    # The viewer's own private incidents are found through their channels, for any term.
    private = IncidentQuery.of("team1", viewer_channel_ids=[many.channel_id, "c2"], search="disk full")
    p = _Params()
    plan = await _plan(store_url, (f"SELECT {_private_count(private, p, p('team1'))}", p.values))
    assert "incidents_name_trgm" not in plan and "~~" not in plan and "incidents_channel_id_key" in plan, plan


async def test_statements_with_a_trigram_term_are_planned_for_each_term(many, store_url):
    """A cached statement may switch to a generic plan after five runs; the search's never stay cached,
    and each term gets its own answer (a common one and a rare one, alternately, many times)."""
    store = PostgresStore(store_url, pool_size=1)
    await store.open()
    try:
        for _ in range(8):
            common = await store.list_incidents("team1", viewer_channel_ids=["c1"], search="queue incident")
            rare = await store.list_incidents("team1", viewer_channel_ids=["c1"], search="disk full")
            short = await store.list_incidents("team1", viewer_channel_ids=["c1"], search="db")
            # team1's public copies: 200 of the first rows, and 200 for each of the 7 copies into team1
            assert (common.total, rare.total, short.total) == (200 * 8, 1, 1)
            assert [i.name for i in rare.items] == ["Disk full on db-7"]
        async with store._require_pool().acquire() as conn:
            kept = [row[0] for row in await conn.fetch("SELECT statement FROM pg_prepared_statements")]
    finally:
        await store.close()
    assert not [sql for sql in kept if "LIKE" in sql], kept
    assert [sql for sql in kept if "strpos" in sql], kept  # a short term's statements are cached as before
