"""Issue 20: the PostgreSQL backend's own machinery (migrations, the writer lock, SKIP LOCKED claims,
the pool, errors), plus the replica behaviours every backend must share (two stores on one database)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from domain import incidents
from domain.errors import Conflict
from storage import StorageError, create_store, migrations
from storage.postgres import PostgresStore
from tests import pg

from .builders import T0, incident

LATEST = len(migrations.load("postgres"))
ONLY_POSTGRES = pytest.mark.backends("postgresql", reason="about the PostgreSQL backend's own machinery")


@pytest.fixture
def empty_database():
    """A database without the schema (from template0), dropped afterwards."""
    url = pg.fresh_database(migrated=False)
    yield url
    pg.drop_database(url)


async def test_an_empty_database_is_migrated_to_the_latest_version(empty_database):
    store = PostgresStore(empty_database, pool_size=2)
    await store.open()
    try:
        assert await store.schema_version() == LATEST
        inc, events = incident()
        await store.create_incident(inc, events)
        assert await store.get_incident(inc.id) == inc
    finally:
        await store.close()
    again = PostgresStore(empty_database)  # reopening applies nothing and loses nothing
    await again.open()
    try:
        assert await again.schema_version() == LATEST
        assert await again.get_incident(inc.id) == inc
    finally:
        await again.close()


async def test_replicas_starting_together_migrate_once(empty_database):
    stores = [PostgresStore(empty_database, pool_size=1) for _ in range(4)]
    await asyncio.gather(*(store.open() for store in stores))
    try:
        conn = await asyncpg.connect(empty_database)
        try:
            versions = [row[0] for row in await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")]
        finally:
            await conn.close()
        assert versions == list(range(1, LATEST + 1))
    finally:
        await asyncio.gather(*(store.close() for store in stores))


async def test_a_database_newer_than_this_build_is_refused(empty_database):
    store = PostgresStore(empty_database)
    await store.open()
    await store.close()
    conn = await asyncpg.connect(empty_database)
    try:
        await conn.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'future', 0)",
                           LATEST + 1)
    finally:
        await conn.close()
    with pytest.raises(StorageError, match="newer than this version"):
        await PostgresStore(empty_database).open()


async def test_an_unreachable_server_is_a_storage_error():
    port = pg.free_port()  # nothing listens there
    store = create_store(f"postgresql://cc@127.0.0.1:{port}/cc")
    with pytest.raises(StorageError, match="PostgreSQL"):
        await store.open()
    with pytest.raises(StorageError, match="not open"):
        await store.get_setting("x")


@ONLY_POSTGRES
async def test_the_pool_never_holds_more_connections_than_its_size(store_url):
    store = PostgresStore(store_url, pool_size=2)
    await store.open()
    try:
        await asyncio.gather(*(store.get_setting(f"k{n}") for n in range(30)))
        conn = await asyncpg.connect(store_url)
        try:
            held = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                       " AND application_name = 'command-center'")
        finally:
            await conn.close()
        assert 1 <= held <= 2
    finally:
        await store.close()


async def test_explicit_transactions_of_two_stores_run_one_at_a_time(store, store_factory):
    """Read-then-write blocks (a free title, a name claim) stay serialisable across replicas."""
    second = store_factory()
    await second.open()
    try:
        async def increment(which) -> None:
            async with which.transaction():
                value = int(await which.get_setting("counter") or 0)
                await which.get_setting("something else")  # a round trip between the read and the write
                await which.set_setting("counter", str(value + 1))

        await asyncio.wait_for(asyncio.gather(*(increment(store if n % 2 else second) for n in range(30))), 60)
        assert await store.get_setting("counter") == "30"
    finally:
        await second.close()


async def test_a_conflict_inside_a_transaction_leaves_it_usable(store):
    """As on SQLite, a refused insert does not abort the transaction it is part of."""
    first, events = incident(channel_id="chan-1")
    same_channel, _ = incident(channel_id="chan-1")
    async with store.transaction():
        await store.create_incident(first, events)
        with pytest.raises(Conflict):
            await store.create_incident(same_channel)
        await store.set_setting("after", "conflict")
    assert await store.get_incident(first.id) == first
    assert await store.get_setting("after") == "conflict"


async def test_two_replicas_claiming_at_once_never_share_a_job(store, store_factory):
    for n in range(60):
        await store.schedule_job("reminder", f"k{n}", due_at=T0, now=T0)
    second = store_factory()
    await second.open()
    try:
        async def drain(which, owner: str) -> list[str]:
            claimed: list[str] = []
            while True:
                jobs = await which.claim_due_jobs(T0 + 1, owner, lease_ms=60_000, limit=4)
                if not jobs:
                    return claimed
                claimed += [job.id for job in jobs]

        first_ids, second_ids = await asyncio.wait_for(asyncio.gather(drain(store, "a"), drain(second, "b")), 60)
    finally:
        await second.close()
    assert not set(first_ids) & set(second_ids)
    assert len(first_ids) + len(second_ids) == 60


@ONLY_POSTGRES
async def test_a_claim_skips_a_job_another_replica_has_locked(store, store_url):
    locked = await store.schedule_job("reminder", "locked", due_at=T0, now=T0)
    free = await store.schedule_job("reminder", "free", due_at=T0 + 1, now=T0)
    other = await asyncpg.connect(store_url)
    try:
        async with other.transaction():  # another replica in the middle of claiming the first job
            await other.execute("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE", locked.id)
            jobs = await asyncio.wait_for(store.claim_due_jobs(T0 + 10, "b", lease_ms=1000, limit=10), 10)
            assert [job.id for job in jobs] == [free.id]  # not waited for, not claimed twice
    finally:
        await other.close()
    again = await store.claim_due_jobs(T0 + 10, "b", lease_ms=1000, limit=10)
    assert [job.id for job in again] == [locked.id]


@ONLY_POSTGRES
async def test_names_sort_and_match_like_sqlite(store):
    """ASCII letters fold, nothing else does; ties keep insertion order; LIKE wildcards are literal."""
    names = ["beta", "Alpha", "alpha", "Émile", "_x%", "zeta", "ALPHA"]
    for n, name in enumerate(names):
        inc, events = incident(name=name, channel_id=f"c{n}", public=True)
        await store.create_incident(inc, events)
    page = await store.list_incidents("team1", is_admin=True, sort="name asc", per_page=50)
    assert [i.name for i in page.items] == ["_x%", "Alpha", "alpha", "ALPHA", "beta", "zeta", "Émile"]
    assert (await store.list_incidents("team1", is_admin=True, search="ALP")).total == 3
    assert (await store.list_incidents("team1", is_admin=True, search="émile")).total == 0  # not ASCII: exact
    assert (await store.list_incidents("team1", is_admin=True, search="_x%")).total == 1
    assert (await store.list_incidents("team1", is_admin=True, search="%")).total == 1


def _flip_status(current):
    """End an ongoing incident, restart an ended one: a change the list counts (its generation moves)."""
    if current.is_ongoing:
        return incidents.end_incident(current, "u", T0 + 1)
    return incidents.restart_incident(current, "u", T0 + 2)


async def test_a_transaction_changing_two_incidents_never_deadlocks_with_single_changes(store, store_factory):
    """Both lock their incidents, and both move the team's list counter: on PostgreSQL the counter is
    taken at the commit only, so the two orders cannot wait on each other."""
    first, first_events = incident()
    other, other_events = incident()
    await store.create_incident(first, first_events)
    await store.create_incident(other, other_events)
    second = store_factory()
    await second.open()
    try:
        async def both() -> None:
            async with store.transaction():
                await store.mutate_incident(first.id, _flip_status)
                await store.get_setting("between")  # a round trip while holding the first row
                await store.mutate_incident(other.id, _flip_status)

        for _ in range(10):
            await asyncio.wait_for(asyncio.gather(both(), second.mutate_incident(other.id, _flip_status),
                                                  second.mutate_incident(first.id, _flip_status)), 30)
    finally:
        await second.close()
    assert (await store.get_incident(first.id)).version == first.version + 20
    assert (await store.get_incident(other.id)).version == other.version + 20
    assert (await store.list_incidents("team1", is_admin=True)).total == 2
