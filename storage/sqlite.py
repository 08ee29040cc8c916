"""The SQLite backend (aiosqlite): WAL, foreign keys, one writer, BEGIN IMMEDIATE.

Durability: ``synchronous=FULL`` by default, so a committed transaction is on
disk before the caller is answered, even across a power cut. ``NORMAL`` (opt-in
with ``?synchronous=normal``) survives a killed process but may lose the last
commits on power loss, which breaks "nothing acknowledged is ever lost".

Concurrency: all writes go through one connection guarded by an asyncio lock and
start with ``BEGIN IMMEDIATE``, so writers queue instead of failing half-way;
another process writing the same file waits on SQLite's busy timeout. Reads
outside a transaction use a small pool of reader connections, which WAL lets
run alongside the writer. Row versions on incidents and playbooks catch lost
updates from writers that loaded outside the transaction.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import aiosqlite
from pydantic import TypeAdapter

from domain.alerts import (
    AlertGroup,
    AlertIn,
    AlertMode,
    AlertRecord,
    AlertStatus,
    GroupPosted,
    GroupState,
    GroupTouch,
)
from domain.errors import Conflict, NotFound
from domain.metrics import MetricsRow, MetricsSummary, advance, start_summary, summarize
from domain.models import (
    DEFAULT_SEVERITY,
    CredentialKind,
    FieldDef,
    Incident,
    IncidentStatus,
    Playbook,
    RetroSettings,
    RetroStatus,
    Stage,
    TimelineEvent,
    UpdateSettings,
    WebCredential,
    WebhookTarget,
)
from domain.timeline import subject_of

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

_STAGES = TypeAdapter(tuple[Stage, ...])
_IDS = TypeAdapter(tuple[str, ...])
_WEBHOOKS = TypeAdapter(tuple[WebhookTarget, ...])
_FIELDS = TypeAdapter(tuple[FieldDef, ...])
_VALUES = TypeAdapter(dict[str, str])

_INCIDENT_COLUMNS = (
    "id, team_id, channel_id, name, description, commander_id, creator_id, playbook_id,"
    " playbook_title, active_stage, status, created_at, ended_at, source_post_id,"
    " card_post_id, public, version, stages, stage_set_at, restarted_at, last_update_at, last_update_by,"
    " last_update_post_id, next_update_due_at, update_requested_at, updates, follower_ids, webhooks,"
    " fields, field_values, retro, retro_status, retro_text, retro_published_at, retro_by"
)

_INCIDENT_COLUMN_COUNT = len(_INCIDENT_COLUMNS.split(","))

_PLAYBOOK_SELECT = (
    "SELECT p.id, p.team_id, p.title, p.description, p.create_public_channel, p.stages,"
    " p.created_by, p.created_at, p.updated_at, p.version, p.default_commander_id, p.updates,"
    " p.invited_user_ids, p.auto_follower_ids, p.webhooks, p.fields, p.retro,"
    " (SELECT json_group_array(user_id) FROM"
    "   (SELECT user_id FROM playbook_members m WHERE m.playbook_id = p.id ORDER BY position)) AS member_ids"
    " FROM playbooks p"
)

# rowid breaks ties: index entries carry it, so the order stays covered by the index.
_SORTS = {
    IncidentSort.CREATED_DESC: "created_at DESC, rowid DESC",
    IncidentSort.CREATED_ASC: "created_at ASC, rowid ASC",
    IncidentSort.NAME_ASC: "name COLLATE NOCASE ASC, rowid ASC",
    IncidentSort.NAME_DESC: "name COLLATE NOCASE DESC, rowid DESC",
}

_SYNCHRONOUS = {"full", "normal", "extra"}

#: Page cache per connection, in KiB.
CACHE_KIB = 32 * 1024
#: The event loop's own reader reads a few pages per query (SQLite's default cache).
INLINE_CACHE_KIB = 2 * 1024
#: Commits between two background WAL checkpoints.
CHECKPOINT_EVERY = 250
# INLINE_SLOW_WRITES writes in a row run on the event loop's thread that each took longer than
# INLINE_WRITE_BUDGET_S (a slow disk's fsync; one late write alone is a hiccup) send the writes of the
# next INLINE_PAUSE_S seconds to the writer's own thread (SqliteStore._writer_trip).
INLINE_WRITE_BUDGET_S = 0.005
INLINE_SLOW_WRITES = 3
INLINE_PAUSE_S = 30
#: List counts remembered (see ``_Count``): a few filters per team, and the searches people repeat.
COUNT_CACHE_SIZE = 512
#: Bytes the WAL file is truncated to after a checkpoint lets it restart.
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024

log = logging.getLogger(__name__)


@dataclass
class _Tx:
    """The write transaction a task is running (see ``SqliteStore.transaction``)."""

    conn: aiosqlite.Connection
    task: asyncio.Task | None
    active: bool = True
    #: BEGIN IMMEDIATE is queued (it goes with the transaction's first statement, in the same trip).
    begun: bool = False
    #: Writes whose answer nobody waits for (``SqliteStore._write_later``): they travel with the
    #: transaction's next statement or with its COMMIT, in the same trip, in the order they were made.
    queued: list[Callable[[sqlite3.Connection], Any]] = field(default_factory=list)
    #: ``transaction()`` blocks open on it (nested ones join): only the outermost may end it early.
    depth: int = 1
    #: The next statement carries the COMMIT (``SqliteStore.commit_with_next``).
    finishing: bool = False
    #: Committed (or rolled back) with that statement: nothing may follow it.
    finished: bool = False
    #: (level it commits at, level to go back to) after ``commit_without_sync``; None: the store's own.
    relaxed: tuple[str, str] | None = None

    def begin_relaxed(self, begin: bool) -> str | None:
        """The ``synchronous`` level to set before this trip's BEGIN (None: leave it)."""
        return self.relaxed[0] if begin and self.relaxed else None

    @property
    def restore(self) -> str | None:
        return self.relaxed[1] if self.relaxed else None

    def take_queued(self) -> list[Callable[[sqlite3.Connection], Any]]:
        queued, self.queued = self.queued, []
        return queued


def _incident_from_row(row: sqlite3.Row) -> Incident:
    # The retrospective's columns are passed only when set: a default is not validated again, and
    # nearly every row of a list has none (a few µs a row).
    retro: dict[str, Any] = {}
    if row["retro_status"] is not None:
        retro = {"retro_status": RetroStatus(row["retro_status"]), "retro_text": row["retro_text"],
                 "retro_published_at": row["retro_published_at"], "retro_by": row["retro_by"]}
    if row["retro"] != "{}":
        retro["retro"] = _retro(row["retro"])
    return Incident(
        id=row["id"],
        team_id=row["team_id"],
        channel_id=row["channel_id"],
        name=row["name"],
        description=row["description"],
        commander_id=row["commander_id"],
        creator_id=row["creator_id"],
        playbook_id=row["playbook_id"],
        playbook_title=row["playbook_title"],
        stages=_stages(row["stages"]),
        active_stage=row["active_stage"],
        status=IncidentStatus(row["status"]),
        created_at=row["created_at"],
        ended_at=row["ended_at"],
        source_post_id=row["source_post_id"],
        card_post_id=row["card_post_id"],
        public=bool(row["public"]),
        stage_set_at=row["stage_set_at"],
        restarted_at=row["restarted_at"],
        version=row["version"],
        last_update_at=row["last_update_at"],
        last_update_by=row["last_update_by"],
        last_update_post_id=row["last_update_post_id"],
        next_update_due_at=row["next_update_due_at"],
        update_requested_at=row["update_requested_at"],
        updates=_updates(row["updates"]),
        follower_ids=_IDS.validate_json(row["follower_ids"]),
        webhooks=_webhooks(row["webhooks"]),
        fields=_fields(row["fields"]),
        field_values=_values(row["field_values"]),
        **retro,
    )


#: Checklists by their JSON text, least recently used first (see :func:`_stages`), and their lock:
#: rows are parsed on the event loop's thread and, inside a write, on the writer's.
_STAGES_KEPT: dict[str, tuple[Stage, ...]] = {}
_STAGES_LOCK = threading.Lock()
STAGES_KEPT = 512


def _stages(text: str) -> tuple[Stage, ...]:
    """A checklist from its JSON, remembered by the text itself (frozen, so shared).

    Parsing 20 steps costs ≈45 µs, most of what a list page's rows cost; the same rows are
    read again and again (the newest page, a toggled card redrawn), and an equal text always
    means an equal checklist, so a changed one simply misses. 512 twenty-step checklists hold
    ≈14 MB at most (≈22 KB parsed plus ≈5 KB of text each).

    A checklist the bot itself just wrote is kept under the text it wrote (:func:`_incident_stages_json`),
    so reading it back (a card redrawn, the next change's load) parses nothing.
    """
    kept = _STAGES_KEPT.get(text)
    if kept is None:
        kept = _STAGES.validate_json(text)
    _keep_stages(text, kept)
    return kept


def _keep_stages(text: str, stages: tuple[Stage, ...]) -> None:
    with _STAGES_LOCK:
        _STAGES_KEPT.pop(text, None)
        _STAGES_KEPT[text] = stages
        while len(_STAGES_KEPT) > STAGES_KEPT:
            del _STAGES_KEPT[next(iter(_STAGES_KEPT))]


def _incident_stages_json(stages: Sequence[Stage]) -> str:
    """An incident's checklist as stored, kept for :func:`_stages` (it parses back to an equal one:
    tests/storage/test_cpu_stages.py)."""
    frozen = tuple(stages)
    text = _STAGES.dump_json(frozen, exclude_defaults=True).decode()
    _keep_stages(text, frozen)
    return text


@functools.lru_cache(maxsize=64)
def _updates(text: str) -> UpdateSettings:
    """Update settings from their JSON (most incidents share a few playbooks' settings; frozen, so shared)."""
    return UpdateSettings.model_validate_json(text)


@functools.lru_cache(maxsize=64)
def _webhooks(text: str) -> tuple[WebhookTarget, ...]:
    """Webhook targets from their JSON (shared by the incidents of one playbook; frozen)."""
    return _WEBHOOKS.validate_json(text)


def _webhooks_json(targets: Sequence[WebhookTarget]) -> str:
    return _WEBHOOKS.dump_json(tuple(targets), exclude_defaults=True).decode()
def _fields(text: str | None) -> tuple[FieldDef, ...]:
    """Field definitions from their JSON; NULL (stored before schema 10) is the default severity field."""
    if text is None:
        return (DEFAULT_SEVERITY,)
    return _FIELDS.validate_json(text)


def _values(text: str) -> dict[str, str]:
    """Field values from their JSON; most incidents have none, and "{}" needs no parser."""
    return {} if text == "{}" else _VALUES.validate_json(text)


def _fields_json(fields: Sequence[FieldDef]) -> str:
    return _FIELDS.dump_json(tuple(fields), exclude_defaults=True).decode()


@functools.lru_cache(maxsize=64)
def _retro(text: str) -> RetroSettings:
    return RetroSettings.model_validate_json(text)


def _retro_json(retro: RetroSettings) -> str:
    return retro.model_dump_json(exclude_defaults=True)


