"""The PostgreSQL backend (asyncpg): a connection pool, row locks, the same semantics as SQLite.

Chosen by a ``postgresql://`` (or ``postgres://``) database URL; the URL goes to asyncpg as it is
(host, port, user, password, database, ``?sslmode=`` and the like). The pool holds up to
``pool_size`` connections (``CC_DATABASE_POOL_SIZE``).

How SQLite's semantics are kept (storage/README.md lists what a new method must do):

- **Transactions.** ``transaction()`` takes a connection from the pool, ``BEGIN``s and takes one
  transaction-scoped advisory lock (``WRITER_LOCK``), so explicit transactions run one at a time
  across every process on the database, exactly like SQLite's ``BEGIN IMMEDIATE`` single writer:
  the check-then-write blocks in the services (a free playbook title, a name claim) stay
  serialisable. Calls inside it (same task) join it and read its uncommitted writes; a task started
  inside it does not join it. Every other call is one statement, or a few in a short transaction of
  its own, that is correct on its own under READ COMMITTED (an upsert, a versioned update, a row
  lock): those run concurrently, without the writer lock.
- **Optimistic versions.** ``update_incident`` / ``update_playbook`` update ``WHERE version = $n``
  and say Conflict or NotFound when no row matched. ``mutate_incident`` loads the row ``FOR
  UPDATE`` inside its transaction, so it never conflicts and is never retried.
- **Jobs.** Claims choose their rows with ``FOR UPDATE SKIP LOCKED``: replicas claiming at once
  take different jobs and never wait on each other; each claim gets a fresh random token (the
  fencing token every later step names). Scheduling a (kind, key) takes an advisory lock on that
  key, so "one pending job per key" holds without a unique-violation race.
- **List counts.** The list generation of SQLite's migration 0009 is a PL/pgSQL trigger here; the
  generation and the counts are read in one statement (one snapshot), which makes the shared count
  only when the generation a remembered one was made at has moved.
- **Name search.** ASCII-folded substring, as SQLite's LIKE; terms of 3+ characters may be served by
  a trigram index and are planned for their own term (see ``_search_term``).
- **Errors.** A unique or foreign-key violation becomes Conflict / NotFound where SQLite's does;
  any other database or connection failure is a :class:`StorageError`.

The row <-> model helpers are SQLite's (storage/sqlite.py): both schemas have the same columns and
types, so a new column is one migration per dialect plus the shared column list. PostgreSQL's
incidents add one the server generates and no statement writes (``name_folded``, migration 0009:
what the name search and order compare).
"""

from __future__ import annotations

import asyncio
import json
import string
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar

import asyncpg

from domain.alerts import AlertGroup, AlertIn, AlertRecord, AlertStatus, GroupPosted, GroupTouch
from domain.errors import Conflict, NotFound
from domain.metrics import MetricsRow, MetricsSummary, advance, start_summary, summarize
from domain.models import CredentialKind, Incident, Playbook, TimelineEvent, WebCredential

from . import migrations
from .base import (
    CREDENTIAL_COLUMNS,
    SEVERITY_ID,
    IncidentOperation,
    IncidentQuery,
    IncidentRef,
    IncidentSort,
    Page,
    RefPage,
    StorageError,
    Store,
    credential_from_row,
    like_pattern,
)
from .jobs import LIVE, Job, JobState, check_selector, finished_states, payload_json, short_error
from .leases import Lease, check_lease_args
from .sqlite import (
    _ALERT_COLUMNS,
    _GROUP_COLUMNS,
    _INCIDENT_COLUMNS,
    _JOB_COLUMNS,
    _METRICS_COLUMNS,
    _alert_from_row,
    _event_from_row,
    _event_params,
    _fields_json,
    _group_from_row,
    _ids_json,
    _incident_from_row,
    _job_from_row,
    _mutable_incident_columns,
    _playbook_from_row,
    _retro_json,
    _stages_json,
    _summary_values,
    _updates_json,
    _values_json,
    _webhooks_json,
)

#: Advisory lock keys (first argument of the two-key form; "cc" in ASCII, then what it guards).
_LOCK_SPACE = 0x6363
WRITER_LOCK = 1
MIGRATION_LOCK = 2
JOB_KEY_LOCK = 3

DEFAULT_POOL_SIZE = 10

_INCIDENT_COLUMN_COUNT = len(_INCIDENT_COLUMNS.split(","))
_LIVE_STATES = sorted(state.value for state in LIVE)

_PLAYBOOK_SELECT = (
    "SELECT p.id, p.team_id, p.title, p.description, p.create_public_channel, p.stages,"
    " p.created_by, p.created_at, p.updated_at, p.version, p.default_commander_id, p.updates,"
    " p.invited_user_ids, p.auto_follower_ids, p.webhooks, p.fields, p.retro,"
    " coalesce((SELECT json_agg(m.user_id ORDER BY m.position) FROM playbook_members m"
    "           WHERE m.playbook_id = p.id)::text, '[]') AS member_ids"
    " FROM playbooks p"
)

# seq is SQLite's rowid: it breaks ties, in insertion order.
_SORTS = {
    IncidentSort.CREATED_DESC: "created_at DESC, seq DESC",
    IncidentSort.CREATED_ASC: "created_at ASC, seq ASC",
    # name_folded is cc_fold(name), kept by the server (migration 0009): SQLite's NOCASE order.
    IncidentSort.NAME_ASC: "name_folded ASC, seq ASC",
    IncidentSort.NAME_DESC: "name_folded DESC, seq DESC",
}

_INSERT_EVENT = ("INSERT INTO timeline_events (id, incident_id, at, kind, actor_id, details, subject_id)"
                 " VALUES ($1, $2, $3, $4, $5, $6, $7)")

_EVENT_COLUMNS = "id, incident_id, at, kind, actor_id, details"

# -- metrics summaries (migration 0004; SQLite's 0011 and its _advance_summaries) ----------------------
_UPSERT_METRICS = (
    f"INSERT INTO incident_metrics ({_METRICS_COLUMNS}, summary) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    " ON CONFLICT (incident_id) DO UPDATE SET playbook_id = excluded.playbook_id, public = excluded.public,"
    " severity = excluded.severity, resolve_ms = excluded.resolve_ms, summary = excluded.summary"
)

#: List counts remembered (as in the SQLite store).
COUNT_CACHE_SIZE = 512

#: Search terms this long (characters) or longer may be served by the trigram index (pg_trgm
#: makes trigrams of three characters; a shorter term has none).
TRIGRAM_MIN = 3

#: SQLite's LIKE folds these letters only (as cc_fold, and so name_folded, does).
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)

_T = TypeVar("_T")

#: What the store runs statements on: the transaction's connection, or the pool (one statement each).
_Runner: TypeAlias = asyncpg.Connection | asyncpg.pool.Pool


@dataclass
class _Tx:
    """The explicit transaction a task is running (see ``PostgresStore.transaction``)."""

    conn: asyncpg.Connection
    task: asyncio.Task | None
    active: bool = True
    #: What ``after_commit`` was given inside it: called once it has committed.
    committed: list[Callable[[], None]] = field(default_factory=list)


