"""PostgreSQL's query plans for the store's statements (the plan tests of the store suite)."""

from __future__ import annotations

import asyncpg

from storage.base import IncidentQuery
from storage.postgres import _list_condition, _Params


async def explain(url: str, sql: str, args: list | tuple = (), *, prepare: str = "ANALYZE") -> str:
    """``EXPLAIN`` of ``sql`` with sequential scans switched off, so the plan says which index can serve
    it (tables this small would otherwise be read whole). ``prepare`` runs first: the statistics (and,
    with ``VACUUM (ANALYZE)``, the visibility map autovacuum would have set)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(prepare)
        await conn.execute("SET enable_seqscan = off")
        rows = await conn.fetch(f"EXPLAIN {sql}", *args)
        return "\n".join(row[0] for row in rows)
    finally:
        await conn.close()


def page_sql(query: IncidentQuery) -> tuple[str, list]:
    """The list page's walk for ``query``, as the store builds its condition."""
    p = _Params()
    condition = _list_condition(query, p)
    return (f"SELECT seq FROM incidents WHERE {condition} ORDER BY created_at DESC, seq DESC"
            f" LIMIT {p(query.per_page)} OFFSET {p(query.offset)}", p.values)
