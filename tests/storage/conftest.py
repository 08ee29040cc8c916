"""Store fixtures: every test that uses ``store`` runs once per backend.

To add a backend, add its name and a URL maker to BACKENDS; the tests themselves must not
change. The PostgreSQL databases are made on one server per run (``tests/pg.py``: a throw-away
one, or ``CC_TEST_POSTGRES_URL``), each a fresh copy of a migrated template, dropped after the test.
A test that is about one backend's own machinery says so with
``@pytest.mark.backends("sqlite", reason="...")`` and runs on those only.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from storage import Store, create_store
from tests import pg

#: Each backend and the URL of a fresh, empty database of it (one line per backend).
BACKENDS: dict[str, Callable[[Path], str]] = {
    "sqlite": lambda tmp_path: f"sqlite:///{tmp_path / 'store.db'}",
    "memory": lambda tmp_path: f"memory://{uuid.uuid4().hex}",  # named: store_factory reopens the same one
    "postgresql": lambda tmp_path: pg.fresh_database(),
}
#: Backends whose databases outlive the test unless dropped.
DROPPED = {"postgresql": pg.drop_database}


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "backends(*names, reason): the store tests run on these backends only, and why"
    )


def pytest_generate_tests(metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("backends")
    names = list(BACKENDS)
    if marker is not None:
        assert marker.kwargs.get("reason"), f"{metafunc.definition.nodeid}: say why it is limited to {marker.args}"
        unknown = set(marker.args) - set(BACKENDS)
        assert not unknown, f"{metafunc.definition.nodeid}: no backend {sorted(unknown)}"
        names = [name for name in names if name in marker.args]
    metafunc.parametrize("backend", names, indirect=True)


@pytest.fixture
def backend(request) -> str:
    """The backend under test (parametrised by ``pytest_generate_tests``)."""
    return request.param


@pytest.fixture
def store_url(backend, tmp_path) -> Iterator[str]:
    """The URL of a fresh database, per backend."""
    url = BACKENDS[backend](tmp_path)
    yield url
    if backend in DROPPED:
        DROPPED[backend](url)


@pytest.fixture
def store_factory(store_url) -> Callable[[], Store]:
    """Makes (unopened) stores on the same database, e.g. to reopen it or to act as a second process."""
    return lambda: create_store(store_url)


@pytest.fixture
async def store(store_factory) -> AsyncIterator[Store]:
    """An open, migrated store on a fresh database."""
    opened = store_factory()
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture(autouse=True)
def no_pause_for_slow_writes(monkeypatch) -> None:
    """A loaded test machine may take more than SQLite's inline-write budget (5 ms) for one write, and
    the store would then hand its writes to the writer's thread for a minute: both paths are correct,
    but tests that count hand-offs need to know which one runs. tests/storage/test_inline_writes.py
    lowers the budget itself to test the pause."""
    from storage import sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "INLINE_WRITE_BUDGET_S", 60.0)


@pytest.fixture
def hops(store):
    """Counts the writer's trips: each a call on the writer's connection, run on the event loop's thread
    or handed to the writer's own (``SqliteStore._writer_trip``). For SQLite stores only."""
    counted = []
    original = store._writer_trip

    async def counting(work, **options):
        counted.append(work)
        return await original(work, **options)

    store._writer_trip = counting
    yield counted
    del store._writer_trip