class _Params:
    """Numbered parameters (``$1``, ``$2``, ...) collected while a statement is built."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def _rowcount(status: str) -> int:
    """The row count of a command tag such as ``UPDATE 3`` or ``INSERT 0 1``."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _filter_terms(query: IncidentQuery, p: _Params, *, trigram: bool = True) -> list[str]:
    """The WHERE terms of the filters (not the team, not the visibility test); with ``trigram``
    False the name filter is one no index serves (see ``_search_term``)."""
    terms: list[str] = []
    if query.status is not None:
        terms.append(f"status = {p(query.status.value)}")
    if query.commander_id is not None:
        terms.append(f"commander_id = {p(query.commander_id)}")
    if query.playbook_id is not None:
        terms.append(f"playbook_id = {p(query.playbook_id)}")
    if query.search:
        terms.append(_search_term(query.search, p, trigram=trigram))
    if query.overdue_at is not None:
        # The terms of the partial index incidents_update_due.
        terms.append(f"status = 'ongoing' AND next_update_due_at IS NOT NULL AND next_update_due_at <= {p(query.overdue_at)}")
    for field_id, value in query.field_values:
        if field_id == SEVERITY_ID:
            # Exactly the key expression of the index incidents_list_severity (migration 0006).
            terms.append(f"(field_values::jsonb ->> 'severity') = {p(value)}")
        else:
            # The partial index incidents_list_fields holds the values (its term repeated so the
            # planner may use it); the field id is a parameter.
            terms.append(f"field_values <> '{{}}' AND (field_values::jsonb ->> {p(field_id)}::text) = {p(value)}::text")
    return terms


def _search_term(search: str, p: _Params, *, trigram: bool = True) -> str:
    """The name filter: a substring of the name ignoring ASCII case, as SQLite's LIKE.

    Both sides are folded the same way (name_folded, cc_fold(name) kept by the server: ASCII
    letters only; the term here), so what is compared is exact bytes. A term of ``TRIGRAM_MIN``
    characters or more is a LIKE pattern on name_folded, which the trigram index
    incidents_name_trgm (migration 0009) holds, so the planner may take the few candidate rows from
    it; the statements holding it run with a plan made for the term (see ``_needs_custom_plan``).
    A shorter term holds no trigram and is matched with strpos, which no index serves: the page
    walks a list index in its order and stops after a page of matches, and the count reads the
    team's part of incidents_list_counts, as the list without a search does.
    """
    folded = search.translate(_ASCII_LOWER)
    if "\x00" in folded:
        # PostgreSQL's text holds no NUL character, so no name holds one (as on SQLite, where names
        # are checked for control characters): nothing matches, and the server is not sent one.
        return "FALSE"
    if not trigram or not _needs_custom_plan(search):
        return f"strpos(name_folded, {p(folded)}) > 0"
    # Backslash is LIKE's default escape character, the one like_pattern writes and pg_trgm reads.
    return f"name_folded LIKE {p(like_pattern(folded))}"


def _needs_custom_plan(search: str | None) -> bool:
    """Whether the list's statements with this search must be planned for its term, not generically:
    those where it is a LIKE the trigram index may serve (see ``_search_term``).

    Which plan is right for a LIKE on the trigram index depends on the term: a rare one is best
    served by the index, a common one ("incident") by the list index's walk, and one whose words
    are too short for a trigram would scan the whole trigram index. A cached statement turns to a
    generic plan after five runs, planned for no term in particular; these run unnamed instead.
    """
    return search is not None and len(search) >= TRIGRAM_MIN and "\x00" not in search


async def _list_fetch(conn: asyncpg.Connection, sql: str, params: Sequence[Any], *,
                      custom: bool) -> list[asyncpg.Record]:
    """Run one of the list's statements: cached (prepared once per connection), or with ``custom``
    as the unnamed statement, which the server plans again for every run, for its values."""
    if not custom:
        return await conn.fetch(sql, *params)
    statement = await conn.prepare(sql, name="")
    return await statement.fetch(*params)


def _list_condition(query: IncidentQuery, p: _Params) -> str:
    """The WHERE clause shared by the list and its light references."""
    where = [f"team_id = {p(query.team_id)}"]
    if not query.is_admin:
        where.append(f"(public = 1 OR channel_id = ANY({p(sorted(query.viewer_channel_ids))}::text[]))")
    return " AND ".join(where + _filter_terms(query, p))


def _count_key(query: IncidentQuery) -> tuple:
    """What the shared part of a list's count depends on (see sqlite ``_Count``)."""
    return (query.team_id, query.is_admin, query.status, query.commander_id, query.playbook_id, query.search,
            query.field_values)


def _count_statement(query: IncidentQuery, known_generation: int | None = None) -> tuple[str, list[Any]]:
    """One statement, one snapshot: the team's list generation, the shared count and the viewer's
    own private matches (counted through the unique channel index).

    With ``known_generation`` (that of a shared count remembered) the shared count is made only
    when the generation has moved since, and is NULL otherwise: the subquery is evaluated only
    when its CASE branch is taken, so a remembered count costs nothing and a stale one is made
    again in the same statement (one round trip either way)."""
    p = _Params()
    team = p(query.team_id)
    shared = [f"team_id = {team}", *([] if query.is_admin else ["public = 1"]), *_filter_terms(query, p)]
    shared_count = f"(SELECT count(*) FROM incidents WHERE {' AND '.join(shared)})"
    if known_generation is not None:
        shared_count = f"CASE WHEN g.n = {p(known_generation)}::bigint THEN NULL ELSE {shared_count} END"
    return f"SELECT g.n, {shared_count}, {_private_count(query, p, team)} FROM ({_generation(team)}) AS g", p.values


def _generation(team: str) -> str:
    return f"SELECT coalesce((SELECT n FROM list_generations WHERE team_id = {team}), 0) AS n"


def _private_count(query: IncidentQuery, p: _Params, team: str) -> str:
    """The count of the viewer's own private matches: only the rows of their channels, found through
    the unique channel index; the name is tested on those alone, with no term the trigram index
    could be chosen for instead."""
    if query.is_admin or not query.viewer_channel_ids:
        return "0::bigint"
    private = [f"channel_id = ANY({p(sorted(query.viewer_channel_ids))}::text[])", f"team_id = {team}",
               "public = 0", *_filter_terms(query, p, trigram=False)]
    return f"(SELECT count(*) FROM incidents WHERE {' AND '.join(private)})"


def _update_statement(incident: Incident, expected: int, previous: Incident | None) -> tuple[str, list[Any]]:
    """The versioned UPDATE saving ``incident`` over stored version ``expected`` (only changed columns)."""
    values = _mutable_incident_columns(incident)
    if previous is not None and previous.id == incident.id:
        before = _mutable_incident_columns(previous)
        values = {column: value for column, value in values.items() if before[column] != value}
    p = _Params()
    assignments = "".join(f"{column} = {p(value)}, " for column, value in values.items())
    sql = (f"UPDATE incidents SET {assignments}version = {p(expected + 1)}"
           f" WHERE id = {p(incident.id)} AND version = {p(expected)}")
    return sql, p.values


def _incident_values(incident: Incident) -> tuple:
    return (
        incident.id, incident.team_id, incident.channel_id, incident.name, incident.description,
        incident.commander_id, incident.creator_id, incident.playbook_id, incident.playbook_title,
        incident.active_stage, incident.status.value, incident.created_at, incident.ended_at,
        incident.source_post_id, incident.card_post_id, int(incident.public), incident.version,
        _stages_json(incident.stages), incident.stage_set_at, incident.restarted_at, incident.last_update_at,
        incident.last_update_by, incident.last_update_post_id, incident.next_update_due_at,
        incident.update_requested_at, _updates_json(incident.updates), _ids_json(incident.follower_ids),
        _webhooks_json(incident.webhooks), _fields_json(incident.fields), _values_json(incident.field_values),
        _retro_json(incident.retro), None if incident.retro_status is None else incident.retro_status.value,
        incident.retro_text, incident.retro_published_at, incident.retro_by,
    )


