"""Persistence behind one async interface; pick a backend with a database URL.

``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (SQLAlchemy's
convention: the path is everything after ``sqlite:///``) or ``sqlite:///:memory:``.
Options go in the query string: ``?synchronous=normal``; ``?writes=thread`` hands every write to the
writer's own thread instead of running small ones on the event loop's (``SqliteStore._writer_trip``:
for a disk whose fsync takes milliseconds, or many writers at once; it costs CPU per write).

``postgresql://user:password@host:5432/database`` (or ``postgres://``) is PostgreSQL (asyncpg;
``storage/postgres.py``); the URL goes to the driver as it is, so ``?sslmode=require`` and the like
work. Its pool holds up to ``pool_size`` connections (the setting ``CC_DATABASE_POOL_SIZE``).

``memory://`` is a private in-process store (no SQLite, for fast tests); ``memory://NAME``
is shared by the stores opened on NAME while one of them exists (see ``storage/memory.py``).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from .base import IncidentOperation, IncidentQuery, IncidentRef, IncidentSort, Page, RefPage, StorageError, Store
from .jobs import Job, JobState

__all__ = [
    "IncidentOperation",
    "IncidentQuery",
    "IncidentRef",
    "IncidentSort",
    "Job",
    "JobState",
    "Page",
    "RefPage",
    "StorageError",
    "Store",
    "UnsupportedDatabaseURL",
    "create_store",
    "open_store",
    "redacted_url",
]

SUPPORTED_SCHEMES = ("sqlite", "postgresql", "memory")
_POSTGRES_SCHEMES = ("postgresql", "postgres")


class UnsupportedDatabaseURL(StorageError, ValueError):
    """The database URL names a backend this build does not have, or is malformed."""


def create_store(url: str, *, pool_size: int | None = None) -> Store:
    """A not-yet-opened store for ``url``; ``pool_size``: most connections (backends with a pool)."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise UnsupportedDatabaseURL(
            f"{url!r} is not a database URL; use for example sqlite:///data/command-center.db"
        )
    scheme = scheme.lower()
    if scheme == "memory":
        return _memory_store(url)
    if scheme in _POSTGRES_SCHEMES:
        return _postgres_store(url, pool_size)
    if scheme != "sqlite":
        raise UnsupportedDatabaseURL(
            f"database URL scheme {scheme!r} is not supported (supported: {', '.join(SUPPORTED_SCHEMES)});"
            " use for example sqlite:///data/command-center.db"
        )
    return _sqlite_store(url)


def _memory_store(url: str) -> Store:
    parts = urlsplit(url)
    if parts.query:
        raise UnsupportedDatabaseURL("in-memory store URLs take no options: write memory:// or memory://NAME")
    from .memory import MemoryStore

    return MemoryStore(unquote(parts.netloc + parts.path))


def _sqlite_store(url: str) -> Store:
    parts = urlsplit(url)
    if parts.netloc:
        raise UnsupportedDatabaseURL(
            f"SQLite URLs have no host: write sqlite:///{parts.netloc}{parts.path} (three slashes)"
        )
    path = unquote(parts.path[1:]) if parts.path.startswith("/") else unquote(parts.path)
    if not path:
        raise UnsupportedDatabaseURL("the SQLite URL has no file path; use sqlite:///data/command-center.db")
    options = dict(parse_qsl(parts.query))
    unknown = set(options) - {"synchronous", "writes"}
    if unknown:
        raise UnsupportedDatabaseURL(f"unknown SQLite URL option(s): {', '.join(sorted(unknown))}")
    writes = options.get("writes", "inline")
    if writes not in ("inline", "thread"):
        raise UnsupportedDatabaseURL(f"writes must be inline or thread, not {writes!r} (SQLite URL option)")

    from .sqlite import (
        SqliteStore,  # imported here so other backends need not load aiosqlite
    )

    return SqliteStore(path, synchronous=options.get("synchronous", "full"), inline_writes=writes == "inline")


def _postgres_store(url: str, pool_size: int | None) -> Store:
    parts = urlsplit(url)
    if not parts.hostname and "host=" not in parts.query:
        raise UnsupportedDatabaseURL("the PostgreSQL URL names no server; use for example"
                                     " postgresql://command_center:PASSWORD@db.example.com:5432/command_center")
    from .postgres import DEFAULT_POOL_SIZE, PostgresStore  # imported here so other backends need not load asyncpg

    return PostgresStore(url, pool_size=DEFAULT_POOL_SIZE if pool_size is None else pool_size)


def redacted_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    user = parts.netloc.rsplit("@", 1)[0].split(":", 1)[0]
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))


async def open_store(url: str, *, pool_size: int | None = None) -> Store:
    """Create the store for ``url``, connect and apply pending migrations."""
    store = create_store(url, pool_size=pool_size)
    await store.open()
    return store
