"""Numbered SQL migrations, one folder per backend (``sqlite/0001_initial.sql``, ``postgres/0001_initial.sql``, ...).

SQLite's files are split into statements; PostgreSQL's run whole, as one script (its driver takes
several statements at once, and PL/pgSQL bodies hold semicolons).
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

#: Backends whose migration files run as one script rather than statement by statement.
WHOLE_SCRIPTS = frozenset({"postgres"})

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One schema step: applying it brings the database to ``version``."""

    version: int
    name: str
    statements: tuple[str, ...]


def split_statements(script: str) -> list[str]:
    """Split an SQL script into complete statements (trigger bodies stay whole)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        if not buffer and (not line.strip() or line.lstrip().startswith("--")):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise ValueError(f"incomplete SQL statement at the end of a migration: {buffer.strip()[:60]!r}")
    return statements


def load(backend: str) -> list[Migration]:
    """The migrations of ``backend``, in order; versions must run 1, 2, 3, ... without gaps."""
    folder = Path(__file__).with_name(backend)
    migrations = []
    for path in sorted(folder.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise ValueError(f"migration file name {path.name!r} does not look like 0001_name.sql")
        script = path.read_text("utf-8")
        statements = (script.strip(),) if backend in WHOLE_SCRIPTS else tuple(split_statements(script))
        migrations.append(Migration(int(match.group(1)), match.group(2), statements))
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise ValueError(f"{backend} migrations skip from {expected - 1} to {migration.version}")
    return migrations