_INSERT_INCIDENT = (
    f"INSERT INTO incidents ({_INCIDENT_COLUMNS}) VALUES"
    f" ({', '.join(f'${n}' for n in range(1, _INCIDENT_COLUMN_COUNT + 1))}) ON CONFLICT DO NOTHING"
)


def _storage_error(exc: BaseException) -> StorageError:
    return StorageError(f"PostgreSQL: {type(exc).__name__}: {exc}")


#: Failures of the database or of the connection to it (become StorageError).
_DATABASE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


class PostgresStore(Store):
    """:class:`Store` on one PostgreSQL database."""

    def __init__(self, url: str, *, pool_size: int = DEFAULT_POOL_SIZE, connect_timeout_s: float = 10.0) -> None:
        if pool_size < 1:
            raise StorageError(f"the PostgreSQL pool needs at least one connection, not {pool_size}")
        self.url = url
        self.pool_size = pool_size
        self._connect_timeout_s = connect_timeout_s
        self._pool: asyncpg.pool.Pool | None = None
        self._tx_var: ContextVar[_Tx | None] = ContextVar(f"postgres_tx_{id(self)}", default=None)
        #: Explicit transactions of this process queue here before taking a connection and the
        #: writer lock, so those waiting for the lock never hold more than one pooled connection.
        self._tx_lock = asyncio.Lock()
        self._counts: dict[tuple, tuple[int, int]] = {}

    # -- lifecycle -----------------------------------------------------------------------
    async def open(self, *, schema_version: int | None = None) -> None:
        """Connect the pool and migrate to the latest schema (or ``schema_version``, for tests)."""
        if self._pool is not None:
            return
        self._counts.clear()
        try:
            self._pool = await asyncpg.create_pool(
                self.url, min_size=1, max_size=self.pool_size, timeout=self._connect_timeout_s,
                # Plain TEXT columns only; the server must not rewrite what it answers.
                server_settings={"application_name": "command-center"})
        except _DATABASE_ERRORS as exc:
            raise _storage_error(exc) from exc
        try:
            await self._migrate(schema_version)
            if schema_version is None:
                await self.backfill_metrics()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), timeout=10)
            except (TimeoutError, *_DATABASE_ERRORS):
                pool.terminate()

    def _require_pool(self) -> asyncpg.pool.Pool:
        if self._pool is None:
            raise StorageError("the store is not open; call await store.open() first")
        return self._pool

    async def _migrate(self, target: int | None) -> None:
        pending = migrations.load("postgres")
        latest = len(pending)
        target = latest if target is None else target
        async with self._require_pool().acquire() as conn, conn.transaction():
            # One migrator at a time: replicas starting together wait here, then find nothing to do.
            await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", _LOCK_SPACE, MIGRATION_LOCK)
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                               " version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)")
            current = int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))
            if current > latest:
                raise StorageError(
                    f"the database has schema version {current}, newer than this version of Command Center"
                    f" knows ({latest}); upgrade Command Center")
            for migration in pending[current:target]:
                for statement in migration.statements:
                    await conn.execute(statement)
                await conn.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                                   migration.version, migration.name, int(time.time() * 1000))

    async def schema_version(self) -> int:
        return int(await self._fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))

    # -- transactions and connections ------------------------------------------------------------
    def _current_tx(self) -> _Tx | None:
        tx = self._tx_var.get()
        # A task started inside a transaction inherits the context; it must not use it.
        if tx is not None and tx.active and tx.task is asyncio.current_task():
            return tx
        return None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """BEGIN on a pooled connection plus the writer lock; nested calls join the outer transaction."""
        if self._current_tx() is not None:
            yield
            return
        pool = self._require_pool()
        async with self._tx_lock:
            async with self._transaction_on(pool):
                yield

    @asynccontextmanager
    async def _transaction_on(self, pool: asyncpg.pool.Pool) -> AsyncIterator[None]:
        try:
            conn = await pool.acquire()
        except _DATABASE_ERRORS as exc:
            raise _storage_error(exc) from exc
        try:
            transaction = conn.transaction()
            try:
                await transaction.start()
                await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", _LOCK_SPACE, WRITER_LOCK)
            except _DATABASE_ERRORS as exc:
                if conn.is_in_transaction():
                    await transaction.rollback()
                raise _storage_error(exc) from exc
            tx = _Tx(conn, asyncio.current_task())
            token = self._tx_var.set(tx)
            try:
                yield
            except BaseException:
                tx.active = False
                try:
                    await transaction.rollback()
                except _DATABASE_ERRORS:
                    conn.terminate()  # the connection is unusable; the server rolls back without it
                raise
            else:
                tx.active = False
                try:
                    await transaction.commit()
                except _DATABASE_ERRORS as exc:
                    raise _storage_error(exc) from exc
                for callback in tx.committed:
                    callback()
            finally:
                tx.active = False
                self._tx_var.reset(token)
        finally:
            await pool.release(conn)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """After the running transaction's COMMIT (at once outside one): writers here run side by side,
        so another connection (the scheduler's claim) does not see a write before then."""
        tx = self._current_tx()
        if tx is None:
            callback()
        else:
            tx.committed.append(callback)

    def _runner(self) -> _Runner:
        """The running transaction's connection, or the pool (each call its own statement)."""
        tx = self._current_tx()
        return tx.conn if tx is not None else self._require_pool()

    async def _write(self, work: Callable[[asyncpg.Connection], Awaitable[_T]]) -> _T:
        """Several statements as one short transaction (joined to the caller's, if there is one)."""
        tx = self._current_tx()
        try:
            if tx is not None:
                return await work(tx.conn)
            async with self._require_pool().acquire() as conn, conn.transaction():
                return await work(conn)
        except _DATABASE_ERRORS as exc:
            raise _storage_error(exc) from exc

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection to read on: the transaction's (its own writes), or one from the pool."""
        tx = self._current_tx()
        if tx is not None:
            yield tx.conn
            return
        try:
            async with self._require_pool().acquire() as conn:
                yield conn
        except _DATABASE_ERRORS as exc:
            raise _storage_error(exc) from exc

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        try:
            return await self._runner().fetch(sql, *args)
        except _DATABASE_ERRORS as exc:
            raise _storage_error(exc) from exc

    async def _fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        try:
            return await self._runner().fetchrow(sql, *args)
        except _DATABASE_ERRORS as exc:
            raise _storage_error(exc) from exc

    async def _fetchval(self, sql: str, *args: Any) -> Any:
        try:
            return await self._runner().fetchval(sql, *args)
        except _DATABASE_ERRORS as exc:
            raise _storage_error(exc) from exc

    async def _execute(self, sql: str, *args: Any) -> int:
        """One statement; its row count."""
        try:
            return _rowcount(await self._runner().execute(sql, *args))
        except _DATABASE_ERRORS as exc:
            raise _storage_error(exc) from exc

    # -- playbooks ---------------------------------------------------------------------------
    @staticmethod
    async def _write_members(conn: asyncpg.Connection, playbook: Playbook) -> None:
        await conn.execute("DELETE FROM playbook_members WHERE playbook_id = $1", playbook.id)
        members = [(playbook.id, user_id, pos) for pos, user_id in enumerate(dict.fromkeys(playbook.member_ids))]
        if members:
            await conn.executemany(
                "INSERT INTO playbook_members (playbook_id, user_id, position) VALUES ($1, $2, $3)", members)

    async def create_playbook(self, playbook: Playbook) -> Playbook:
        async def work(conn: asyncpg.Connection) -> None:
            # ON CONFLICT DO NOTHING, not a unique violation: an error would abort the caller's
            # transaction, where SQLite's leaves it usable (the same goes for every insert below).
            status = await conn.execute(
                "INSERT INTO playbooks (id, team_id, title, description, create_public_channel,"
                " created_by, created_at, updated_at, version, stages, default_commander_id, updates,"
                " invited_user_ids, auto_follower_ids, webhooks, fields, retro)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
                " ON CONFLICT DO NOTHING",
                playbook.id, playbook.team_id, playbook.title, playbook.description,
                int(playbook.create_public_channel), playbook.created_by, playbook.created_at,
                playbook.updated_at, playbook.version, _stages_json(playbook.stages),
                playbook.default_commander_id, _updates_json(playbook.updates),
                _ids_json(playbook.invited_user_ids), _ids_json(playbook.auto_follower_ids),
                _webhooks_json(playbook.webhooks), _fields_json(playbook.fields), _retro_json(playbook.retro))
            if _rowcount(status) != 1:
                raise Conflict("A playbook with this id already exists.")
            await self._write_members(conn, playbook)

        await self._write(work)
        return playbook

    async def get_playbook(self, playbook_id: str) -> Playbook | None:
        row = await self._fetchrow(f"{_PLAYBOOK_SELECT} WHERE p.id = $1", playbook_id)
        return _playbook_from_row(row) if row else None

    @staticmethod
    async def _explain_missed_update(conn: asyncpg.Connection, table: str, row_id: str, noun: str) -> None:
        if await conn.fetchval(f"SELECT 1 FROM {table} WHERE id = $1", row_id) is not None:
            raise Conflict(f"Someone else changed this {noun} at the same time. Look at it again and retry.")
        raise NotFound(f"This {noun} no longer exists.")

    async def update_playbook(self, playbook: Playbook, *, expected_version: int | None = None) -> Playbook:
        expected = playbook.version if expected_version is None else expected_version

        async def work(conn: asyncpg.Connection) -> None:
            status = await conn.execute(
                "UPDATE playbooks SET title = $1, description = $2, create_public_channel = $3, stages = $4,"
                " default_commander_id = $5, updates = $6, invited_user_ids = $7, auto_follower_ids = $8,"
                " webhooks = $9, fields = $10, retro = $11, updated_at = $12, version = $13"
                " WHERE id = $14 AND version = $15",
                playbook.title, playbook.description, int(playbook.create_public_channel),
                _stages_json(playbook.stages), playbook.default_commander_id, _updates_json(playbook.updates),
                _ids_json(playbook.invited_user_ids), _ids_json(playbook.auto_follower_ids),
                _webhooks_json(playbook.webhooks), _fields_json(playbook.fields), _retro_json(playbook.retro),
                playbook.updated_at, expected + 1, playbook.id, expected)
            if _rowcount(status) != 1:
                await self._explain_missed_update(conn, "playbooks", playbook.id, "playbook")
            await self._write_members(conn, playbook)

        await self._write(work)
        return playbook.model_copy(update={"version": expected + 1})

    async def delete_playbook(self, playbook_id: str, *, expected_version: int | None = None) -> bool:
        if expected_version is None:
            return await self._execute("DELETE FROM playbooks WHERE id = $1", playbook_id) == 1

        async def work(conn: asyncpg.Connection) -> bool:
            status = await conn.execute("DELETE FROM playbooks WHERE id = $1 AND version = $2",
                                        playbook_id, expected_version)
            if _rowcount(status) == 1:
                return True
            if await conn.fetchval("SELECT 1 FROM playbooks WHERE id = $1", playbook_id) is not None:
                raise Conflict("Someone else changed this playbook at the same time. Look at it again and retry.")
            return False

        return await self._write(work)

    async def playbooks_for_user(self, team_id: str, user_id: str, *, is_admin: bool = False) -> list[Playbook]:
        order = " ORDER BY cc_fold(p.title), p.id"
        if is_admin:
            rows = await self._fetch(f"{_PLAYBOOK_SELECT} WHERE p.team_id = $1{order}", team_id)
        else:
            rows = await self._fetch(
                f"{_PLAYBOOK_SELECT} WHERE p.team_id = $1 AND p.id IN"
                f" (SELECT playbook_id FROM playbook_members WHERE user_id = $2){order}", team_id, user_id)
        return [_playbook_from_row(row) for row in rows]

    # -- incidents ---------------------------------------------------------------------------
    async def create_incident(self, incident: Incident, events: Sequence[TimelineEvent] = (), *,
                              conflict_at_commit: bool = False) -> Incident:
        async def work(conn: asyncpg.Connection) -> None:
            if _rowcount(await conn.execute(_INSERT_INCIDENT, *_incident_values(incident))) != 1:
                raise Conflict("This channel already has an incident.")  # or the id is taken
            if events:
                await conn.executemany(_INSERT_EVENT, _event_params(events))
            await _advance_summaries(conn, events, incident, new=True)

        await self._write(work)
        return incident

    async def get_incident(self, incident_id: str) -> Incident | None:
        row = await self._fetchrow(f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE id = $1", incident_id)
        return _incident_from_row(row) if row else None

    async def incident_by_channel(self, channel_id: str) -> Incident | None:
        row = await self._fetchrow(f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE channel_id = $1", channel_id)
        return _incident_from_row(row) if row else None

    async def update_incident(
        self,
        incident: Incident,
        events: Sequence[TimelineEvent] = (),
        *,
        expected_version: int | None = None,
        previous: Incident | None = None,
    ) -> Incident:
        expected = incident.version if expected_version is None else expected_version
        sql, params = _update_statement(incident, expected, previous)

        async def work(conn: asyncpg.Connection) -> None:
            if _rowcount(await conn.execute(sql, *params)) != 1:
                await self._explain_missed_update(conn, "incidents", incident.id, "incident")
            if events:
                await conn.executemany(_INSERT_EVENT, _event_params(events))
            await _advance_summaries(conn, events, incident)

        await self._write(work)
        return incident.model_copy(update={"version": expected + 1})

    async def mutate_incident(
        self, incident_id: str, operation: IncidentOperation, *, retries: int = 5
    ) -> tuple[Incident, list[TimelineEvent]]:
        """Load the row ``FOR UPDATE``, apply, save, in one transaction: no other writer can come
        between the load and the save, so the version check cannot fail and nothing is retried."""
        async def work(conn: asyncpg.Connection) -> tuple[Incident, list[TimelineEvent]]:
            row = await conn.fetchrow(f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE id = $1 FOR UPDATE",
                                      incident_id)
            if row is None:
                raise NotFound("This incident no longer exists.")
            current = _incident_from_row(row)
            updated, events = operation(current)
            if not events and updated == current:
                return current, []
            if updated.id != current.id:
                raise StorageError("an incident operation must not change the incident's id")
            sql, params = _update_statement(updated, current.version, current)
            if _rowcount(await conn.execute(sql, *params)) != 1:  # cannot happen: the row is locked
                raise StorageError(f"incident {incident_id} vanished inside its own write transaction")
            if events:
                await conn.executemany(_INSERT_EVENT, _event_params(events))
            await _advance_summaries(conn, events, updated)
            return updated.model_copy(update={"version": current.version + 1}), list(events)

        return await self._write(work)

    async def delete_incident(self, incident_id: str) -> bool:
        return await self._execute("DELETE FROM incidents WHERE id = $1", incident_id) == 1

    # -- the list --------------------------------------------------------------------------------
    async def _counted(self, conn: asyncpg.Connection, query: IncidentQuery) -> int:
        """The list's total, reusing a cached shared part while the team's list generation has not moved.

        Inside a transaction (its own writes are visible, and a rollback would take the generation
        back) and for overdue lists (the parameter is "now") nothing is cached."""
        cacheable = self._current_tx() is None and query.overdue_at is None
        key = _count_key(query)
        cached = self._counts.get(key) if cacheable else None
        generation, shared, private = await self._count_row(conn, query, None if cached is None else cached[0])
        if shared is None:  # the generation has not moved: no write the list counts since
            if cached is None:
                raise StorageError("the list's shared count came back empty")
            shared = cached[1]
        if cacheable:
            self._counts.pop(key, None)
            self._counts[key] = (generation, shared)
            while len(self._counts) > COUNT_CACHE_SIZE:
                del self._counts[next(iter(self._counts))]  # the least recently counted
        return shared + private

    @staticmethod
    async def _count_row(conn: asyncpg.Connection, query: IncidentQuery,
                         known_generation: int | None) -> tuple[int, int | None, int]:
        sql, params = _count_statement(query, known_generation)
        rows = await _list_fetch(conn, sql, params, custom=_needs_custom_plan(query.search))
        if not rows:
            raise StorageError("a query that always returns a row returned none")
        row = rows[0]
        return int(row[0]), None if row[1] is None else int(row[1]), int(row[2])

    async def _list_rows(self, query: IncidentQuery, sql: str, p: _Params) -> tuple[int, list[asyncpg.Record]]:
        """The list's total (the count) and one page's rows, on one connection."""
        async with self._reading() as conn:
            try:
                total = await self._counted(conn, query)
                rows = await _list_fetch(conn, sql, p.values, custom=_needs_custom_plan(query.search))
            except _DATABASE_ERRORS as exc:
                raise _storage_error(exc) from exc
        return total, rows

    async def incidents_page(self, query: IncidentQuery) -> Page:
        p = _Params()
        condition = _list_condition(query, p)
        # The page is chosen from the list indexes alone (an index-only scan: every column the filters
        # and the order read is in them), then only its rows are read, in that order; filtering table
        # rows instead would visit a heap tuple for every incident the walk passes.
        sql = (f"SELECT {_INCIDENT_COLUMNS} FROM unnest(ARRAY(SELECT seq FROM incidents WHERE {condition}"
               f" ORDER BY {_SORTS[query.sort]} LIMIT {p(query.per_page)} OFFSET {p(query.offset)}))"
               " WITH ORDINALITY AS page (seq, n) JOIN incidents USING (seq) ORDER BY page.n")
        total, rows = await self._list_rows(query, sql, p)
        return Page([_incident_from_row(row) for row in rows], total)

    async def incident_refs_page(self, query: IncidentQuery) -> RefPage:
        p = _Params()
        condition = _list_condition(query, p)
        sql = (f"SELECT id, team_id, channel_id, public FROM incidents WHERE {condition}"
               f" ORDER BY {_SORTS[query.sort]} LIMIT {p(query.per_page)} OFFSET {p(query.offset)}")
        total, rows = await self._list_rows(query, sql, p)
        return RefPage([IncidentRef(row[0], row[1], row[2], bool(row[3])) for row in rows], total)

    async def incidents_by_ids(self, incident_ids: Sequence[str]) -> list[Incident]:
        wanted = list(dict.fromkeys(incident_ids))
        if not wanted:
            return []
        rows = await self._fetch(f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE id = ANY($1::text[])", wanted)
        by_id = {row["id"]: row for row in rows}
        return [_incident_from_row(by_id[i]) for i in incident_ids if i in by_id]

    async def incidents_without_card(self, limit: int = 100) -> list[Incident]:
        rows = await self._fetch(
            f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE card_post_id IS NULL ORDER BY created_at, seq LIMIT $1",
            limit)
        return [_incident_from_row(row) for row in rows]

    async def incidents_with_open_steps_of(self, team_id: str, user_id: str, *,
                                           limit: int = 100) -> list[Incident]:
        # The status index picks the team's ongoing incidents; strpos() skips, without parsing it,
        # every checklist that does not name the user (steps are stored without defaults: an open
        # step has no "state").
        rows = await self._fetch(
            f"SELECT {_INCIDENT_COLUMNS} FROM incidents"
            " WHERE team_id = $1 AND status = 'ongoing' AND strpos(stages, $2) > 0"
            " AND EXISTS (SELECT 1 FROM jsonb_array_elements(stages::jsonb) AS stage,"
            "             jsonb_array_elements(coalesce(stage.value -> 'steps', '[]'::jsonb)) AS step"
            "             WHERE step.value ->> 'assignee_id' = $3"
            "             AND coalesce(step.value ->> 'state', 'open') = 'open')"
            " ORDER BY created_at DESC, id DESC LIMIT $4",
            team_id, f'"assignee_id":{json.dumps(user_id)}', user_id, limit)
        return [_incident_from_row(row) for row in rows]

    async def timeline(self, incident_id: str) -> list[TimelineEvent]:
        rows = await self._fetch("SELECT id, incident_id, at, kind, actor_id, details FROM timeline_events"
                                 " WHERE incident_id = $1 ORDER BY seq", incident_id)
        return [_event_from_row(row) for row in rows]

    async def append_events(self, events: Sequence[TimelineEvent]) -> None:
        if not events:
            return

        wanted = sorted({event.incident_id for event in events})

        async def work(conn: asyncpg.Connection) -> None:
            # Checked first (and kept from being deleted until the commit) rather than left to the
            # foreign key: its violation would abort the caller's transaction. The rows are locked
            # (in id order: no deadlock) for the summaries: appends to one incident advance its
            # summary one after the other, never from the same stale one (SQLite has one writer).
            found = await conn.fetch("SELECT id FROM incidents WHERE id = ANY($1::text[]) ORDER BY id"
                                     " FOR NO KEY UPDATE", wanted)
            if len(found) != len(wanted):
                raise NotFound("This incident no longer exists.")
            await conn.executemany(_INSERT_EVENT, _event_params(events))
            await _advance_summaries(conn, events)

        await self._write(work)

    async def events_about(self, incident_id: str, subject_id: str) -> list[TimelineEvent]:
        rows = await self._fetch(f"SELECT {_EVENT_COLUMNS} FROM timeline_events"
                                 " WHERE incident_id = $1 AND subject_id = $2 ORDER BY seq", incident_id, subject_id)
        return [_event_from_row(row) for row in rows]

    # -- metrics summaries ---------------------------------------------------------------------------
    async def incident_summary(self, incident_id: str) -> MetricsSummary | None:
        text = await self._fetchval("SELECT summary FROM incident_metrics WHERE incident_id = $1", incident_id)
        return None if text is None else MetricsSummary.model_validate_json(text)

    async def metrics_rows(self, team_id: str, *, since: int, playbook_id: str | None = None) -> list[MetricsRow]:
        # incident_metrics_stats holds every column read (an index-only scan, in its order).
        sql = f"SELECT {_METRICS_COLUMNS} FROM incident_metrics WHERE team_id = $1 AND created_at >= $2"
        args: list[Any] = [team_id, since]
        if playbook_id is not None:
            sql += " AND playbook_id = $3"
            args.append(playbook_id)
        rows = await self._fetch(sql, *args)
        return [MetricsRow(i, t, p, c, bool(public), s, at, r) for i, t, p, c, public, s, at, r in rows]

    async def incidents_without_summary(self, limit: int = 100) -> list[str]:
        rows = await self._fetch(
            "SELECT id FROM incidents WHERE NOT EXISTS"
            " (SELECT 1 FROM incident_metrics m WHERE m.incident_id = incidents.id) ORDER BY created_at, id LIMIT $1",
            limit)
        return [row[0] for row in rows]

    async def save_summary(self, incident: Incident, summary: MetricsSummary) -> None:
        values = _summary_values(incident, summary)

        async def work(conn: asyncpg.Connection) -> None:
            # Checked (and kept) first, not left to the foreign key, whose violation aborts the transaction.
            if await conn.fetchval("SELECT 1 FROM incidents WHERE id = $1 FOR KEY SHARE", incident.id) is None:
                raise NotFound("This incident no longer exists.")
            await conn.execute(_UPSERT_METRICS, *values)

        await self._write(work)

    # -- settings --------------------------------------------------------------------------------
    async def get_setting(self, key: str) -> str | None:
        return await self._fetchval("SELECT value FROM settings WHERE key = $1", key)

    async def set_setting(self, key: str, value: str) -> None:
        await self._execute(
            "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            key, value, int(time.time() * 1000))

    async def delete_setting(self, key: str, *, if_value: str | None = None) -> bool:
        if if_value is None:
            return await self._execute("DELETE FROM settings WHERE key = $1", key) > 0
        return await self._execute("DELETE FROM settings WHERE key = $1 AND value = $2", key, if_value) > 0

    async def delete_settings(self, keys: Mapping[str, str | None]) -> None:
        entries = list(keys.items())
        if not entries:
            return

        async def work(conn: asyncpg.Connection) -> None:
            for key, if_value in entries:
                if if_value is None:
                    await conn.execute("DELETE FROM settings WHERE key = $1", key)
                else:
                    await conn.execute("DELETE FROM settings WHERE key = $1 AND value = $2", key, if_value)

        await self._write(work)

    async def settings_with_prefix(self, prefix: str) -> dict[str, str]:
        rows = await self._fetch("SELECT key, value FROM settings WHERE left(key, $1) = $2 ORDER BY key",
                                 len(prefix), prefix)
        return {row[0]: row[1] for row in rows}

    async def setting_or_default(self, key: str, default: str) -> str:
        now = int(time.time() * 1000)

        async def work(conn: asyncpg.Connection) -> str:
            await conn.execute("INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3)"
                               " ON CONFLICT (key) DO NOTHING", key, default, now)
            # A statement of its own: its snapshot sees a row another writer committed meanwhile.
            return str(await conn.fetchval("SELECT value FROM settings WHERE key = $1", key))

        return await self._write(work)

    # -- leases ---------------------------------------------------------------------------------
    async def acquire_lease(self, name: str, holder: str, *, now: int, ttl_ms: int) -> Lease | None:
        check_lease_args(name, holder, ttl_ms)
        # One statement: the row is taken only where the WHERE holds (the conflicting row is locked).
        row = await self._write(lambda conn: conn.fetchrow(
            "INSERT INTO leases (name, holder, epoch, expires_at) VALUES ($1, $2, 1, $3)"
            " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, epoch = leases.epoch + 1,"
            " expires_at = excluded.expires_at"
            " WHERE leases.expires_at <= $4 OR leases.holder = excluded.holder"
            " RETURNING name, holder, epoch, expires_at", name, holder, now + ttl_ms, now))
        return Lease(*row) if row else None

    async def renew_lease(self, name: str, holder: str, epoch: int, *, now: int, ttl_ms: int) -> Lease | None:
        check_lease_args(name, holder, ttl_ms)
        row = await self._write(lambda conn: conn.fetchrow(
            "UPDATE leases SET expires_at = $1 WHERE name = $2 AND holder = $3 AND epoch = $4"
            " RETURNING name, holder, epoch, expires_at", now + ttl_ms, name, holder, epoch))
        return Lease(*row) if row else None

    async def release_lease(self, name: str, holder: str, epoch: int) -> bool:
        check_lease_args(name, holder)
        return await self._execute("UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2 AND epoch = $3",
                                   name, holder, epoch) > 0

    async def get_lease(self, name: str) -> Lease | None:
        row = await self._fetchrow("SELECT name, holder, epoch, expires_at FROM leases WHERE name = $1", name)
        return Lease(*row) if row else None

    # -- backstage credentials --------------------------------------------------------------------
    async def add_credential(self, credential: WebCredential) -> None:
        c = credential
        inserted = await self._execute(
            f"INSERT INTO web_credentials ({CREDENTIAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            " ON CONFLICT DO NOTHING",
            c.id, c.token_hash, c.kind.value, c.user_id, c.name, c.csrf, c.created_at, c.expires_at)
        if inserted != 1:
            raise Conflict("credential already stored")

    async def credential_by_hash(self, token_hash: str, *, now: int) -> WebCredential | None:
        row = await self._fetchrow(f"SELECT {CREDENTIAL_COLUMNS} FROM web_credentials WHERE token_hash = $1"
                                   " AND (expires_at = 0 OR expires_at > $2)", token_hash, now)
        return credential_from_row(row) if row else None

    async def credentials_of(self, user_id: str, kind: CredentialKind) -> list[WebCredential]:
        rows = await self._fetch(f"SELECT {CREDENTIAL_COLUMNS} FROM web_credentials WHERE user_id = $1"
                                 " AND kind = $2 ORDER BY created_at, id", user_id, kind.value)
        return [credential_from_row(row) for row in rows]

    async def delete_credential(self, credential_id: str, *, user_id: str) -> bool:
        return await self._execute("DELETE FROM web_credentials WHERE id = $1 AND user_id = $2",
                                   credential_id, user_id) > 0

    async def prune_credentials(self, now: int) -> int:
        return await self._execute("DELETE FROM web_credentials WHERE expires_at <> 0 AND expires_at <= $1", now)

    async def incident_version(self, incident_id: str) -> int | None:
        value = await self._fetchval("SELECT version FROM incidents WHERE id = $1", incident_id)
        return None if value is None else int(value)

    # -- single-use keys --------------------------------------------------------------------------
    async def claim_single_use(self, kind: str, key: str, *, expires_at: int, now: int) -> bool:
        async def work(conn: asyncpg.Connection) -> bool:
            await conn.execute("DELETE FROM single_use_keys WHERE kind = $1 AND key = $2 AND expires_at < $3",
                               kind, key, now)
            status = await conn.execute("INSERT INTO single_use_keys (kind, key, expires_at) VALUES ($1, $2, $3)"
                                        " ON CONFLICT (kind, key) DO NOTHING", kind, key, expires_at)
            return _rowcount(status) == 1

        return await self._write(work)

    async def release_single_use(self, kind: str, key: str) -> bool:
        return await self._execute("DELETE FROM single_use_keys WHERE kind = $1 AND key = $2", kind, key) > 0

    async def prune_single_use(self, now: int, *, max_entries: int) -> int:
        async def work(conn: asyncpg.Connection) -> int:
            deleted = _rowcount(await conn.execute("DELETE FROM single_use_keys WHERE expires_at < $1", now))
            excess = int(await conn.fetchval("SELECT count(*) FROM single_use_keys")) - max(0, max_entries)
            if excess > 0:
                deleted += _rowcount(await conn.execute(
                    "DELETE FROM single_use_keys WHERE (kind, key) IN"
                    " (SELECT kind, key FROM single_use_keys ORDER BY expires_at, kind, key LIMIT $1)", excess))
            return deleted

        return await self._write(work)

    # -- scheduled jobs ---------------------------------------------------------------------------
    @staticmethod
    async def _lock_job_key(conn: asyncpg.Connection, kind: str, key: str) -> None:
        """Serialise everything that decides which job of (kind, key) is the pending one."""
        await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _LOCK_SPACE + JOB_KEY_LOCK,
                           f"{kind}\x1f{key}")

    async def insert_job(self, job: Job) -> Job:
        kind, key, now = job.kind, job.key, job.created_at

        async def work(conn: asyncpg.Connection) -> None:
            await self._lock_job_key(conn, kind, key)
            await conn.execute("UPDATE jobs SET state = 'cancelled', finished_at = $1, token = NULL,"
                               " last_error = 'rescheduled' WHERE kind = $2 AND key = $3 AND state = 'pending'",
                               now, kind, key)
            status = await conn.execute(
                "INSERT INTO jobs (id, kind, key, incident_id, due_at, payload, state, created_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7) ON CONFLICT DO NOTHING",
                job.id, kind, key, job.incident_id, job.due_at, payload_json(job.payload), now)
            if _rowcount(status) != 1:
                raise Conflict("A job with this id already exists.")

        await self._write(work)
        return job

    async def get_job(self, job_id: str) -> Job | None:
        row = await self._fetchrow(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = $1", job_id)
        return _job_from_row(row) if row else None

    async def list_jobs(
        self,
        *,
        kind: str | None = None,
        key: str | None = None,
        incident_id: str | None = None,
        states: Collection[JobState] | None = None,
    ) -> list[Job]:
        p = _Params()
        where = ["TRUE"]
        for column, value in (("kind", kind), ("key", key), ("incident_id", incident_id)):
            if value is not None:
                where.append(f"{column} = {p(value)}")
        if states is not None:
            where.append(f"state = ANY({p(sorted(JobState(state).value for state in states))}::text[])")
        rows = await self._fetch(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE {' AND '.join(where)} ORDER BY due_at, id",
                                 *p.values)
        return [_job_from_row(row) for row in rows]

    async def claim_due_jobs(
        self,
        now: int,
        owner: str,
        *,
        lease_ms: int,
        limit: int,
        kinds: Collection[str] | None = None,
        late_ms: int = 60_000,
    ) -> list[Job]:
        if limit <= 0 or (kinds is not None and not kinds):
            return []
        p = _Params()
        sets = (f"state = 'claimed', claimed_by = {p(owner)}, token = replace(gen_random_uuid()::text, '-', ''),"
                f" lease_until = {p(now + lease_ms)}, attempts = attempts + 1,"
                f" late = CASE WHEN late = 1 OR due_at <= {p(now - late_ms)} THEN 1 ELSE 0 END")
        at = p(now)
        kind_sql = "TRUE" if kinds is None else f"kind = ANY({p(sorted(kinds))}::text[])"
        # The due rows are chosen and locked in one statement; rows another replica is claiming right
        # now are skipped, not waited for (and re-checked on their latest version when not locked).
        sql = (f"UPDATE jobs SET {sets} WHERE id IN ("
               f" SELECT id FROM jobs WHERE ((state = 'pending' AND due_at <= {at})"
               f"  OR (state = 'claimed' AND lease_until <= {at})) AND {kind_sql}"
               f" ORDER BY due_at, id LIMIT {p(limit)} FOR UPDATE SKIP LOCKED)"
               f" RETURNING {_JOB_COLUMNS}")
        rows = await self._fetch(sql, *p.values)
        return sorted((_job_from_row(row) for row in rows), key=lambda job: (job.due_at, job.id))

    async def begin_job_delivery(self, job_id: str, token: str, *, now: int) -> bool:
        return await self._execute(
            "UPDATE jobs SET delivery_started_at = coalesce(delivery_started_at, $1)"
            " WHERE id = $2 AND token = $3 AND state = 'claimed' AND lease_until > $1", now, job_id, token) == 1

    async def finish_job(
        self, job_id: str, token: str, *, now: int, state: JobState = JobState.DONE, error: str | None = None
    ) -> bool:
        state = JobState(state)
        if state not in (JobState.DONE, JobState.FAILED, JobState.CANCELLED):
            raise ValueError(f"a job is finished as done, failed or cancelled, not {state}")
        fired_at = now if state is JobState.DONE else None
        return await self._execute(
            "UPDATE jobs SET state = $1, fired_at = coalesce($2::bigint, fired_at), finished_at = $3, token = NULL,"
            " lease_until = NULL, last_error = coalesce($4::text, last_error)"
            " WHERE id = $5 AND token = $6 AND state = 'claimed'",
            state.value, fired_at, now, short_error(error), job_id, token) == 1

    async def retry_job(self, job_id: str, token: str, *, due_at: int, now: int, error: str | None = None) -> bool:
        async def work(conn: asyncpg.Connection) -> bool:
            row = await conn.fetchrow("SELECT kind, key FROM jobs WHERE id = $1 AND token = $2 AND state = 'claimed'",
                                      job_id, token)
            if row is None:
                return False
            await self._lock_job_key(conn, row[0], row[1])
            locked = await conn.fetchrow("SELECT 1 FROM jobs WHERE id = $1 AND token = $2 AND state = 'claimed'"
                                         " FOR UPDATE", job_id, token)
            if locked is None:  # cancelled or taken over while we waited for the key
                return False
            superseded = await conn.fetchval("SELECT 1 FROM jobs WHERE kind = $1 AND key = $2 AND state = 'pending'",
                                             row[0], row[1])
            if superseded is not None:
                await conn.execute("UPDATE jobs SET state = 'cancelled', finished_at = $1, token = NULL,"
                                   " lease_until = NULL, last_error = 'rescheduled' WHERE id = $2", now, job_id)
            else:
                await conn.execute("UPDATE jobs SET state = 'pending', due_at = $1, token = NULL, lease_until = NULL,"
                                   " claimed_by = NULL, delivery_started_at = NULL, last_error = $2 WHERE id = $3",
                                   due_at, short_error(error), job_id)
            return True

        return await self._write(work)

    async def cancel_jobs(
        self,
        *,
        now: int,
        job_id: str | None = None,
        kind: str | None = None,
        key: str | None = None,
        incident_id: str | None = None,
    ) -> int:
        check_selector(job_id, kind, key, incident_id)
        if job_id is not None:
            condition, params = "id = $2", [job_id]
        elif incident_id is not None:
            condition, params = "incident_id = $2", [incident_id]
        else:
            condition, params = "kind = $2 AND key = $3", [kind or "", key or ""]
        states = f"${len(params) + 2}"
        return await self._execute(
            f"UPDATE jobs SET state = 'cancelled', finished_at = $1, token = NULL, lease_until = NULL"
            f" WHERE {condition} AND state = ANY({states}::text[])", now, *params, _LIVE_STATES)

    async def next_job_time(self, kinds: Collection[str] | None = None, *, not_claimed_by: str | None = None) -> int | None:
        if kinds is not None and not kinds:
            return None
        p = _Params()
        kind_sql = "TRUE" if kinds is None else f"kind = ANY({p(sorted(kinds))}::text[])"
        owner = p(not_claimed_by)
        value = await self._fetchval(
            "SELECT least("
            f" (SELECT min(due_at) FROM jobs WHERE state = 'pending' AND {kind_sql}),"
            f" (SELECT min(lease_until) FROM jobs WHERE state = 'claimed' AND {kind_sql}"
            f"  AND claimed_by IS DISTINCT FROM {owner}::text))", *p.values)
        return None if value is None else int(value)

    async def prune_jobs(self, before: int, *, states: Collection[JobState] | None = None,
                         limit: int | None = None) -> int:
        wanted = sorted(state.value for state in finished_states(states))
        if not wanted or (limit is not None and limit < 1):
            return 0
        # Oldest first, at most ``limit`` (NULL: no limit); the condition matches jobs_finished's own.
        return await self._execute(
            "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state IN ('done', 'cancelled', 'failed')"
            " AND state = ANY($1::text[]) AND finished_at < $2 ORDER BY finished_at LIMIT $3)",
            wanted, before, limit)

    # -- alerts (migration 0003; the SQLite store's statements) ---------------------------------------
    async def record_alerts(self, source: str, alerts: Sequence[tuple[AlertIn, GroupTouch | None]], *,
                            now: int) -> list[AlertRecord]:
        async def work(conn: asyncpg.Connection) -> list[AlertRecord]:
            seqs: dict[str, int] = {}
            for alert, group in alerts:
                if group is not None and group.id not in seqs:
                    seqs[group.id] = int(await conn.fetchval(
                        "INSERT INTO alert_groups (id, source, group_key, rule, channel_id, mode, first_seen, last_seen,"
                        " notifications, seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 1, 1)"
                        " ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen,"
                        " channel_id = excluded.channel_id, notifications = alert_groups.notifications + 1,"
                        " seq = alert_groups.seq + 1 RETURNING seq",
                        group.id, group.source, group.group_key, group.rule, group.channel_id, group.mode.value,
                        now))
                seq = seqs[group.id] if group is not None else 0
                is_resolved = alert.status is AlertStatus.RESOLVED
                await conn.execute(
                    f"INSERT INTO alerts ({_ALERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 1, $8, $9, $10, $11)"
                    " ON CONFLICT (source, fingerprint) DO UPDATE SET group_id = excluded.group_id,"
                    " details = excluded.details, seq = excluded.seq,"
                    " title = excluded.title, url = excluded.url, last_seen = excluded.last_seen,"
                    " count = alerts.count + 1,"
                    " resolved_at = CASE WHEN excluded.status = 'resolved' THEN"
                    "   (CASE WHEN alerts.status = 'resolved' THEN alerts.resolved_at ELSE excluded.last_seen END)"
                    "   ELSE NULL END,"
                    " resolved_seq = CASE WHEN excluded.status = 'resolved' THEN"
                    "   (CASE WHEN alerts.status = 'resolved' THEN alerts.resolved_seq ELSE excluded.seq END)"
                    "   ELSE alerts.resolved_seq END,"
                    " status = excluded.status",
                    source, alert.fingerprint, group.id if group else "", alert.status.value, alert.title, alert.url,
                    now, now if is_resolved else None, seq, seq if is_resolved else None,
                    json.dumps({"labels": dict(alert.labels), "annotations": dict(alert.annotations)},
                               separators=(",", ":")))
            found: list[AlertRecord] = []
            for alert, _ in alerts:
                row = await conn.fetchrow(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE source = $1 AND fingerprint = $2",
                                          source, alert.fingerprint)
                found.append(_alert_from_row(row))
            return found

        return await self._write(work)

    async def get_alert(self, source: str, fingerprint: str) -> AlertRecord | None:
        row = await self._fetchrow(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE source = $1 AND fingerprint = $2",
                                   source, fingerprint)
        return _alert_from_row(row) if row else None

    async def count_alerts(self, source: str | None = None) -> int:
        if source is None:
            return int(await self._fetchval("SELECT count(*) FROM alerts"))
        return int(await self._fetchval("SELECT count(*) FROM alerts WHERE source = $1", source))

    async def alerts_of_group(self, group_id: str, *, limit: int = 1000) -> list[AlertRecord]:
        rows = await self._fetch(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE group_id = $1"
                                 " ORDER BY first_seen, fingerprint LIMIT $2", group_id, max(0, limit))
        return [_alert_from_row(row) for row in rows]

    async def get_alert_group(self, group_id: str) -> AlertGroup | None:
        row = await self._fetchrow(f"SELECT {_GROUP_COLUMNS} FROM alert_groups WHERE id = $1", group_id)
        return _group_from_row(row) if row else None

    async def alert_groups_with_news(self, channel_id: str, *, limit: int = 100) -> list[AlertGroup]:
        rows = await self._fetch(f"SELECT {_GROUP_COLUMNS} FROM alert_groups WHERE channel_id = $1"
                                 " AND seq > posted_seq ORDER BY first_seen, id LIMIT $2", channel_id, max(0, limit))
        return [_group_from_row(row) for row in rows]

    async def alert_groups_posted_since(self, channel_id: str, since: int) -> int:
        return int(await self._fetchval(
            "SELECT count(*) FROM alert_groups WHERE channel_id = $1 AND created_post_at >= $2", channel_id, since))

    async def save_alert_group_posted(self, posted: GroupPosted) -> bool:
        return await self._execute(
            "UPDATE alert_groups SET posted_seq = greatest(posted_seq, $1), state = $2, post_id = $3,"
            " incident_id = $4, created_post_at = $5, posted_at = $6, last_error = $7 WHERE id = $8",
            posted.posted_seq, posted.state.value, posted.post_id, posted.incident_id, posted.created_post_at,
            posted.posted_at, posted.last_error, posted.id) > 0


async def _timeline_of(conn: asyncpg.Connection, incident_id: str) -> list[TimelineEvent]:
    rows = await conn.fetch(f"SELECT {_EVENT_COLUMNS} FROM timeline_events WHERE incident_id = $1 ORDER BY seq",
                            incident_id)
    return [_event_from_row(row) for row in rows]


async def _advance_summaries(
    conn: asyncpg.Connection, events: Sequence[TimelineEvent], incident: Incident | None = None, *, new: bool = False
) -> None:
    """SQLite's ``_advance_summaries`` (same rules) inside the open transaction, after ``events`` are
    inserted: the summary of every incident they belong to advances with them, and ``incident`` (as
    just written) is followed in the descriptive columns. The callers hold the incident rows locked
    (the update, ``FOR UPDATE`` or ``FOR NO KEY UPDATE``), so no two advance one summary at once."""
    by_incident: dict[str, list[TimelineEvent]] = {}
    if incident is not None:
        by_incident[incident.id] = []
    for event in events:
        by_incident.setdefault(event.incident_id, []).append(event)
    for incident_id, own in by_incident.items():
        subject = incident if incident is not None and incident.id == incident_id else None
        if new and subject is not None:
            await conn.execute(_UPSERT_METRICS,
                               *_summary_values(subject, advance(start_summary(subject.created_at), own)))
            continue
        row = await conn.fetchrow(
            "SELECT playbook_id, public, severity, summary FROM incident_metrics WHERE incident_id = $1", incident_id)
        if subject is None:
            found = await conn.fetchrow(f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE id = $1", incident_id)
            if found is None:
                continue
            subject = _incident_from_row(found)
            if row is not None:  # the incident did not change: keep what was written with it
                subject = subject.model_copy(update={"playbook_id": row[0], "public": bool(row[1])})
                severity = row[2]
            else:
                severity = subject.severity
        else:
            severity = subject.severity
        if row is None:
            summary = summarize(subject.created_at, await _timeline_of(conn, incident_id))
        else:
            before = MetricsSummary.model_validate_json(row[3])
            summary = advance(before, own)
            if summary == before and (row[0], bool(row[1]), row[2]) == (subject.playbook_id, subject.public, severity):
                continue
        values = _summary_values(subject, summary)
        await conn.execute(_UPSERT_METRICS, *values[:5], severity, *values[6:])


__all__ = ["DEFAULT_POOL_SIZE", "PostgresStore"]