def _values_json(values: dict[str, str]) -> str:
    return json.dumps(values, separators=(",", ":"), sort_keys=True)


def _updates_json(updates: UpdateSettings) -> str:
    return updates.model_dump_json(exclude_defaults=True)


def _ids_json(ids: Sequence[str]) -> str:
    return json.dumps(list(ids), separators=(",", ":"))


def _playbook_from_row(row: sqlite3.Row) -> Playbook:
    """The playbook of a ``_PLAYBOOK_SELECT`` row, parsed once per distinct row.

    A start reads its playbook three times (dialog, submission, creation) and parsing the stages
    was a twentieth of the bot's CPU per start. The key is every column of the row, so a changed
    playbook (new version, members, anything) is a new key; Playbook is frozen, so sharing is safe."""
    return _parse_playbook(tuple(row))


@functools.lru_cache(maxsize=512)
def _parse_playbook(values: tuple) -> Playbook:
    (id_, team_id, title, description, create_public_channel, stages, created_by, created_at, updated_at,
     version, default_commander_id, updates, invited_user_ids, auto_follower_ids, webhooks, fields, retro,
     member_ids) = values
    return Playbook(
        id=id_,
        team_id=team_id,
        title=title,
        description=description,
        create_public_channel=bool(create_public_channel),
        member_ids=tuple(json.loads(member_ids)),
        stages=_STAGES.validate_json(stages),
        created_by=created_by,
        created_at=created_at,
        updated_at=updated_at,
        version=version,
        default_commander_id=default_commander_id,
        updates=_updates(updates),
        invited_user_ids=_IDS.validate_json(invited_user_ids),
        auto_follower_ids=_IDS.validate_json(auto_follower_ids),
        webhooks=_webhooks(webhooks),
        fields=_fields(fields),
        retro=_retro(retro),
    )


def _event_from_row(row: sqlite3.Row) -> TimelineEvent:
    return TimelineEvent(
        id=row["id"],
        incident_id=row["incident_id"],
        at=row["at"],
        kind=row["kind"],
        actor_id=row["actor_id"],
        details=json.loads(row["details"]),
    )


def _stages_json(stages: Sequence[Stage]) -> str:
    return _STAGES.dump_json(tuple(stages), exclude_defaults=True).decode()


def _enum_value(value: Any) -> Any:
    return None if value is None else value.value


#: Every column an update may change (not id, team, channel, creator, creation time): the incident's
#: attribute it holds, and how that is encoded (None: as it is).
_MUTABLE_COLUMNS: tuple[tuple[str, Callable[[Any], object] | None], ...] = (
    ("name", None), ("description", None), ("commander_id", None), ("playbook_id", None),
    ("playbook_title", None), ("active_stage", None), ("status", _enum_value), ("ended_at", None),
    ("source_post_id", None), ("card_post_id", None), ("public", int), ("stages", lambda v: _incident_stages_json(v)),
    ("stage_set_at", None), ("restarted_at", None), ("last_update_at", None), ("last_update_by", None),
    ("last_update_post_id", None), ("next_update_due_at", None), ("update_requested_at", None),
    ("updates", lambda v: _updates_json(v)), ("follower_ids", lambda v: _ids_json(v)),
    ("fields", lambda v: _fields_json(v)), ("field_values", lambda v: _values_json(v)),
    ("retro", lambda v: _retro_json(v)), ("retro_status", _enum_value), ("retro_text", None),
    ("retro_published_at", None), ("retro_by", None),
)


def _mutable_incident_columns(incident: Incident) -> dict[str, object]:
    """Column values of everything an update may change (not id, team, channel, creator, creation time)."""
    values: dict[str, object] = {}
    for column, encode in _MUTABLE_COLUMNS:
        value = getattr(incident, column)
        values[column] = value if encode is None else encode(value)
    return values


def _changed_incident_columns(incident: Incident, previous: Incident) -> dict[str, object]:
    """The columns of :func:`_mutable_incident_columns` whose attribute differs from ``previous``'s,
    encoded: an attribute equal to the one before (most often the very same object: a change copies
    the incident) is neither encoded nor written — a checklist's JSON is dumped only when it changed."""
    values: dict[str, object] = {}
    for column, encode in _MUTABLE_COLUMNS:
        value, before = getattr(incident, column), getattr(previous, column)
        if value is before or value == before:
            continue
        values[column] = value if encode is None else encode(value)
    return values


def _update_statement(incident: Incident, expected: int, previous: Incident | None) -> tuple[str, tuple]:
    """The versioned UPDATE saving ``incident`` over stored version ``expected``."""
    if previous is not None and previous.id == incident.id:
        # Writing only what changed spares SQLite the index maintenance (and WAL
        # pages) of columns a checklist edit never touches.
        values = _changed_incident_columns(incident, previous)
    else:
        values = _mutable_incident_columns(incident)
    assignments = "".join(f"{column} = ?, " for column in values)
    return (
        f"UPDATE incidents SET {assignments}version = ? WHERE id = ? AND version = ?",
        (*values.values(), expected + 1, incident.id, expected),
    )


_INSERT_EVENT = ("INSERT INTO timeline_events (id, incident_id, at, kind, actor_id, details, subject_id)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?)")


def _claim_key(conn: sqlite3.Connection, kind: str, key: str, expires_at: int, now: int) -> bool:
    """Record a single-use key in the open transaction; False if it is held and not expired."""
    conn.execute("DELETE FROM single_use_keys WHERE kind = ? AND key = ? AND expires_at < ?", (kind, key, now))
    return conn.execute("INSERT OR IGNORE INTO single_use_keys (kind, key, expires_at) VALUES (?, ?, ?)",
                        (kind, key, expires_at)).rowcount == 1


def _begin_immediate(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")


def _is_busy(error: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED: another connection holds the lock asked for."""
    text = str(error)
    return "locked" in text or "busy" in text


def _rollback_quietly(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("ROLLBACK")
    except sqlite3.OperationalError:
        # Some errors (disk full, I/O) make SQLite roll back by itself; keep the original error.
        log.debug("ROLLBACK after an automatic rollback", exc_info=True)


def _then(queued: list[Callable[[sqlite3.Connection], Any]], work: Callable[[sqlite3.Connection], _T],
          *, begin: bool = False, relax: str | None = None) -> Callable[[sqlite3.Connection], _T]:
    """``work`` after a transaction's queued writes (and its BEGIN: after ``PRAGMA synchronous = relax``
    if given, which SQLite takes only outside a transaction), as one function for one trip."""
    if not queued and not begin:
        return work

    def combined(conn: sqlite3.Connection) -> _T:
        if begin:
            if relax is not None:
                conn.execute(f"PRAGMA synchronous = {relax}")
            conn.execute("BEGIN IMMEDIATE")
        for earlier in queued:
            earlier(conn)
        return work(conn)

    return combined


def _finish(queued: list[Callable[[sqlite3.Connection], Any]], *, begin: bool,
            work: Callable[[sqlite3.Connection], _T] | None = None, relax: str | None = None,
            restore: str | None = None) -> Callable[[sqlite3.Connection], _T | None]:
    """A transaction's last trip: its queued writes, then ``work`` (its last statement, if it has one
    with an answer), then COMMIT; rolled back if any of it fails. ``restore``: the ``synchronous``
    level to go back to afterwards (a transaction committed without waiting for the disk)."""
    def last(conn: sqlite3.Connection) -> _T | None:
        result = work(conn) if work is not None else None
        conn.execute("COMMIT")
        return result

    def finish(conn: sqlite3.Connection) -> _T | None:
        try:
            return _then(queued, last, begin=begin, relax=relax)(conn)
        except BaseException:
            _rollback_quietly(conn)
            raise
        finally:
            if restore is not None:
                conn.execute(f"PRAGMA synchronous = {restore}")

    return finish


def _in_transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], _T]) -> _T:
    """``work`` as one ``BEGIN IMMEDIATE`` … ``COMMIT`` on the writer's thread; rolled back if it raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn)
        conn.execute("COMMIT")
    except BaseException:
        _rollback_quietly(conn)
        raise
    return result


