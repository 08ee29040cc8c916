"""Store fixtures: every test that uses ``store`` runs once per backend.

To add a backend, add its name to BACKENDS and a branch to ``make_url``; the
tests themselves must not change.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from storage import Store, create_store

BACKENDS = ["sqlite"]


def make_url(backend: str, tmp_path) -> str:
    """A database URL for an empty database of ``backend``."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    raise AssertionError(f"no test database for backend {backend!r}")


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path) -> str:
    """The URL of a fresh database, per backend."""
    return make_url(request.param, tmp_path)


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
