"""Choosing and configuring a backend from the database URL."""

from __future__ import annotations

import pytest

from storage import UnsupportedDatabaseURL, create_store, open_store, redacted_url
from storage.postgres import PostgresStore
from storage.sqlite import SqliteStore

from .builders import incident


def test_sqlite_paths():
    assert create_store("sqlite:///data/cc.db").path == "data/cc.db"
    assert create_store("sqlite:////var/lib/cc.db").path == "/var/lib/cc.db"
    assert create_store("sqlite:///:memory:").path == ":memory:"
    assert isinstance(create_store("SQLITE:///x.db?synchronous=normal"), SqliteStore)
    assert create_store("sqlite:///x.db")._inline_writes is True
    assert create_store("sqlite:///x.db?writes=thread&synchronous=normal")._inline_writes is False
    assert create_store("sqlite:///x.db?writes=inline")._inline_writes is True


def test_postgres_urls_choose_the_postgres_store_with_its_pool_size():
    store = create_store("postgresql://cc:secret@db.example:5432/cc?sslmode=require", pool_size=3)
    assert isinstance(store, PostgresStore) and store.pool_size == 3
    assert store.url == "postgresql://cc:secret@db.example:5432/cc?sslmode=require"  # to asyncpg as it is
    assert isinstance(create_store("postgres://cc@db/cc"), PostgresStore)
    assert create_store("postgres://cc@db/cc").pool_size == 10


def test_passwords_are_redacted_from_urls_shown_to_people():
    assert redacted_url("postgresql://cc:s3cr:et@db.example:5432/cc?sslmode=require") == (
        "postgresql://cc:***@db.example:5432/cc?sslmode=require")
    assert redacted_url("postgresql://cc@db/cc") == "postgresql://cc@db/cc"
    assert redacted_url("sqlite:///data/cc.db") == "sqlite:///data/cc.db"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/db", "'mysql' is not supported"),
        ("postgresql:///db", "names no server"),
        ("data/cc.db", "not a database URL"),
        ("sqlite://host/cc.db", "three slashes"),
        ("sqlite:///", "no file path"),
        ("sqlite:///x.db?cache=big", "unknown SQLite URL option"),
        ("sqlite:///x.db?writes=async", "writes must be inline or thread"),
    ],
)
def test_bad_urls_are_explained(url, message):
    with pytest.raises(UnsupportedDatabaseURL, match=message):
        create_store(url)


async def test_open_store_creates_missing_directories(tmp_path):
    store = await open_store(f"sqlite:///{tmp_path}/nested/dir/cc.db")
    try:
        assert (tmp_path / "nested" / "dir" / "cc.db").exists()
        assert await store.schema_version() >= 2
    finally:
        await store.close()


async def test_in_memory_store_works_and_serialises_reads(tmp_path):
    store = await open_store("sqlite:///:memory:")
    try:
        inc, events = incident()
        async with store.transaction():
            await store.create_incident(inc, events)
        assert await store.get_incident(inc.id) == inc
        assert (await store.list_incidents(inc.team_id)).total == 1
    finally:
        await store.close()


async def test_calls_before_open_are_refused():
    from storage import StorageError

    with pytest.raises(StorageError, match="not open"):
        await create_store("sqlite:///:memory:").get_incident("x")