def _apply(
    conn: sqlite3.Connection, incident_id: str, operation: IncidentOperation
) -> tuple[Incident, list[TimelineEvent], bool]:
    """Load, apply and save inside the writer's open transaction; the flag says whether anything was written."""
    rows = conn.execute(f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE id = ?", (incident_id,)).fetchall()
    if not rows:
        raise NotFound("This incident no longer exists.")
    current = _incident_from_row(rows[0])
    updated, events = operation(current)
    if not events and updated == current:
        return current, [], False
    if updated.id != current.id:
        raise StorageError("an incident operation must not change the incident's id")
    sql, params = _update_statement(updated, current.version, current)
    if conn.execute(sql, params).rowcount != 1:  # cannot happen: the row is locked since the SELECT
        raise StorageError(f"incident {incident_id} vanished inside its own write transaction")
    if events:
        conn.executemany(_INSERT_EVENT, _event_params(events))
    _advance_summaries(conn, events, updated)
    return updated.model_copy(update={"version": current.version + 1}), list(events), True


def _mutate(
    conn: sqlite3.Connection, incident_id: str, operation: IncidentOperation
) -> tuple[Incident, list[TimelineEvent], bool]:
    """``mutate_incident`` as one transaction on the writer's thread; the flag says whether it committed."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        saved, events, wrote = _apply(conn, incident_id, operation)
        conn.execute("COMMIT" if wrote else "ROLLBACK")
    except BaseException:
        _rollback_quietly(conn)
        raise
    return saved, events, wrote


def _filter_terms(query: IncidentQuery) -> tuple[list[str], list]:
    """The WHERE terms and parameters of the filters (not the team, not the visibility test)."""
    where: list[str] = []
    params: list = []
    if query.status is not None:
        where.append("status = ?")
        params.append(query.status.value)
    if query.commander_id is not None:
        where.append("commander_id = ?")
        params.append(query.commander_id)
    if query.playbook_id is not None:
        where.append("playbook_id = ?")
        params.append(query.playbook_id)
    if query.search and "\x00" in query.search:
        # SQLite's LIKE reads its pattern up to a NUL only ("%\x00%" would be "%": every name), and
        # no name holds one (names are checked for control characters): nothing matches.
        where.append("0")
    elif query.search:
        where.append("name LIKE ? ESCAPE '\\'")
        params.append(like_pattern(query.search))
    if query.overdue_at is not None:
        # The terms of the partial index incidents_update_due, so the planner may use it.
        where.append("status = 'ongoing' AND next_update_due_at IS NOT NULL AND next_update_due_at <= ?")
        params.append(query.overdue_at)
    for field_id, value in query.field_values:
        if field_id == SEVERITY_ID:
            # Exactly the expression of the index incidents_list_severity (migration 0010).
            where.append("json_extract(field_values, '$.severity') = ?")
        else:
            # Any other field is read from the partial covering index incidents_list_fields (its
            # term repeated; the ids are checked by IncidentQuery.of, the path is a parameter all the same).
            where.append("field_values <> '{}' AND json_extract(field_values, ?) = ?")
            params.append(f'$."{field_id}"')
        params.append(value)
    return where, params


def _list_condition(query: IncidentQuery) -> tuple[str, list]:
    """The WHERE clause and parameters shared by the list and its light references."""
    where = ["team_id = ?"]
    params: list = [query.team_id]
    if not query.is_admin:
        # The viewer's channels arrive as one JSON array parameter: one statement,
        # however many channels, and SQLite builds a lookup table from it once.
        where.append("(public = 1 OR channel_id IN (SELECT value FROM json_each(?)))")
        params.append(json.dumps(sorted(query.viewer_channel_ids)))
    terms, values = _filter_terms(query)
    return " AND ".join(where + terms), params + values


@dataclass(frozen=True)
class _Count:
    """How a list's total is counted: a part worth caching, and the viewer's own private part.

    The shared part is every match for an admin and the public matches otherwise: it depends on
    the query's filters only, so every viewer of a team reuses it. The private part, the viewer's
    private incidents among the matches, is read through the unique channel index, one lookup
    per channel of the viewer, so it costs what the viewer's channels cost, not what the team has.
    """

    team_id: str
    shared: str
    shared_params: tuple
    private: str | None
    private_params: tuple

    @classmethod
    def of(cls, query: IncidentQuery) -> _Count:
        terms, values = _filter_terms(query)
        params = (query.team_id, *values)
        if query.is_admin:
            return cls(query.team_id, " AND ".join(["team_id = ?", *terms]), params, None, ())
        shared = " AND ".join(["team_id = ?", "public = 1", *terms])
        if not query.viewer_channel_ids:
            return cls(query.team_id, shared, params, None, ())
        # The unary + keeps the planner off the team indexes: the lookups in incidents_channel_list
        # (0009), which holds every column a filter reads, are the cheap way in.
        private = " AND ".join(["channel_id IN (SELECT value FROM json_each(?))", "+team_id = ?", "+public = 0", *terms])
        return cls(query.team_id, shared, params, private, (json.dumps(sorted(query.viewer_channel_ids)), *params))

    @property
    def key(self) -> tuple:
        return (self.shared, self.shared_params)


def _count_incidents(conn: sqlite3.Connection, count: _Count, cached: tuple[int, int] | None) -> tuple[int, int, int]:
    """The list's total, with the team's list generation and shared part it used: (generation, shared, total).

    ``cached`` is a (generation, shared part) counted before: reused when the team's generation
    (migration 0009) has not moved since. The generation is read before the count, in its own snapshot, so a write that
    lands between them leaves the new entry older than the data it was counted from, never newer:
    at worst it is never reused. Statements are read to the end, so none stays active.
    """
    def scalar(sql: str, params: Sequence[Any]) -> int:
        rows = conn.execute(sql, params).fetchall()
        return int(_scalar(rows[0] if rows else None))

    generation = scalar("SELECT coalesce((SELECT n FROM list_generations WHERE team_id = ?), 0)", (count.team_id,))
    if cached is not None and cached[0] == generation:
        shared = cached[1]
    else:
        shared = scalar(f"SELECT count(*) FROM incidents WHERE {count.shared}", count.shared_params)
    private = 0 if count.private is None else scalar(f"SELECT count(*) FROM incidents WHERE {count.private}",
                                                     count.private_params)
    return generation, shared, shared + private


def _event_params(events: Sequence[TimelineEvent]) -> list[tuple]:
    return [
        (e.id, e.incident_id, e.at, e.kind.value, e.actor_id, json.dumps(e.details, separators=(",", ":")),
         subject_of(e))
        for e in events
    ]


# -- metrics summaries (migration 0010, domain/metrics.py) -------------------------------------------
_METRICS_COLUMNS = "incident_id, team_id, playbook_id, channel_id, public, severity, created_at, resolve_ms"
_UPSERT_METRICS = (
    f"INSERT INTO incident_metrics ({_METRICS_COLUMNS}, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (incident_id) DO UPDATE SET playbook_id = excluded.playbook_id, public = excluded.public,"
    " severity = excluded.severity, resolve_ms = excluded.resolve_ms, summary = excluded.summary"
)


def _summary_values(incident: Incident, summary: MetricsSummary) -> tuple:
    return (incident.id, incident.team_id, incident.playbook_id, incident.channel_id, int(incident.public),
            incident.severity, incident.created_at, summary.resolve_ms, summary.model_dump_json())


def _timeline_of(conn: sqlite3.Connection, incident_id: str) -> list[TimelineEvent]:
    rows = conn.execute(
        "SELECT id, incident_id, at, kind, actor_id, details FROM timeline_events WHERE incident_id = ? ORDER BY seq",
        (incident_id,),
    ).fetchall()
    return [_event_from_row(row) for row in rows]


def _advance_summaries(
    conn: sqlite3.Connection, events: Sequence[TimelineEvent], incident: Incident | None = None, *, new: bool = False
) -> None:
    """Inside the open write transaction, after ``events`` are inserted: advance the summary of every
    incident they belong to, and follow ``incident`` (as just written) in the descriptive columns.

    A summary that is missing (an incident from before migration 0010 not backfilled yet) is computed
    from the whole timeline, which then holds ``events`` already. Nothing is written when nothing changed.
    """
    by_incident: dict[str, list[TimelineEvent]] = {}
    if incident is not None:
        by_incident[incident.id] = []
    for event in events:
        by_incident.setdefault(event.incident_id, []).append(event)
    for incident_id, own in by_incident.items():
        subject = incident if incident is not None and incident.id == incident_id else None
        if new and subject is not None:
            conn.execute(_UPSERT_METRICS, _summary_values(subject, advance(start_summary(subject.created_at), own)))
            continue
        row = conn.execute(
            "SELECT playbook_id, public, severity, summary FROM incident_metrics WHERE incident_id = ?", (incident_id,)
        ).fetchone()
        if subject is None:
            found = conn.execute(f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE id = ?", (incident_id,)).fetchone()
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
            summary = summarize(subject.created_at, _timeline_of(conn, incident_id))
        else:
            if not own and (row[0], bool(row[1]), row[2]) == (subject.playbook_id, subject.public, severity):
                continue  # no event folds in (advance() keeps the summary as it is): nothing to parse or write
            before = MetricsSummary.model_validate_json(row[3])
            summary = advance(before, own)
            if summary == before and (row[0], bool(row[1]), row[2]) == (subject.playbook_id, subject.public, severity):
                continue
        values = _summary_values(subject, summary)
        conn.execute(_UPSERT_METRICS, (*values[:5], severity, *values[6:]))




_JOB_COLUMNS = (
    "id, kind, key, incident_id, due_at, payload, state, attempts, claimed_by, token, lease_until,"
    " delivery_started_at, fired_at, finished_at, late, created_at, last_error"
)
_LIVE_STATES = tuple(sorted(state.value for state in LIVE))


def _job_from_row(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"], kind=row["kind"], key=row["key"], incident_id=row["incident_id"], due_at=row["due_at"],
        payload=json.loads(row["payload"]), state=JobState(row["state"]), attempts=row["attempts"],
        claimed_by=row["claimed_by"], token=row["token"], lease_until=row["lease_until"],
        delivery_started_at=row["delivery_started_at"], fired_at=row["fired_at"], finished_at=row["finished_at"],
        late=bool(row["late"]), created_at=row["created_at"], last_error=row["last_error"],
    )


def _kinds_condition(kinds: Collection[str] | None) -> tuple[str, list]:
    """A condition on ``kind`` (one JSON array parameter, however many kinds)."""
    if kinds is None:
        return "1", []
    return "kind IN (SELECT value FROM json_each(?))", [json.dumps(sorted(kinds))]


_T = TypeVar("_T")


_ALERT_COLUMNS = ("source, fingerprint, group_id, status, title, url, first_seen, last_seen, count, resolved_at,"
                  " seq, resolved_seq, details")
_GROUP_COLUMNS = ("id, source, group_key, rule, channel_id, mode, first_seen, last_seen, notifications, seq,"
                  " posted_seq, state, post_id, incident_id, created_post_at, posted_at, last_error")


def _alert_from_row(row: sqlite3.Row) -> AlertRecord:
    return AlertRecord(source=row["source"], fingerprint=row["fingerprint"], group_id=row["group_id"],
                       status=AlertStatus(row["status"]), title=row["title"], url=row["url"],
                       first_seen=row["first_seen"], last_seen=row["last_seen"], count=row["count"],
                       resolved_at=row["resolved_at"], seq=row["seq"], resolved_seq=row["resolved_seq"],
                       **json.loads(row["details"]))


def _group_from_row(row: sqlite3.Row) -> AlertGroup:
    return AlertGroup(id=row["id"], source=row["source"], group_key=row["group_key"], rule=row["rule"],
                      channel_id=row["channel_id"], mode=AlertMode(row["mode"]), first_seen=row["first_seen"],
                      last_seen=row["last_seen"], notifications=row["notifications"], seq=row["seq"],
                      posted_seq=row["posted_seq"], state=GroupState(row["state"]), post_id=row["post_id"],
                      incident_id=row["incident_id"], created_post_at=row["created_post_at"],
                      posted_at=row["posted_at"], last_error=row["last_error"])


async def _on_thread(conn: aiosqlite.Connection, work: Callable[[sqlite3.Connection], _T]) -> _T:
    """Run ``work`` with the raw connection on the connection's own thread, in one hop.

    Every ``await conn.execute(...)`` hands a statement to aiosqlite's thread and waits
    for the event loop to be woken again; on a loaded machine each of those wake-ups may
    wait for a CPU, and their waits add up in the tail. Several statements that belong
    together (a whole write transaction, the three queries of a list page) go as one.
    ``_execute`` is aiosqlite's own queueing primitive (pinned version; a store test
    fails if it changes); it keeps the order of everything queued on the connection.
    """
    return await conn._execute(lambda: work(conn._conn))


def _scalar(row: sqlite3.Row | None) -> Any:
    """The first column of a row that a query always returns."""
    if row is None:
        raise StorageError("a query that always returns a row returned none")
    return row[0]


def _is_unique_violation(exc: sqlite3.IntegrityError) -> bool:
    return "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc)


class SqliteStore(Store):
    """:class:`Store` on one SQLite file (or ``:memory:``)."""

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "full",
        readers: int = 2,
        busy_timeout_ms: int = 10_000,
        inline_writes: bool = True,
    ) -> None:
        if synchronous.lower() not in _SYNCHRONOUS:
            raise StorageError(f"synchronous must be one of {sorted(_SYNCHRONOUS)}, not {synchronous!r}")
        self.path = str(path)
        self._memory = self.path == ":memory:" or self.path.startswith("file::memory:")
        self._synchronous = synchronous.upper()
        self._reader_count = 0 if self._memory else max(1, readers)
        self._busy_timeout_ms = busy_timeout_ms
        self._writer: aiosqlite.Connection | None = None
        self._readers: list[aiosqlite.Connection] = []
        self._pool: asyncio.Queue[aiosqlite.Connection] | None = None
        #: A reader on the event loop's own thread, for point reads (see :meth:`_fetch_point`).
        self._inline: sqlite3.Connection | None = None
        self._inline_thread = 0
        #: Small writes run on the event loop's thread (see :meth:`_writer_trip`); False: always on the
        #: writer's own thread. ``_loop_thread``: the thread that opened the store (its event loop's).
        self._inline_writes = inline_writes
        self._loop_thread = 0
        #: Calls handed to the writer's thread, and those it has finished (each counted by one thread
        #: only): equal when that thread is idle and the loop's thread may use the connection itself.
        self._writer_sent = 0
        self._writer_done = 0
        #: Inline writes pause until this time (monotonic s) after several in a row took too long (a
        #: slow disk); ``_slow_inline_writes`` counts that row.
        self._inline_paused_until = 0.0
        self._slow_inline_writes = 0
        #: Writer trips made so far, on either thread (tests and benchmarks count them).
        self.writer_trips = 0
        #: True while the process is busy with several things at once (``busy_when``).
        self._busy: Callable[[], bool] | None = None
        self._write_lock = asyncio.Lock()
        self._checkpointer: aiosqlite.Connection | None = None
        self._checkpoint_task: asyncio.Task | None = None
        self._checkpoint_wanted = asyncio.Event()
        self._commits_since_checkpoint = 0
        self._tx_var: ContextVar[_Tx | None] = ContextVar(f"sqlite_tx_{id(self)}", default=None)
        #: List counts by their shared part's condition: (list generation, count), least recent first.
        self._counts: dict[tuple, tuple[int, int]] = {}

    # -- connections --------------------------------------------------------------------
    async def _connect(self, *, writer: bool) -> aiosqlite.Connection:
        # The writer is used by the event loop's thread too (inline writes), never while its own
        # thread is busy with it: see _writer_trip.
        conn = await aiosqlite.connect(self.path, isolation_level=None, timeout=self._busy_timeout_ms / 1000,
                                       check_same_thread=not writer)
        conn.row_factory = sqlite3.Row
        if writer:
            self._track_writer_thread(conn)
        try:
            # Every PRAGMA is fetched to the end: one that answers a row and is left unread
            # stays an active statement on the connection and makes a later COMMIT fail.
            await conn.execute_fetchall(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            await conn.execute_fetchall("PRAGMA foreign_keys = ON")
            await conn.execute_fetchall(f"PRAGMA synchronous = {self._synchronous}")
            # The default 2 MB page cache cannot hold the list indexes of a large install.
            await conn.execute_fetchall(f"PRAGMA cache_size = -{CACHE_KIB}")
            if writer and not self._memory:
                answer = list(await conn.execute_fetchall("PRAGMA journal_mode = WAL"))
                mode = _scalar(answer[0] if answer else None)
                if mode.lower() != "wal":
                    raise StorageError(f"could not switch {self.path} to WAL mode (got {mode!r})")
                await conn.execute_fetchall("PRAGMA wal_autocheckpoint = 0")
                await conn.execute_fetchall(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
            if not writer:
                await conn.execute_fetchall("PRAGMA query_only = ON")
        except BaseException:
            await conn.close()
            raise
        return conn

    def _track_writer_thread(self, conn: aiosqlite.Connection) -> None:
        """Count every call handed to the writer's thread, and each it has finished (counted on that
        thread, when the call is over: a caller cancelled meanwhile does not end it). aiosqlite queues
        all of a connection's work through ``Connection._execute``, looked up at each call here."""
        def tracked(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Awaitable[Any]:
            self._writer_sent += 1

            def run() -> Any:
                try:
                    return fn(*args, **kwargs)
                finally:
                    self._writer_done += 1

            return aiosqlite.Connection._execute(conn, run)

        conn._execute = tracked  # type: ignore[method-assign, assignment]

    async def open(self, *, schema_version: int | None = None) -> None:
        """Connect, migrate to the latest schema (or ``schema_version``, for tests), open readers."""
        if self._writer is not None:
            return
        self._loop_thread = threading.get_ident()
        self._counts.clear()  # counted from another database, or from this one before a restore
        if not self._memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._writer = await self._connect(writer=True)
        try:
            await self._migrate(schema_version)
            self._readers = [await self._connect(writer=False) for _ in range(self._reader_count)]
            if not self._memory:
                self._checkpointer = await aiosqlite.connect(self.path, isolation_level=None)
                await self._checkpointer.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
                self._checkpoint_task = asyncio.create_task(self._checkpoint_loop(), name="sqlite-checkpoint")
        except BaseException:
            await self.close()
            raise
        if self._readers:  # without readers (":memory:") reads share the writer
            self._pool = asyncio.Queue()
            for reader in self._readers:
                self._pool.put_nowait(reader)
            self._inline, self._inline_thread = self._connect_inline(), threading.get_ident()
        if schema_version is None:
            await self.backfill_metrics()

    async def close(self) -> None:
        """Close the readers and the writer (checkpointing the WAL)."""
        task, self._checkpoint_task = self._checkpoint_task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            await checkpointer.close()
        readers, self._readers, self._pool = self._readers, [], None
        inline, self._inline = self._inline, None
        if inline is not None:
            inline.close()
        for reader in readers:
            await reader.close()
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                await writer.execute_fetchall("PRAGMA optimize")  # keeps the planner's statistics fresh
            except sqlite3.OperationalError as error:
                # Another process (a replica) writing just now: its own close refreshes them instead.
                log.info("PRAGMA optimize of %s skipped at close: %s", self.path, error)
            finally:
                await writer.close()

    def _require_open(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise StorageError("the store is not open; call await store.open() first")
        return self._writer

    # -- transactions --------------------------------------------------------------------
    def _current_tx(self) -> _Tx | None:
        tx = self._tx_var.get()
        # A task started inside a transaction inherits the context; it must not use it.
        if tx is not None and tx.active and tx.task is asyncio.current_task():
            return tx
        return None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """``BEGIN IMMEDIATE`` on the single writer; nested calls join the outer transaction.

        The BEGIN travels with the transaction's first statement (one trip to the writer's thread
        fewer), writes that answer nothing (``set_setting``, ``delete_settings``) with the next
        statement or the COMMIT; a transaction that ran no statement commits nothing."""
        outer = self._current_tx()
        if outer is not None:
            outer.depth += 1
            try:
                yield
            finally:
                outer.depth -= 1
            return
        writer = self._require_open()
        async with self._write_lock:
            # aiosqlite runs a connection's calls in order on one thread, and every path
            # below queues COMMIT or ROLLBACK before the lock is released, so the next
            # BEGIN always follows them, even when a task is cancelled mid-transaction.
            tx = _Tx(writer, asyncio.current_task())
            token = self._tx_var.set(tx)
            try:
                yield
            except BaseException:
                tx.active = False
                if tx.begun and not tx.finished:  # a last statement that failed rolled back with it
                    await self._rollback(writer, restore=tx.restore)
                raise
            else:
                tx.active = False
                queued = tx.take_queued()
                if tx.finished:
                    pass  # committed with its last statement (commit_with_next)
                elif tx.begun or queued:
                    # The writes still queued go with the COMMIT (and the BEGIN, if nothing ran yet).
                    begin, tx.begun = not tx.begun, True
                    await self._writer_trip(_finish(queued, begin=begin, relax=tx.begin_relaxed(begin),
                                                    restore=tx.restore),  # rolled back there if it fails
                                            syncs=tx.relaxed is None)
                    self._count_commit()
            finally:
                tx.active = False
                self._tx_var.reset(token)

    def commit_with_next(self) -> None:
        """The COMMIT goes with the outermost transaction's next write (any call that writes, answered
        or not), in its trip: one trip to the writer's thread fewer. After that write the transaction
        is over (committed, or rolled back if it failed), and any other statement in it is an error.
        Nested in another ``transaction()`` block, or outside one, a no-op."""
        tx = self._current_tx()
        if tx is not None and tx.depth == 1:
            tx.finishing = True

    def commit_without_sync(self) -> None:
        """The outermost transaction, not begun yet, commits at ``synchronous = NORMAL``: its COMMIT does
        not wait for the disk (≈3 ms and ≈0.2 ms of CPU for an fsync here); it is durable once the next
        synchronous commit (or checkpoint) has synced the WAL, and a power loss before that loses it
        whole, never half. Only for writes that something durable already written redoes after such a
        loss (a start's incident: its journal). A store opened at a lower level than FULL keeps its
        own; elsewhere (nested, begun, outside a transaction) a no-op."""
        tx = self._current_tx()
        if tx is not None and tx.depth == 1 and not tx.begun and self._synchronous in ("FULL", "EXTRA"):
            tx.relaxed = ("NORMAL", self._synchronous)

    @staticmethod
    def _still_open(tx: _Tx) -> None:
        if tx.finished:
            raise StorageError("this transaction was committed with its last statement (commit_with_next);"
                               " nothing may follow it")

    async def _begin(self, tx: _Tx) -> None:
        """Queue the transaction's BEGIN and its queued writes on their own (before aiosqlite-level
        statements, which must see them)."""
        self._still_open(tx)
        queued = tx.take_queued()
        if not tx.begun:
            tx.begun = True  # queued: it runs even if this task is cancelled while waiting
            if not queued and tx.relaxed is None:
                await self._writer_trip(_begin_immediate)
                return
            await self._writer_trip(_then(queued, lambda conn: None, begin=True, relax=tx.begin_relaxed(True)))
        elif queued:
            await self._writer_trip(_then(queued, lambda conn: None))

    async def _in_tx(self, tx: _Tx, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """``work`` inside the open transaction ``tx``, in one trip (with its BEGIN when it is the first,
        and after the writes queued before it; with the COMMIT too after ``commit_with_next``)."""
        self._still_open(tx)
        begin, tx.begun = not tx.begun, True  # queued with the work: it runs even if this task is cancelled
        if tx.finishing:
            # Marked before the trip: it commits or rolls back on the thread even if this task is cancelled.
            tx.finishing, tx.finished = False, True
            result = await self._writer_trip(_finish(tx.take_queued(), begin=begin, work=work,
                                                     relax=tx.begin_relaxed(begin), restore=tx.restore),
                                             syncs=tx.relaxed is None)
            self._count_commit()
            return cast(_T, result)
        return await self._writer_trip(_then(tx.take_queued(), work, begin=begin, relax=tx.begin_relaxed(begin)))

    async def _write_later(self, work: Callable[[sqlite3.Connection], None]) -> None:
        """A small write whose caller needs no answer: inside a transaction it is queued and goes with
        the transaction's next statement or its COMMIT (no trip of its own; an error it raises is
        raised there, and the whole transaction is rolled back as for any failed statement); outside
        one it is :meth:`_write`."""
        tx = self._current_tx()
        if tx is not None:
            self._still_open(tx)
            if tx.finishing:  # the last statement: it carries the COMMIT
                await self._in_tx(tx, work)
                return
            tx.queued.append(work)
            return
        await self._write(work)

    def _count_commit(self) -> None:
        self._commits_since_checkpoint += 1
        if self._commits_since_checkpoint >= CHECKPOINT_EVERY:
            self._commits_since_checkpoint = 0
            self._checkpoint_wanted.set()

    async def _rollback(self, writer: aiosqlite.Connection, *, restore: str | None = None) -> None:
        try:
            await writer.execute("ROLLBACK")
        except sqlite3.OperationalError:
            # Some errors (disk full, I/O) make SQLite roll back by itself; keep the original error.
            log.debug("ROLLBACK after an automatic rollback", exc_info=True)
        finally:
            if restore is not None:
                await writer.execute(f"PRAGMA synchronous = {restore}")

    async def _checkpoint_loop(self) -> None:
        assert self._checkpointer is not None
        while True:
            await self._checkpoint_wanted.wait()
            self._checkpoint_wanted.clear()
            try:
                await self._checkpointer.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                # A failed checkpoint loses nothing (the WAL still holds every commit); try next time.
                log.warning("WAL checkpoint of %s failed", self.path, exc_info=True)

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self.transaction():
            tx = self._current_tx()
            assert tx is not None
            await self._begin(tx)
            yield tx.conn

    def busy_when(self, probe: Callable[[], bool]) -> None:
        self._busy = probe

    async def _writer_trip(self, work: Callable[[sqlite3.Connection], _T], *, syncs: bool = False) -> _T:
        """``work`` with the writer's connection: a small write of a transaction (a few statements, all
        of them prepared and cached), on the event loop's own thread when it may, else on the writer's.

        A trip to the writer's thread costs ≈90 µs of CPU (a hand-off, waking the loop again, and the
        GIL passed back and forth around every statement while the loop runs other work); a start makes
        four. The statements themselves take microseconds and their COMMIT's fsync well under a
        millisecond on a local disk, so the loop runs them itself, unless:

        - the writer's thread is still busy with this connection (work queued before, e.g. by a caller
          cancelled meanwhile): the work queues behind it, in order;
        - another process holds the write lock (a replica): the loop never waits for a lock (busy
          timeout 0); only a BEGIN can meet one, so nothing of the work ran, and it goes to the writer's
          thread, which waits for the lock as every write did;
        - ``syncs`` (the work commits, and the commit waits for the disk) while the process is busy with
          several things at once (``busy_when``: several requests in flight): the loop serves the others
          while the writer's thread waits for the disk, instead of waiting itself;
        - ``INLINE_SLOW_WRITES`` inline writes in a row took longer than ``INLINE_WRITE_BUDGET_S`` each (a
          slow disk, not a hiccup): every write goes to the writer's thread for ``INLINE_PAUSE_S``, so a
          slow fsync never holds the loop for long;
        - the store was made with ``inline_writes=False``, or is used from another thread.
        """
        self.writer_trips += 1
        writer = self._require_open()
        if (self._inline_writes and self._writer_sent == self._writer_done
                and threading.get_ident() == self._loop_thread and time.monotonic() >= self._inline_paused_until
                and not (syncs and self._busy is not None and self._synchronous in ("FULL", "EXTRA") and self._busy())):
            raw = writer._conn
            started = time.perf_counter()
            raw.execute("PRAGMA busy_timeout = 0")
            try:
                return work(raw)
            except sqlite3.OperationalError as error:
                if not _is_busy(error) or raw.in_transaction:
                    raise
                log.debug("%s is locked by another connection; this write waits on the writer's thread", self.path)
            finally:
                raw.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
                elapsed = time.perf_counter() - started
                if elapsed <= INLINE_WRITE_BUDGET_S:
                    self._slow_inline_writes = 0
                else:
                    self._slow_inline_writes += 1
                    if self._slow_inline_writes >= INLINE_SLOW_WRITES:
                        self._slow_inline_writes = 0
                        self._inline_paused_until = time.monotonic() + INLINE_PAUSE_S
                        log.info("%d writes in a row to %s took over %.0f ms each on the event loop (the last "
                                 "%.1f ms); writes go to the writer's thread for the next %d s", INLINE_SLOW_WRITES,
                                 self.path, INLINE_WRITE_BUDGET_S * 1000, elapsed * 1000, INLINE_PAUSE_S)
        return await _on_thread(writer, work)

    async def _write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """A small write (a few statements) in one trip to the writer, BEGIN and COMMIT included.

        ``transaction()`` costs a hop per statement plus two (BEGIN, COMMIT); each hop is a
        thread hand-off and an event-loop wake-up, which is most of a small write's CPU. Inside an
        outer ``transaction()`` the work joins it (still one hop). Cancelling the caller leaves the
        work queued: it still commits or rolls back before anything queued after it."""
        tx = self._current_tx()
        if tx is not None:
            return await self._in_tx(tx, work)
        self._require_open()
        async with self._write_lock:
            result = await self._writer_trip(lambda conn: _in_transaction(conn, work), syncs=True)
            self._count_commit()
        return result

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[aiosqlite.Connection]:
        tx = self._current_tx()
        if tx is not None:
            await self._begin(tx)
            yield tx.conn  # read our own uncommitted writes (and lock out other processes' writers)
            return
        writer = self._require_open()
        if self._pool is None:
            async with self._write_lock:
                yield writer
            return
        pool = self._pool  # close() drops it: a read still in flight then gives its reader back to this one
        conn = await pool.get()
        try:
            yield conn
        finally:
            pool.put_nowait(conn)

    def _connect_inline(self) -> sqlite3.Connection:
        """The event loop's own reader: never waits for a lock (a busy database sends its reads to the
        reader threads, which do), reads only, and keeps a small cache (it reads a few pages a time)."""
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=0)
        conn.row_factory = sqlite3.Row
        try:
            for pragma in ("busy_timeout = 0", "query_only = ON", f"cache_size = -{INLINE_CACHE_KIB}"):
                conn.execute(f"PRAGMA {pragma}").fetchall()
        except BaseException:
            conn.close()
            raise
        return conn

    async def _fetch_point(self, sql: str, params: Sequence = ()) -> list[sqlite3.Row]:
        """A point read: a few rows by key (an incident, a playbook, a setting), on the event loop's own
        thread. Such a query takes microseconds, while a trip to a reader thread and back (a hand-off and
        an event-loop wake-up) costs ≈80 µs of CPU — several per start. Inside a transaction it reads the
        transaction's own writes (:meth:`_fetchall`); when the database is busy (WAL recovery, another
        process's exclusive lock) the read goes to a reader thread, which waits for it as every read did."""
        conn = self._inline
        if conn is not None and self._inline_thread == threading.get_ident() and self._current_tx() is None:
            try:
                return conn.execute(sql, params).fetchall()  # fetched to the end: no read transaction left open
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) and "busy" not in str(error):
                    raise
        return await self._fetchall(sql, params)

    async def _fetchone(self, sql: str, params: Sequence = ()) -> sqlite3.Row | None:
        rows = await self._fetchall(sql, params)
        return rows[0] if rows else None

    async def _fetchall(self, sql: str, params: Sequence = ()) -> list[sqlite3.Row]:
        # execute_fetchall is one round trip to aiosqlite's thread instead of three.
        async with self._reading() as conn:
            return list(await conn.execute_fetchall(sql, params))

    # -- migrations ------------------------------------------------------------------------
    async def _migrate(self, target: int | None) -> None:
        writer = self._require_open()
        pending = migrations.load("sqlite")
        latest = len(pending)
        target = latest if target is None else target
        async with self._write_lock:
            await writer.execute("BEGIN IMMEDIATE")
            try:
                await writer.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
                )
                async with writer.execute("SELECT coalesce(max(version), 0) FROM schema_migrations") as cur:
                    current = _scalar(await cur.fetchone())
                if current > latest:
                    raise StorageError(
                        f"the database {self.path} has schema version {current}, newer than this"
                        f" version of Command Center knows ({latest}); upgrade Command Center"
                    )
                for migration in pending[current:target]:
                    for statement in migration.statements:
                        await writer.execute(statement)
                    await writer.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                        (migration.version, migration.name, int(time.time() * 1000)),
                    )
                await writer.execute("COMMIT")
            except BaseException:
                await writer.execute("ROLLBACK")
                raise

    async def schema_version(self) -> int:
        return int(_scalar(await self._fetchone("SELECT coalesce(max(version), 0) FROM schema_migrations")))

    # -- playbooks ---------------------------------------------------------------------------
    async def _write_members(self, conn: aiosqlite.Connection, playbook: Playbook) -> None:
        await conn.execute("DELETE FROM playbook_members WHERE playbook_id = ?", (playbook.id,))
        await conn.executemany(
            "INSERT INTO playbook_members (playbook_id, user_id, position) VALUES (?, ?, ?)",
            [(playbook.id, user_id, pos) for pos, user_id in enumerate(dict.fromkeys(playbook.member_ids))],
        )

    async def create_playbook(self, playbook: Playbook) -> Playbook:
        async with self._writing() as conn:
            try:
                await conn.execute(
                    "INSERT INTO playbooks (id, team_id, title, description, create_public_channel,"
                    " created_by, created_at, updated_at, version, stages, default_commander_id, updates,"
                    " invited_user_ids, auto_follower_ids, webhooks, fields, retro)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        playbook.id,
                        playbook.team_id,
                        playbook.title,
                        playbook.description,
                        int(playbook.create_public_channel),
                        playbook.created_by,
                        playbook.created_at,
                        playbook.updated_at,
                        playbook.version,
                        _stages_json(playbook.stages),
                        playbook.default_commander_id,
                        _updates_json(playbook.updates),
                        _ids_json(playbook.invited_user_ids),
                        _ids_json(playbook.auto_follower_ids),
                        _webhooks_json(playbook.webhooks),
                        _fields_json(playbook.fields),
                        _retro_json(playbook.retro),
                    ),
                )
            except sqlite3.IntegrityError as exc:
                if _is_unique_violation(exc):
                    raise Conflict("A playbook with this id already exists.") from exc
                raise
            await self._write_members(conn, playbook)
        return playbook

    async def get_playbook(self, playbook_id: str) -> Playbook | None:
        rows = await self._fetch_point(f"{_PLAYBOOK_SELECT} WHERE p.id = ?", (playbook_id,))
        row = rows[0] if rows else None
        return _playbook_from_row(row) if row else None

    async def update_playbook(self, playbook: Playbook, *, expected_version: int | None = None) -> Playbook:
        expected = playbook.version if expected_version is None else expected_version
        async with self._writing() as conn:
            cursor = await conn.execute(
                "UPDATE playbooks SET title = ?, description = ?, create_public_channel = ?, stages = ?,"
                " default_commander_id = ?, updates = ?, invited_user_ids = ?, auto_follower_ids = ?, webhooks = ?,"
                " fields = ?, retro = ?, updated_at = ?, version = ? WHERE id = ? AND version = ?",
                (
                    playbook.title,
                    playbook.description,
                    int(playbook.create_public_channel),
                    _stages_json(playbook.stages),
                    playbook.default_commander_id,
                    _updates_json(playbook.updates),
                    _ids_json(playbook.invited_user_ids),
                    _ids_json(playbook.auto_follower_ids),
                    _webhooks_json(playbook.webhooks),
                    _fields_json(playbook.fields),
                    _retro_json(playbook.retro),
                    playbook.updated_at,
                    expected + 1,
                    playbook.id,
                    expected,
                ),
            )
            if cursor.rowcount != 1:
                await self._explain_missed_update(conn, "playbooks", playbook.id, "playbook")
            await self._write_members(conn, playbook)
        return playbook.model_copy(update={"version": expected + 1})

    async def _explain_missed_update(self, conn: aiosqlite.Connection, table: str, row_id: str, noun: str) -> None:
        async with conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (row_id,)) as cursor:
            exists = await cursor.fetchone() is not None
        if exists:
            raise Conflict(f"Someone else changed this {noun} at the same time. Look at it again and retry.")
        raise NotFound(f"This {noun} no longer exists.")

    async def delete_playbook(self, playbook_id: str, *, expected_version: int | None = None) -> bool:
        async with self._writing() as conn:
            if expected_version is None:
                cursor = await conn.execute("DELETE FROM playbooks WHERE id = ?", (playbook_id,))
                return cursor.rowcount == 1
            cursor = await conn.execute(
                "DELETE FROM playbooks WHERE id = ? AND version = ?", (playbook_id, expected_version)
            )
            if cursor.rowcount == 1:
                return True
            async with conn.execute("SELECT 1 FROM playbooks WHERE id = ?", (playbook_id,)) as check:
                if await check.fetchone() is not None:
                    raise Conflict("Someone else changed this playbook at the same time. Look at it again and retry.")
            return False

    async def playbooks_for_user(self, team_id: str, user_id: str, *, is_admin: bool = False) -> list[Playbook]:
        order = " ORDER BY p.title COLLATE NOCASE, p.id"
        if is_admin:
            rows = await self._fetch_point(f"{_PLAYBOOK_SELECT} WHERE p.team_id = ?{order}", (team_id,))
        else:  # a team's playbooks: a few dozen rows at most, by index
            rows = await self._fetch_point(
                f"{_PLAYBOOK_SELECT} WHERE p.team_id = ? AND p.id IN"
                f" (SELECT playbook_id FROM playbook_members WHERE user_id = ?){order}",
                (team_id, user_id),
            )
        return [_playbook_from_row(row) for row in rows]

    # -- incidents -----------------------------------------------------------------------------
    async def create_incident(self, incident: Incident, events: Sequence[TimelineEvent] = (), *,
                              conflict_at_commit: bool = False) -> Incident:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"INSERT INTO incidents ({_INCIDENT_COLUMNS}) VALUES"
                f" ({', '.join('?' * _INCIDENT_COLUMN_COUNT)})",
                (
                    incident.id,
                    incident.team_id,
                    incident.channel_id,
                    incident.name,
                    incident.description,
                    incident.commander_id,
                    incident.creator_id,
                    incident.playbook_id,
                    incident.playbook_title,
                    incident.active_stage,
                    incident.status.value,
                    incident.created_at,
                    incident.ended_at,
                    incident.source_post_id,
                    incident.card_post_id,
                    int(incident.public),
                    incident.version,
                    _incident_stages_json(incident.stages),
                    incident.stage_set_at,
                    incident.restarted_at,
                    incident.last_update_at,
                    incident.last_update_by,
                    incident.last_update_post_id,
                    incident.next_update_due_at,
                    incident.update_requested_at,
                    _updates_json(incident.updates),
                    _ids_json(incident.follower_ids),
                    _webhooks_json(incident.webhooks),
                    _fields_json(incident.fields),
                    _values_json(incident.field_values),
                    _retro_json(incident.retro),
                    None if incident.retro_status is None else incident.retro_status.value,
                    incident.retro_text,
                    incident.retro_published_at,
                    incident.retro_by,
                ),
            )
            if events:
                conn.executemany(_INSERT_EVENT, _event_params(events))
            _advance_summaries(conn, events, incident, new=True)

        def insert(conn: sqlite3.Connection) -> None:
            try:
                work(conn)
            except sqlite3.IntegrityError as exc:
                if _is_unique_violation(exc):
                    raise Conflict("This channel already has an incident.") from exc
                raise

        if conflict_at_commit:
            # Inside a transaction it goes with the next statement or the COMMIT (a start's incident and
            # its listeners' writes: one trip), and a Conflict is raised from there; outside one it is a
            # write of its own.
            await self._write_later(insert)
        else:
            await self._write(insert)
        return incident

    async def get_incident(self, incident_id: str) -> Incident | None:
        rows = await self._fetch_point(f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE id = ?", (incident_id,))
        row = rows[0] if rows else None
        return _incident_from_row(row) if row else None

    async def incident_by_channel(self, channel_id: str) -> Incident | None:
        rows = await self._fetch_point(f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE channel_id = ?", (channel_id,))
        return _incident_from_row(rows[0]) if rows else None

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

        def work(conn: sqlite3.Connection) -> bool:
            if conn.execute(sql, params).rowcount != 1:
                return False
            if events:
                conn.executemany(_INSERT_EVENT, _event_params(events))
            _advance_summaries(conn, events, incident)
            return True

        if not await self._write(work):
            async with self._reading() as conn:
                await self._explain_missed_update(conn, "incidents", incident.id, "incident")
        return incident.model_copy(update={"version": expected + 1})

    async def mutate_incident(
        self, incident_id: str, operation: IncidentOperation, *, retries: int = 5
    ) -> tuple[Incident, list[TimelineEvent]]:
        """Load, apply and save in one trip to the writer's thread (see :func:`_on_thread`).

        The load is inside the ``BEGIN IMMEDIATE`` transaction, so no other writer can
        come between it and the save: the version check cannot fail and nothing is retried.
        Inside an outer ``transaction()`` it joins that transaction, still in one trip.
        """
        tx = self._current_tx()
        if tx is not None:
            saved, events, _ = await self._in_tx(tx, lambda conn: _apply(conn, incident_id, operation))
            return saved, events
        self._require_open()
        async with self._write_lock:
            # Cancelling the caller leaves the work queued: it still commits or rolls back
            # before anything queued after it, exactly like a cancelled transaction().
            saved, events, wrote = await self._writer_trip(lambda conn: _mutate(conn, incident_id, operation),
                                                           syncs=True)
            if wrote:
                self._count_commit()
        return saved, events

    async def delete_incident(self, incident_id: str) -> bool:
        async with self._writing() as conn:
            cursor = await conn.execute("DELETE FROM incidents WHERE id = ?", (incident_id,))
            return cursor.rowcount == 1

    def _cached_count(self, query: IncidentQuery) -> tuple[_Count, tuple[int, int] | None, bool]:
        """The count plan for ``query``, its cached shared part if any, and whether to cache the result.

        Inside a transaction the reads see its uncommitted writes (and a rollback would take the
        generation back), and an overdue list's parameter is the time it is asked at: neither is cached.
        """
        count = _Count.of(query)
        if self._current_tx() is not None or query.overdue_at is not None:
            return count, None, False
        return count, self._counts.get(count.key), True

    def _remember_count(self, count: _Count, generation: int, shared: int) -> None:
        counts = self._counts
        counts.pop(count.key, None)
        counts[count.key] = (generation, shared)
        while len(counts) > COUNT_CACHE_SIZE:
            del counts[next(iter(counts))]  # the least recently counted

    async def incidents_page(self, query: IncidentQuery) -> Page:
        condition, params = _list_condition(query)
        order = _SORTS[query.sort]
        per_page, offset = query.per_page, query.offset
        count, cached, cacheable = self._cached_count(query)

        def work(conn: sqlite3.Connection) -> tuple[tuple[int, int, int], list[sqlite3.Row]]:
            counted = _count_incidents(conn, count, cached)
            # Choose the page from the covering indexes first, then read only its rows:
            # sorting full rows would drag every stages document through the sorter.
            rowids = [row[0] for row in conn.execute(
                f"SELECT rowid FROM incidents WHERE {condition} ORDER BY {order} LIMIT ? OFFSET ?",
                [*params, per_page, offset],
            )]
            if not rowids:
                return counted, []
            by_rowid = {row["rowid"]: row for row in conn.execute(
                f"SELECT rowid, {_INCIDENT_COLUMNS} FROM incidents WHERE rowid IN (SELECT value FROM json_each(?))",
                (json.dumps(rowids),),
            )}
            return counted, [by_rowid[r] for r in rowids if r in by_rowid]

        async with self._reading() as conn:
            (generation, shared, total), rows = await _on_thread(conn, work)  # count, page and rows in one hop
        if cacheable:
            self._remember_count(count, generation, shared)
        return Page([_incident_from_row(row) for row in rows], total)

    async def incident_refs_page(self, query: IncidentQuery) -> RefPage:
        condition, params = _list_condition(query)
        order = _SORTS[query.sort]
        per_page, offset = query.per_page, query.offset
        count, cached, cacheable = self._cached_count(query)

        def work(conn: sqlite3.Connection) -> tuple[tuple[int, int, int], list[tuple]]:
            counted = _count_incidents(conn, count, cached)
            # Every column here is in the list indexes (0005 added id): the walk never reads a table row.
            refs = conn.execute(
                f"SELECT id, team_id, channel_id, public FROM incidents WHERE {condition}"
                f" ORDER BY {order} LIMIT ? OFFSET ?",
                [*params, per_page, offset],
            ).fetchall()
            return counted, refs

        async with self._reading() as conn:
            (generation, shared, total), rows = await _on_thread(conn, work)
        if cacheable:
            self._remember_count(count, generation, shared)
        return RefPage([IncidentRef(row[0], row[1], row[2], bool(row[3])) for row in rows], total)

    async def incidents_by_ids(self, incident_ids: Sequence[str]) -> list[Incident]:
        wanted = list(dict.fromkeys(incident_ids))
        if not wanted:
            return []
        rows = await self._fetchall(
            f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(wanted),),
        )
        by_id = {row["id"]: row for row in rows}
        return [_incident_from_row(by_id[i]) for i in incident_ids if i in by_id]

    async def incidents_without_card(self, limit: int = 100) -> list[Incident]:
        rows = await self._fetchall(
            f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE card_post_id IS NULL ORDER BY created_at LIMIT ?",
            (limit,),
        )
        return [_incident_from_row(row) for row in rows]

    async def incidents_with_open_steps_of(self, team_id: str, user_id: str, *,
                                           limit: int = 100) -> list[Incident]:
        # incidents_list_status (team_id, status, created_at, …) picks the team's ongoing incidents,
        # newest first; instr() skips, without parsing it, every stages document that does not name
        # the user as an assignee (steps are stored without defaults: an open step has no "state").
        rows = await self._fetchall(
            f"SELECT {_INCIDENT_COLUMNS} FROM incidents"
            " WHERE team_id = ? AND status = 'ongoing' AND instr(stages, ?) > 0"
            " AND EXISTS (SELECT 1 FROM json_each(stages) AS stage, json_each(stage.value, '$.steps') AS step"
            "             WHERE json_extract(step.value, '$.assignee_id') = ?"
            "             AND coalesce(json_extract(step.value, '$.state'), 'open') = 'open')"
            " ORDER BY created_at DESC, id DESC LIMIT ?",
            (team_id, f'"assignee_id":{json.dumps(user_id)}', user_id, limit),
        )
        return [_incident_from_row(row) for row in rows]

    async def timeline(self, incident_id: str) -> list[TimelineEvent]:
        rows = await self._fetchall(
            "SELECT id, incident_id, at, kind, actor_id, details FROM timeline_events"
            " WHERE incident_id = ? ORDER BY seq",
            (incident_id,),
        )
        return [_event_from_row(row) for row in rows]

    async def events_about(self, incident_id: str, subject_id: str) -> list[TimelineEvent]:
        rows = await self._fetch_point(
            "SELECT id, incident_id, at, kind, actor_id, details FROM timeline_events"
            " WHERE incident_id = ? AND subject_id = ? ORDER BY seq",
            (incident_id, subject_id),
        )
        return [_event_from_row(row) for row in rows]

    async def append_events(self, events: Sequence[TimelineEvent]) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.executemany(_INSERT_EVENT, _event_params(events))
            _advance_summaries(conn, events)

        try:
            await self._write(work)
        except sqlite3.IntegrityError as exc:
            if "FOREIGN KEY" in str(exc):
                raise NotFound("This incident no longer exists.") from exc
            raise

    # -- metrics summaries ---------------------------------------------------------------------------
    async def incident_summary(self, incident_id: str) -> MetricsSummary | None:
        row = await self._fetchone("SELECT summary FROM incident_metrics WHERE incident_id = ?", (incident_id,))
        return MetricsSummary.model_validate_json(row[0]) if row else None

    async def metrics_rows(self, team_id: str, *, since: int, playbook_id: str | None = None) -> list[MetricsRow]:
        # The index incident_metrics_stats holds every column read: no table row is visited, and in its
        # order no sort is needed. The rows are read as plain tuples and made into MetricsRows on the
        # reader's thread, in one hop.
        sql = f"SELECT {_METRICS_COLUMNS} FROM incident_metrics WHERE team_id = ? AND created_at >= ?"
        params: list[Any] = [team_id, since]
        if playbook_id is not None:
            sql += " AND playbook_id = ?"
            params.append(playbook_id)

        def work(conn: sqlite3.Connection) -> list[MetricsRow]:
            cursor = conn.cursor()
            cursor.row_factory = None
            return [MetricsRow(i, t, p, c, bool(public), s, at, r)
                    for i, t, p, c, public, s, at, r in cursor.execute(sql, params)]

        async with self._reading() as conn:
            return await _on_thread(conn, work)

    async def incidents_without_summary(self, limit: int = 100) -> list[str]:
        rows = await self._fetchall(
            "SELECT id FROM incidents WHERE NOT EXISTS"
            " (SELECT 1 FROM incident_metrics m WHERE m.incident_id = incidents.id) ORDER BY created_at, id LIMIT ?",
            (limit,),
        )
        return [row[0] for row in rows]

    async def save_summary(self, incident: Incident, summary: MetricsSummary) -> None:
        values = _summary_values(incident, summary)

        def work(conn: sqlite3.Connection) -> None:
            conn.execute(_UPSERT_METRICS, values)

        try:
            await self._write(work)
        except sqlite3.IntegrityError as exc:
            if "FOREIGN KEY" in str(exc):
                raise NotFound("This incident no longer exists.") from exc
            raise

    # -- settings -------------------------------------------------------------------------------
    async def get_setting(self, key: str) -> str | None:
        rows = await self._fetch_point("SELECT value FROM settings WHERE key = ?", (key,))
        row = rows[0] if rows else None
        return row[0] if row else None

    async def set_setting(self, key: str, value: str) -> None:
        params = (key, value, int(time.time() * 1000))
        await self._write_later(lambda conn: conn.execute(
            "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            params).close())

    async def delete_setting(self, key: str, *, if_value: str | None = None) -> bool:
        sql = "DELETE FROM settings WHERE key = ?"
        params: tuple[str, ...] = (key,)
        if if_value is not None:
            sql, params = sql + " AND value = ?", (key, if_value)
        return await self._write(lambda conn: conn.execute(sql, params).rowcount > 0)

    async def delete_settings(self, keys: Mapping[str, str | None]) -> None:
        entries = [(key, value) for key, value in keys.items()]

        def work(conn: sqlite3.Connection) -> None:
            for key, if_value in entries:
                if if_value is None:
                    conn.execute("DELETE FROM settings WHERE key = ?", (key,)).close()
                else:
                    conn.execute("DELETE FROM settings WHERE key = ? AND value = ?", (key, if_value)).close()

        await self._write_later(work)

    async def settings_with_prefix(self, prefix: str) -> dict[str, str]:
        # A prefix of exactly these characters: LIKE would ignore ASCII case.
        rows = await self._fetchall("SELECT key, value FROM settings WHERE substr(key, 1, ?) = ? ORDER BY key",
                                    (len(prefix), prefix))
        return {row[0]: row[1] for row in rows}

    async def setting_or_default(self, key: str, default: str) -> str:
        now = int(time.time() * 1000)

        def work(conn: sqlite3.Connection) -> str:
            conn.execute("INSERT OR IGNORE INTO settings (key, value, updated_at) VALUES (?, ?, ?)",
                         (key, default, now))
            # Fetched to the end: a statement left mid-result would block the COMMIT.
            return str(_scalar(conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()))

        return await self._write(work)

    # -- single-use keys --------------------------------------------------------------------------
    async def claim_single_use(self, kind: str, key: str, *, expires_at: int, now: int) -> bool:
        return await self._write(lambda conn: _claim_key(conn, kind, key, expires_at, now))

    async def claim_single_use_or_fail(self, kind: str, key: str, *, expires_at: int, now: int,
                                       taken: Callable[[], BaseException]) -> None:
        def work(conn: sqlite3.Connection) -> None:
            if not _claim_key(conn, kind, key, expires_at, now):
                raise taken()

        # Inside a transaction: queued, it goes with the next statement or the COMMIT (a start's
        # dialog key, journal and name claim are one trip); a refusal rolls all of it back there.
        await self._write_later(work)

    async def release_single_use(self, kind: str, key: str) -> bool:
        async with self._writing() as conn:
            cursor = await conn.execute("DELETE FROM single_use_keys WHERE kind = ? AND key = ?", (kind, key))
            return cursor.rowcount > 0

    async def prune_single_use(self, now: int, *, max_entries: int) -> int:
        async with self._writing() as conn:
            cursor = await conn.execute("DELETE FROM single_use_keys WHERE expires_at < ?", (now,))
            deleted = max(0, cursor.rowcount)
            async with conn.execute("SELECT count(*) FROM single_use_keys") as counted:
                excess = int(_scalar(await counted.fetchone())) - max(0, max_entries)
            if excess > 0:
                cursor = await conn.execute(
                    "DELETE FROM single_use_keys WHERE (kind, key) IN"
                    " (SELECT kind, key FROM single_use_keys ORDER BY expires_at LIMIT ?)", (excess,))
                deleted += max(0, cursor.rowcount)
            return deleted

    # -- scheduled jobs ---------------------------------------------------------------------------
    async def insert_job(self, job: Job) -> Job:
        kind, key, now = job.kind, job.key, job.created_at
        params = (job.id, kind, key, job.incident_id, job.due_at, payload_json(job.payload), now)

        def work(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE jobs SET state = 'cancelled', finished_at = ?, token = NULL, last_error = 'rescheduled'"
                         " WHERE kind = ? AND key = ? AND state = 'pending'", (now, kind, key))
            conn.execute("INSERT INTO jobs (id, kind, key, incident_id, due_at, payload, state, created_at)"
                         " VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)", params)

        try:
            await self._write(work)
        except sqlite3.IntegrityError as exc:
            if _is_unique_violation(exc):
                raise Conflict("A job with this id already exists.") from exc
            raise
        return job

    async def get_job(self, job_id: str) -> Job | None:
        row = await self._fetchone(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return _job_from_row(row) if row else None

    async def list_jobs(
        self,
        *,
        kind: str | None = None,
        key: str | None = None,
        incident_id: str | None = None,
        states: Collection[JobState] | None = None,
    ) -> list[Job]:
        where, params = ["1"], []
        for column, value in (("kind", kind), ("key", key), ("incident_id", incident_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if states is not None and len(set(states)) == 1:
            # One state, written as a literal: the partial indexes (e.g. jobs_pending_key) then serve the query.
            where.append(f"state = '{JobState(next(iter(states))).value}'")
        elif states is not None:
            where.append("state IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(sorted(JobState(state).value for state in states)))
        rows = await self._fetchall(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE {' AND '.join(where)} ORDER BY due_at, id", params)
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
        kind_sql, kind_params = _kinds_condition(kinds)
        # One statement: the due jobs are chosen and claimed together, inside BEGIN IMMEDIATE, so no
        # other writer (thread or process) can claim any of them in between.
        sql = (
            "UPDATE jobs SET state = 'claimed', claimed_by = ?, token = lower(hex(randomblob(16))),"
            " lease_until = ?, attempts = attempts + 1, late = (late OR due_at <= ?)"
            " WHERE id IN (SELECT id FROM ("
            f"   SELECT id, due_at FROM jobs WHERE state = 'pending' AND due_at <= ? AND {kind_sql}"
            "    UNION ALL"
            f"   SELECT id, due_at FROM jobs WHERE state = 'claimed' AND lease_until <= ? AND {kind_sql}"
            " ) ORDER BY due_at, id LIMIT ?)"
            f" RETURNING {_JOB_COLUMNS}"
        )
        params = [owner, now + lease_ms, now - late_ms, now, *kind_params, now, *kind_params, limit]
        rows = await self._write(lambda conn: conn.execute(sql, params).fetchall())
        return sorted((_job_from_row(row) for row in rows), key=lambda job: (job.due_at, job.id))

    async def begin_job_delivery(self, job_id: str, token: str, *, now: int) -> bool:
        return await self._write(lambda conn: conn.execute(
            "UPDATE jobs SET delivery_started_at = coalesce(delivery_started_at, ?)"
            " WHERE id = ? AND token = ? AND state = 'claimed' AND lease_until > ?",
            (now, job_id, token, now)).rowcount == 1)

    async def finish_job(
        self, job_id: str, token: str, *, now: int, state: JobState = JobState.DONE, error: str | None = None
    ) -> bool:
        state = JobState(state)
        if state not in (JobState.DONE, JobState.FAILED, JobState.CANCELLED):
            raise ValueError(f"a job is finished as done, failed or cancelled, not {state}")
        fired_at = now if state is JobState.DONE else None
        return await self._write(lambda conn: conn.execute(
            "UPDATE jobs SET state = ?, fired_at = coalesce(?, fired_at), finished_at = ?, token = NULL,"
            " lease_until = NULL, last_error = coalesce(?, last_error)"
            " WHERE id = ? AND token = ? AND state = 'claimed'",
            (state.value, fired_at, now, short_error(error), job_id, token)).rowcount == 1)

    async def retry_job(self, job_id: str, token: str, *, due_at: int, now: int, error: str | None = None) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            rows = conn.execute("SELECT kind, key FROM jobs WHERE id = ? AND token = ? AND state = 'claimed'",
                                (job_id, token)).fetchall()
            if not rows:
                return False
            superseded = conn.execute("SELECT 1 FROM jobs WHERE kind = ? AND key = ? AND state = 'pending'",
                                      (rows[0][0], rows[0][1])).fetchall()
            if superseded:
                conn.execute("UPDATE jobs SET state = 'cancelled', finished_at = ?, token = NULL, lease_until = NULL,"
                             " last_error = 'rescheduled' WHERE id = ?", (now, job_id))
            else:
                conn.execute("UPDATE jobs SET state = 'pending', due_at = ?, token = NULL, lease_until = NULL,"
                             " claimed_by = NULL, delivery_started_at = NULL, last_error = ? WHERE id = ?",
                             (due_at, short_error(error), job_id))
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
            condition, params = "id = ?", [job_id]
        elif incident_id is not None:
            condition, params = "incident_id = ?", [incident_id]
        else:
            condition, params = "kind = ? AND key = ?", [kind or "", key or ""]
        sql = (f"UPDATE jobs SET state = 'cancelled', finished_at = ?, token = NULL, lease_until = NULL"
               f" WHERE {condition} AND state IN (?, ?)")
        return await self._write(lambda conn: conn.execute(sql, [now, *params, *_LIVE_STATES]).rowcount)

    async def next_job_time(self, kinds: Collection[str] | None = None, *, not_claimed_by: str | None = None) -> int | None:
        if kinds is not None and not kinds:
            return None
        kind_sql, kind_params = _kinds_condition(kinds)
        row = await self._fetchone(
            "SELECT min(t) FROM ("
            f" SELECT min(due_at) AS t FROM jobs WHERE state = 'pending' AND {kind_sql}"
            " UNION ALL"
            f" SELECT min(lease_until) FROM jobs WHERE state = 'claimed' AND {kind_sql}"
            "  AND claimed_by IS NOT ?)",
            [*kind_params, *kind_params, not_claimed_by])
        return None if row is None or row[0] is None else int(row[0])

    async def prune_jobs(self, before: int, *, states: Collection[JobState] | None = None,
                         limit: int | None = None) -> int:
        wanted = sorted(finished_states(states))
        if not wanted or (limit is not None and limit < 1):
            return 0
        marks = ", ".join("?" * len(wanted))
        # The index's own condition is repeated word for word: SQLite uses the partial index
        # jobs_finished only when the query's WHERE contains it.
        chosen = ("SELECT id FROM jobs INDEXED BY jobs_finished WHERE state IN ('done', 'cancelled', 'failed')"
                  f" AND state IN ({marks}) AND finished_at < ? ORDER BY finished_at LIMIT ?")
        return await self._write(lambda conn: conn.execute(
            f"DELETE FROM jobs WHERE id IN ({chosen})", (*wanted, before, -1 if limit is None else limit)).rowcount)

    # -- alerts -------------------------------------------------------------------------------------
    async def record_alerts(self, source: str, alerts: Sequence[tuple[AlertIn, GroupTouch | None]], *,
                            now: int) -> list[AlertRecord]:
        def work(conn: sqlite3.Connection) -> list[AlertRecord]:
            seqs: dict[str, int] = {}
            for alert, group in alerts:
                if group is not None and group.id not in seqs:
                    seqs[group.id] = conn.execute(
                        "INSERT INTO alert_groups (id, source, group_key, rule, channel_id, mode, first_seen, last_seen,"
                        " notifications, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, 1)"
                        " ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, channel_id = excluded.channel_id,"
                        " notifications = notifications + 1, seq = seq + 1 RETURNING seq",
                        (group.id, group.source, group.group_key, group.rule, group.channel_id, group.mode.value,
                         now, now)).fetchone()[0]
                seq = seqs[group.id] if group is not None else 0
                is_resolved = alert.status is AlertStatus.RESOLVED
                conn.execute(
                    f"INSERT INTO alerts ({_ALERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)"
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
                    (source, alert.fingerprint, group.id if group else "", alert.status.value, alert.title, alert.url,
                     now, now, now if is_resolved else None, seq, seq if is_resolved else None,
                     json.dumps({"labels": dict(alert.labels), "annotations": dict(alert.annotations)},
                                separators=(",", ":"))))
            found: list[AlertRecord] = []
            for alert, _ in alerts:
                row = conn.execute(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE source = ? AND fingerprint = ?",
                                   (source, alert.fingerprint)).fetchone()
                found.append(_alert_from_row(row))
            return found

        return await self._write(work)

    async def get_alert(self, source: str, fingerprint: str) -> AlertRecord | None:
        row = await self._fetchone(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE source = ? AND fingerprint = ?",
                                   (source, fingerprint))
        return _alert_from_row(row) if row else None

    async def count_alerts(self, source: str | None = None) -> int:
        if source is None:
            row = await self._fetchone("SELECT count(*) FROM alerts")
        else:
            row = await self._fetchone("SELECT count(*) FROM alerts WHERE source = ?", (source,))
        return int(_scalar(row))

    async def alerts_of_group(self, group_id: str, *, limit: int = 1000) -> list[AlertRecord]:
        rows = await self._fetchall(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE group_id = ?"
                                    " ORDER BY first_seen, fingerprint LIMIT ?", (group_id, max(0, limit)))
        return [_alert_from_row(row) for row in rows]

    async def get_alert_group(self, group_id: str) -> AlertGroup | None:
        row = await self._fetchone(f"SELECT {_GROUP_COLUMNS} FROM alert_groups WHERE id = ?", (group_id,))
        return _group_from_row(row) if row else None

    async def alert_groups_with_news(self, channel_id: str, *, limit: int = 100) -> list[AlertGroup]:
        rows = await self._fetchall(f"SELECT {_GROUP_COLUMNS} FROM alert_groups WHERE channel_id = ?"
                                    " AND seq > posted_seq ORDER BY first_seen, id LIMIT ?",
                                    (channel_id, max(0, limit)))
        return [_group_from_row(row) for row in rows]

    async def alert_groups_posted_since(self, channel_id: str, since: int) -> int:
        row = await self._fetchone("SELECT count(*) FROM alert_groups WHERE channel_id = ? AND created_post_at >= ?",
                                   (channel_id, since))
        return int(_scalar(row))

    async def save_alert_group_posted(self, posted: GroupPosted) -> bool:
        return await self._write(lambda conn: conn.execute(
            "UPDATE alert_groups SET posted_seq = max(posted_seq, ?), state = ?, post_id = ?, incident_id = ?,"
            " created_post_at = ?, posted_at = ?, last_error = ? WHERE id = ?",
            (posted.posted_seq, posted.state.value, posted.post_id, posted.incident_id, posted.created_post_at,
             posted.posted_at, posted.last_error, posted.id)).rowcount > 0)

    # -- maintenance ------------------------------------------------------------------------------
    # -- leases ---------------------------------------------------------------------------------
    async def acquire_lease(self, name: str, holder: str, *, now: int, ttl_ms: int) -> Lease | None:
        check_lease_args(name, holder, ttl_ms)
        # One statement, inside BEGIN IMMEDIATE: the row is taken only where the WHERE holds.
        sql = ("INSERT INTO leases (name, holder, epoch, expires_at) VALUES (?, ?, 1, ?)"
               " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, epoch = leases.epoch + 1,"
               " expires_at = excluded.expires_at"
               " WHERE leases.expires_at <= ? OR leases.holder = excluded.holder"
               " RETURNING name, holder, epoch, expires_at")
        params = (name, holder, now + ttl_ms, now)
        # Fetched to the end: a RETURNING statement left mid-result would block the COMMIT.
        rows = await self._write(lambda conn: conn.execute(sql, params).fetchall())
        return Lease(*rows[0]) if rows else None

    async def renew_lease(self, name: str, holder: str, epoch: int, *, now: int, ttl_ms: int) -> Lease | None:
        check_lease_args(name, holder, ttl_ms)
        sql = ("UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND epoch = ?"
               " RETURNING name, holder, epoch, expires_at")
        params = (now + ttl_ms, name, holder, epoch)
        # Fetched to the end: a RETURNING statement left mid-result would block the COMMIT.
        rows = await self._write(lambda conn: conn.execute(sql, params).fetchall())
        return Lease(*rows[0]) if rows else None

    async def release_lease(self, name: str, holder: str, epoch: int) -> bool:
        check_lease_args(name, holder)
        params = (name, holder, epoch)
        return await self._write(lambda conn: conn.execute(
            "UPDATE leases SET expires_at = 0 WHERE name = ? AND holder = ? AND epoch = ?", params).rowcount > 0)

    async def get_lease(self, name: str) -> Lease | None:
        row = await self._fetchone("SELECT name, holder, epoch, expires_at FROM leases WHERE name = ?", (name,))
        return Lease(*row) if row else None

    # -- backstage credentials --------------------------------------------------------------------
    async def add_credential(self, credential: WebCredential) -> None:
        c = credential

        def work(conn: sqlite3.Connection) -> None:
            inserted = conn.execute(
                f"INSERT OR IGNORE INTO web_credentials ({CREDENTIAL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (c.id, c.token_hash, c.kind.value, c.user_id, c.name, c.csrf, c.created_at, c.expires_at)).rowcount
            if inserted != 1:
                raise Conflict("credential already stored")

        await self._write(work)

    async def credential_by_hash(self, token_hash: str, *, now: int) -> WebCredential | None:
        row = await self._fetchone(f"SELECT {CREDENTIAL_COLUMNS} FROM web_credentials WHERE token_hash = ?"
                                   " AND (expires_at = 0 OR expires_at > ?)", (token_hash, now))
        return credential_from_row(row) if row else None

    async def credentials_of(self, user_id: str, kind: CredentialKind) -> list[WebCredential]:
        rows = await self._fetchall(f"SELECT {CREDENTIAL_COLUMNS} FROM web_credentials WHERE user_id = ?"
                                    " AND kind = ? ORDER BY created_at, id", (user_id, kind.value))
        return [credential_from_row(row) for row in rows]

    async def delete_credential(self, credential_id: str, *, user_id: str) -> bool:
        async with self._writing() as conn:
            cursor = await conn.execute("DELETE FROM web_credentials WHERE id = ? AND user_id = ?",
                                        (credential_id, user_id))
            return cursor.rowcount > 0

    async def prune_credentials(self, now: int) -> int:
        async with self._writing() as conn:
            cursor = await conn.execute("DELETE FROM web_credentials WHERE expires_at <> 0 AND expires_at <= ?",
                                        (now,))
            return max(0, cursor.rowcount)

    async def incident_version(self, incident_id: str) -> int | None:
        rows = await self._fetch_point("SELECT version FROM incidents WHERE id = ?", (incident_id,))
        row = rows[0] if rows else None
        return int(row[0]) if row else None

    async def checkpoint(self) -> None:
        """Copy the whole WAL into the database file and truncate it (e.g. after a bulk import)."""
        async with self._write_lock:
            # Fetched to the end: a statement left mid-result stays active on the writer
            # (aiosqlite's thread keeps the last result alive) and would block the next COMMIT.
            await self._require_open().execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)")

    async def integrity_check(self) -> list[str]:
        """SQLite's ``PRAGMA integrity_check`` result lines (``["ok"]`` when healthy)."""
        rows = await self._fetchall("PRAGMA integrity_check")
        return [row[0] for row in rows]
