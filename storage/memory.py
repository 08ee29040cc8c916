"""The in-memory backend: a complete :class:`Store` kept in Python structures, for fast tests.

It keeps SQLite's semantics (the same store suite runs on both): the same uniqueness rules
(one incident per channel, ids, single-use keys), conditional updates by version, the same
list order (ties broken by insertion order, like SQLite's rowid; names compared ignoring
ASCII case only, like ``COLLATE NOCASE`` and ``LIKE``) and paging.

Atomicity: one writer at a time (an asyncio lock, shared by every store on the same
database). A single call does all its checks before it changes anything and never
awaits while changing, so it is whole or absent. ``transaction()`` works on a copy of the
data (each container is copied on its first write) and puts it in place on commit, so other
tasks keep reading the last committed state, as WAL readers do. Every call yields to the
event loop once before it starts, as a real backend does, so code that only works because a
store call never suspends is not hidden by this one.

Copies: stored models are rebuilt (validated) on write, so a caller cannot keep a handle on
anything stored; incidents and playbooks are frozen and hold only tuples, so they are shared
on read (like the SQLite backend's parse cache); event details (dicts) are kept as JSON and
parsed anew on every read.

``memory://`` is a private database; ``memory://NAME`` is shared by every store opened
on NAME in this process while one of them exists (e.g. to reopen it). Nothing survives
the process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import secrets
import string
import weakref
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

from domain.alerts import AlertGroup, AlertIn, AlertRecord, AlertStatus, GroupPosted, GroupTouch
from domain.errors import Conflict, NotFound
from domain.metrics import MetricsRow, MetricsSummary, advance, start_summary, summarize
from domain.models import CredentialKind, Incident, Playbook, TimelineEvent, WebCredential
from domain.timeline import subject_of
from domain.todo import has_open_step_of

from . import migrations
from .base import (
    IncidentOperation,
    IncidentQuery,
    IncidentRef,
    IncidentSort,
    Page,
    RefPage,
    StorageError,
    Store,
)
from .jobs import FINISHED, LIVE, Job, JobState, check_selector, finished_states, short_error
from .leases import Lease, check_lease_args

#: ``COLLATE NOCASE`` and ``LIKE`` fold ASCII letters only.
_ASCII_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)

#: What ``update_incident`` writes; the rest (id, team, channel, creator, creation time) stays as created.
_MUTABLE_INCIDENT_FIELDS: set[str] = {
    "name", "description", "commander_id", "playbook_id", "playbook_title", "active_stage", "status",
    "ended_at", "source_post_id", "card_post_id", "public", "stages", "stage_set_at", "restarted_at",
    "last_update_at", "last_update_by", "last_update_post_id", "next_update_due_at", "update_requested_at",
    "updates", "follower_ids", "fields", "field_values", "retro", "retro_status", "retro_text",
    "retro_published_at", "retro_by",
}
#: What ``update_playbook`` writes (and the members).
_MUTABLE_PLAYBOOK_FIELDS: set[str] = {
    "title", "description", "create_public_channel", "stages", "updated_at", "updates", "invited_user_ids",
    "default_commander_id", "auto_follower_ids", "webhooks", "fields", "retro",
}


def _fold(text: str) -> str:
    return text.translate(_ASCII_FOLD)


@dataclass(frozen=True, slots=True)
class _Event:
    """A stored timeline event: the event without details, and its details as JSON."""

    event: TimelineEvent
    details: str
    subject: str | None = None  #: what the event is about (domain/timeline.py subject_of)

    def read(self) -> TimelineEvent:
        return self.event.model_copy(update={"details": json.loads(self.details)})


@dataclass(frozen=True, slots=True)
class _Row:
    """A stored incident and its insertion number (SQLite's rowid: it breaks ties in every order)."""

    rowid: int
    incident: Incident


class _Data:
    """Everything a database holds. Containers are copied on their first write after :meth:`fork`."""

    _CONTAINERS = ("playbooks", "incidents", "by_channel", "timelines", "event_ids", "settings", "single_use",
                   "jobs", "alerts", "alert_groups", "summaries", "leases", "credentials")

    def __init__(self) -> None:
        self.playbooks: dict[str, Playbook] = {}
        self.incidents: dict[str, _Row] = {}
        self.by_channel: dict[str, str] = {}
        self.timelines: dict[str, list[_Event]] = {}
        self.event_ids: set[str] = set()
        self.settings: dict[str, str] = {}
        self.single_use: dict[tuple[str, str], int] = {}
        self.jobs: dict[str, Job] = {}  # Job is frozen: a change replaces the entry
        self.alerts: dict[tuple[str, str], AlertRecord] = {}  # frozen too
        self.alert_groups: dict[str, AlertGroup] = {}
        self.summaries: dict[str, _Summary] = {}  # incident id -> its metrics row and summary (both frozen)
        self.leases: dict[str, Lease] = {}  # Lease is frozen too
        self.credentials: dict[str, WebCredential] = {}  # by id; frozen too
        self.rowids = itertools.count(1)
        self._owned = set(self._CONTAINERS)
        self._owned_timelines: set[str] | None = None  # None: every timeline list is this copy's own

    def fork(self) -> _Data:
        """A copy sharing every container until it writes one (``rowids`` is shared: numbers only grow)."""
        copy = _Data.__new__(_Data)
        for name in self._CONTAINERS:
            setattr(copy, name, getattr(self, name))
        copy.rowids = self.rowids
        copy._owned = set()
        copy._owned_timelines = set()
        return copy

    def own(self) -> None:
        """Called when this copy becomes the committed state: the one it was forked from is dropped."""
        self._owned = set(self._CONTAINERS)
        self._owned_timelines = None

    def _writable(self, name: str) -> Any:
        if name not in self._owned:
            setattr(self, name, getattr(self, name).copy())
            self._owned.add(name)
        return getattr(self, name)

    # Writable views of each container (copied first if shared with the committed state).
    def w_playbooks(self) -> dict[str, Playbook]:
        return self._writable("playbooks")

    def w_incidents(self) -> dict[str, _Row]:
        return self._writable("incidents")

    def w_by_channel(self) -> dict[str, str]:
        return self._writable("by_channel")

    def w_timelines(self) -> dict[str, list[_Event]]:
        return self._writable("timelines")

    def w_timeline(self, incident_id: str) -> list[_Event]:
        """The incident's timeline to append to (copied first if shared with the committed state)."""
        timelines = self.w_timelines()
        events = timelines.get(incident_id)
        if events is None:
            events = timelines[incident_id] = []
        elif self._owned_timelines is not None and incident_id not in self._owned_timelines:
            events = timelines[incident_id] = events.copy()
        if self._owned_timelines is not None:
            self._owned_timelines.add(incident_id)
        return events

    def w_event_ids(self) -> set[str]:
        return self._writable("event_ids")

    def w_settings(self) -> dict[str, str]:
        return self._writable("settings")

    def w_single_use(self) -> dict[tuple[str, str], int]:
        return self._writable("single_use")

    def w_jobs(self) -> dict[str, Job]:
        return self._writable("jobs")

    def w_alerts(self) -> dict[tuple[str, str], AlertRecord]:
        return self._writable("alerts")

    def w_alert_groups(self) -> dict[str, AlertGroup]:
        return self._writable("alert_groups")

    def w_summaries(self) -> dict[str, _Summary]:
        return self._writable("summaries")


    def w_leases(self) -> dict[str, Lease]:
        return self._writable("leases")

    def w_credentials(self) -> dict[str, WebCredential]:
        return self._writable("credentials")

@dataclass(frozen=True, slots=True)
class _Summary:
    """An incident's metrics summary and the row stats read (what SQLite's incident_metrics holds)."""

    row: MetricsRow
    summary: MetricsSummary


def _summary_of(incident: Incident, summary: MetricsSummary, severity: str | None) -> _Summary:
    row = MetricsRow(incident_id=incident.id, team_id=incident.team_id, playbook_id=incident.playbook_id,
                     channel_id=incident.channel_id, public=incident.public, severity=severity,
                     created_at=incident.created_at, resolve_ms=summary.resolve_ms)
    return _Summary(row, summary)


def _advance_summaries(
    data: _Data, events: Sequence[TimelineEvent], incident: Incident | None = None, *, new: bool = False
) -> None:
    """After ``events`` are appended: advance the summary of every incident they belong to, and follow
    ``incident`` (as just written) in the descriptive fields; a missing summary is computed from the
    whole timeline (see the SQLite backend's ``_advance_summaries``)."""
    by_incident: dict[str, list[TimelineEvent]] = {}
    if incident is not None:
        by_incident[incident.id] = []
    for event in events:
        by_incident.setdefault(event.incident_id, []).append(event)
    for incident_id, own in by_incident.items():
        subject = incident if incident is not None and incident.id == incident_id else None
        fresh = new and subject is not None
        stored = None if fresh else data.summaries.get(incident_id)
        if subject is None:
            row = data.incidents.get(incident_id)
            if row is None:
                continue
            subject = row.incident
            if stored is not None:  # the incident did not change: keep what was written with it
                subject = subject.model_copy(update={"playbook_id": stored.row.playbook_id,
                                                     "public": stored.row.public})
        severity = stored.row.severity if stored is not None and subject is not incident else subject.severity
        if fresh:
            summary = advance(start_summary(subject.created_at), own)
        elif stored is None:
            summary = summarize(subject.created_at, [e.read() for e in data.timelines.get(incident_id, ())])
        else:
            summary = advance(stored.summary, own)
        updated = _summary_of(subject, summary, severity)
        if stored is None or updated != stored:
            data.w_summaries()[incident_id] = updated


@dataclass
class _Tx:
    """The write transaction a task is running: its working copy of the data."""

    data: _Data
    task: asyncio.Task | None
    active: bool = True


class _Database:
    """The committed data, the writers' lock and the running transaction: shared by every store on it."""

    def __init__(self) -> None:
        self.data = _Data()
        self.lock = asyncio.Lock()
        self.tx_var: ContextVar[_Tx | None] = ContextVar(f"memory_tx_{id(self)}", default=None)


_NAMED: weakref.WeakValueDictionary[str, _Database] = weakref.WeakValueDictionary()


def _database(name: str) -> _Database:
    if not name:
        return _Database()
    database = _NAMED.get(name)
    if database is None:
        database = _NAMED[name] = _Database()
    return database


# -- canonical copies (what SQLite's write-then-parse gives) ------------------------------------------
def _stored_incident(incident: Incident) -> Incident:
    return Incident.model_validate(incident.model_dump())


def _stored_playbook(playbook: Playbook) -> Playbook:
    fields = playbook.model_dump(exclude={"member_ids"})
    fields["member_ids"] = tuple(dict.fromkeys(playbook.member_ids))
    return Playbook.model_validate(fields)


def _stored_events(data: _Data, events: Sequence[TimelineEvent], new_incident: str | None = None) -> list[_Event]:
    """The events as stored, after every check (Conflict for a known event id, NotFound for a missing incident)."""
    stored = []
    seen: set[str] = set()
    for event in events:
        if event.id in data.event_ids or event.id in seen:
            raise Conflict("A timeline event with this id is already recorded.")
        if event.incident_id != new_incident and event.incident_id not in data.incidents:
            raise NotFound("This incident no longer exists.")
        seen.add(event.id)
        details = json.dumps(event.details, separators=(",", ":"))
        bare = TimelineEvent.model_validate({**event.model_dump(exclude={"details"}), "details": {}})
        stored.append(_Event(bare, details, subject_of(event)))
    return stored


def _append(data: _Data, events: Iterable[_Event]) -> None:
    ids = data.w_event_ids()
    for stored in events:
        data.w_timeline(stored.event.incident_id).append(stored)
        ids.add(stored.event.id)


def _save_incident(
    data: _Data, incident: Incident, events: Sequence[TimelineEvent], expected: int
) -> Incident:
    """``update_incident`` on ``data``: the version check, then the write (nothing if a check fails)."""
    row = data.incidents.get(incident.id)
    if row is None:
        raise NotFound("This incident no longer exists.")
    if row.incident.version != expected:
        raise Conflict("Someone else changed this incident at the same time. Look at it again and retry.")
    fields = row.incident.model_dump()
    fields.update(incident.model_dump(include=_MUTABLE_INCIDENT_FIELDS), version=expected + 1)
    stored = Incident.model_validate(fields)
    new_events = _stored_events(data, events)
    data.w_incidents()[incident.id] = _Row(row.rowid, stored)
    _append(data, new_events)
    _advance_summaries(data, events, incident)
    return incident.model_copy(update={"version": expected + 1})


def _sorted_rows(rows: list[_Row], sort: IncidentSort) -> list[_Row]:
    if sort in (IncidentSort.NAME_ASC, IncidentSort.NAME_DESC):
        return sorted(rows, key=lambda r: (_fold(r.incident.name), r.rowid), reverse=sort is IncidentSort.NAME_DESC)
    return sorted(rows, key=lambda r: (r.incident.created_at, r.rowid), reverse=sort is IncidentSort.CREATED_DESC)


def _select(data: _Data, query: IncidentQuery) -> tuple[int, list[Incident]]:
    """The total and the page of incidents ``query`` selects."""
    needle = _fold(query.search) if query.search else None
    rows = [
        row for row in data.incidents.values()
        if (i := row.incident).team_id == query.team_id
        and (query.is_admin or i.public or i.channel_id in query.viewer_channel_ids)
        and (query.status is None or i.status is query.status)
        and (query.commander_id is None or i.commander_id == query.commander_id)
        and (query.playbook_id is None or i.playbook_id == query.playbook_id)
        and (query.overdue_at is None or (i.is_ongoing and i.next_update_due_at is not None
                                          and i.next_update_due_at <= query.overdue_at))
        and (needle is None or needle in _fold(i.name))
        and all(i.field_values.get(field_id) == value for field_id, value in query.field_values)
    ]
    page = _sorted_rows(rows, query.sort)[query.offset:query.offset + query.per_page]
    return len(rows), [row.incident for row in page]


class MemoryStore(Store):
    """:class:`Store` in this process's memory (see the module's documentation)."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._db = _database(name)
        self._open = False

    # -- lifecycle and transactions --------------------------------------------------------------
    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    async def schema_version(self) -> int:
        """The latest schema version: the data is always in the current shape."""
        await self._read()
        return len(migrations.load("sqlite"))

    def _require_open(self) -> _Database:
        if not self._open:
            raise StorageError("the store is not open; call await store.open() first")
        return self._db

    def _current_tx(self) -> _Tx | None:
        tx = self._db.tx_var.get()
        # A task started inside a transaction inherits the context; it must not use it.
        if tx is not None and tx.active and tx.task is asyncio.current_task():
            return tx
        return None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """One writer at a time, on a copy of the data that replaces it on commit; nested calls join."""
        if self._current_tx() is not None:
            yield
            return
        db = self._require_open()
        await asyncio.sleep(0)  # a scheduling point, like every call (see the module's documentation)
        async with db.lock:
            tx = _Tx(db.data.fork(), asyncio.current_task())
            token = db.tx_var.set(tx)
            try:
                yield
                tx.data.own()
                db.data = tx.data  # commit
            finally:
                tx.active = False
                db.tx_var.reset(token)

    async def _read(self) -> _Data:
        """The data a read sees: the transaction's own (uncommitted) writes, or the last commit."""
        db = self._require_open()
        await asyncio.sleep(0)
        tx = self._current_tx()
        return tx.data if tx is not None else db.data

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[_Data]:
        """The data to change: the running transaction's, or the committed data under the writers' lock."""
        db = self._require_open()
        await asyncio.sleep(0)
        tx = self._current_tx()
        if tx is not None:
            yield tx.data
            return
        async with db.lock:
            yield db.data

    # -- playbooks -----------------------------------------------------------------------------
    async def create_playbook(self, playbook: Playbook) -> Playbook:
        stored = _stored_playbook(playbook)
        async with self._writing() as data:
            if playbook.id in data.playbooks:
                raise Conflict("A playbook with this id already exists.")
            data.w_playbooks()[playbook.id] = stored
        return playbook

    async def get_playbook(self, playbook_id: str) -> Playbook | None:
        return (await self._read()).playbooks.get(playbook_id)

    async def update_playbook(self, playbook: Playbook, *, expected_version: int | None = None) -> Playbook:
        expected = playbook.version if expected_version is None else expected_version
        async with self._writing() as data:
            current = data.playbooks.get(playbook.id)
            if current is None:
                raise NotFound("This playbook no longer exists.")
            if current.version != expected:
                raise Conflict("Someone else changed this playbook at the same time. Look at it again and retry.")
            fields = current.model_dump()
            fields.update(playbook.model_dump(include=_MUTABLE_PLAYBOOK_FIELDS),
                          member_ids=tuple(dict.fromkeys(playbook.member_ids)), version=expected + 1)
            data.w_playbooks()[playbook.id] = Playbook.model_validate(fields)
        return playbook.model_copy(update={"version": expected + 1})

    async def delete_playbook(self, playbook_id: str, *, expected_version: int | None = None) -> bool:
        async with self._writing() as data:
            current = data.playbooks.get(playbook_id)
            if current is None:
                return False
            if expected_version is not None and current.version != expected_version:
                raise Conflict("Someone else changed this playbook at the same time. Look at it again and retry.")
            del data.w_playbooks()[playbook_id]
            return True

    async def playbooks_for_user(self, team_id: str, user_id: str, *, is_admin: bool = False) -> list[Playbook]:
        data = await self._read()
        found = [p for p in data.playbooks.values()
                 if p.team_id == team_id and (is_admin or user_id in p.member_ids)]
        return sorted(found, key=lambda p: (_fold(p.title), p.id))

    # -- incidents -------------------------------------------------------------------------------
    async def create_incident(self, incident: Incident, events: Sequence[TimelineEvent] = (), *,
                              conflict_at_commit: bool = False) -> Incident:
        stored = _stored_incident(incident)
        async with self._writing() as data:
            if incident.id in data.incidents or incident.channel_id in data.by_channel:
                raise Conflict("This channel already has an incident.")
            new_events = _stored_events(data, events, new_incident=incident.id)
            data.w_incidents()[incident.id] = _Row(next(data.rowids), stored)
            data.w_by_channel()[incident.channel_id] = incident.id
            _append(data, new_events)
            _advance_summaries(data, events, incident, new=True)
        return incident

    async def get_incident(self, incident_id: str) -> Incident | None:
        row = (await self._read()).incidents.get(incident_id)
        return row.incident if row else None

    async def incident_by_channel(self, channel_id: str) -> Incident | None:
        data = await self._read()
        incident_id = data.by_channel.get(channel_id)
        return data.incidents[incident_id].incident if incident_id is not None else None

    async def update_incident(
        self,
        incident: Incident,
        events: Sequence[TimelineEvent] = (),
        *,
        expected_version: int | None = None,
        previous: Incident | None = None,
    ) -> Incident:
        expected = incident.version if expected_version is None else expected_version
        async with self._writing() as data:
            return _save_incident(data, incident, events, expected)

    async def mutate_incident(
        self, incident_id: str, operation: IncidentOperation, *, retries: int = 5
    ) -> tuple[Incident, list[TimelineEvent]]:
        """Load, apply and save while holding the writers' lock: no other writer can come between."""
        async with self._writing() as data:
            row = data.incidents.get(incident_id)
            if row is None:
                raise NotFound("This incident no longer exists.")
            current = row.incident
            updated, events = operation(current)
            if not events and updated == current:
                return current, []
            if updated.id != current.id:
                raise StorageError("an incident operation must not change the incident's id")
            return _save_incident(data, updated, events, current.version), list(events)

    async def delete_incident(self, incident_id: str) -> bool:
        async with self._writing() as data:
            row = data.incidents.get(incident_id)
            if row is None:
                return False
            del data.w_incidents()[incident_id]
            del data.w_by_channel()[row.incident.channel_id]
            data.w_summaries().pop(incident_id, None)
            dropped = data.w_timelines().pop(incident_id, [])
            if dropped:
                data.w_event_ids().difference_update(stored.event.id for stored in dropped)
            return True

    async def incidents_page(self, query: IncidentQuery) -> Page:
        total, items = _select(await self._read(), query)
        return Page(items, total)

    async def incident_refs_page(self, query: IncidentQuery) -> RefPage:
        total, items = _select(await self._read(), query)
        return RefPage([IncidentRef(i.id, i.team_id, i.channel_id, i.public) for i in items], total)

    async def incidents_with_open_steps_of(self, team_id: str, user_id: str, *,
                                           limit: int = 100) -> list[Incident]:
        found = [row.incident for row in (await self._read()).incidents.values()
                 if row.incident.team_id == team_id and has_open_step_of(row.incident, user_id)]
        found.sort(key=lambda i: (i.created_at, i.id), reverse=True)
        return found if limit < 0 else found[:limit]

    async def incidents_by_ids(self, incident_ids: Sequence[str]) -> list[Incident]:
        incidents = (await self._read()).incidents
        return [incidents[i].incident for i in incident_ids if i in incidents]

    async def incidents_without_card(self, limit: int = 100) -> list[Incident]:
        rows = [row for row in (await self._read()).incidents.values() if row.incident.card_post_id is None]
        rows.sort(key=lambda r: (r.incident.created_at, r.rowid))
        return [row.incident for row in (rows if limit < 0 else rows[:limit])]  # SQLite: a negative LIMIT is none

    async def timeline(self, incident_id: str) -> list[TimelineEvent]:
        return [stored.read() for stored in (await self._read()).timelines.get(incident_id, ())]

    async def events_about(self, incident_id: str, subject_id: str) -> list[TimelineEvent]:
        return [stored.read() for stored in (await self._read()).timelines.get(incident_id, ())
                if stored.subject == subject_id]

    async def append_events(self, events: Sequence[TimelineEvent]) -> None:
        async with self._writing() as data:
            _append(data, _stored_events(data, events))
            _advance_summaries(data, events)

    # -- metrics summaries -------------------------------------------------------------------------
    async def incident_summary(self, incident_id: str) -> MetricsSummary | None:
        stored = (await self._read()).summaries.get(incident_id)
        return stored.summary if stored is not None else None

    async def metrics_rows(self, team_id: str, *, since: int, playbook_id: str | None = None) -> list[MetricsRow]:
        rows = [stored.row for stored in (await self._read()).summaries.values()
                if stored.row.team_id == team_id and stored.row.created_at >= since
                and (playbook_id is None or stored.row.playbook_id == playbook_id)]
        return sorted(rows, key=lambda row: (row.created_at, row.incident_id))

    async def incidents_without_summary(self, limit: int = 100) -> list[str]:
        data = await self._read()
        rows = [row.incident for row in data.incidents.values() if row.incident.id not in data.summaries]
        rows.sort(key=lambda i: (i.created_at, i.id))
        return [i.id for i in rows[:limit]]

    async def save_summary(self, incident: Incident, summary: MetricsSummary) -> None:
        async with self._writing() as data:
            if incident.id not in data.incidents:
                raise NotFound("This incident no longer exists.")
            data.w_summaries()[incident.id] = _summary_of(incident, summary, incident.severity)

    # -- settings ----------------------------------------------------------------------------------
    async def get_setting(self, key: str) -> str | None:
        return (await self._read()).settings.get(key)

    async def set_setting(self, key: str, value: str) -> None:
        async with self._writing() as data:
            data.w_settings()[key] = value

    async def delete_setting(self, key: str, *, if_value: str | None = None) -> bool:
        async with self._writing() as data:
            current = data.settings.get(key)
            if current is None or (if_value is not None and current != if_value):
                return False
            del data.w_settings()[key]
            return True

    async def delete_settings(self, keys: Mapping[str, str | None]) -> None:
        async with self._writing() as data:
            for key, if_value in keys.items():
                current = data.settings.get(key)
                if current is not None and (if_value is None or current == if_value):
                    del data.w_settings()[key]

    async def settings_with_prefix(self, prefix: str) -> dict[str, str]:
        settings = (await self._read()).settings
        return {key: settings[key] for key in sorted(settings) if key.startswith(prefix)}

    async def setting_or_default(self, key: str, default: str) -> str:
        async with self._writing() as data:
            current = data.settings.get(key)
            if current is None:
                current = data.w_settings()[key] = default
            return current

    # -- single-use keys ---------------------------------------------------------------------------
    # -- leases -----------------------------------------------------------------------------------
    async def acquire_lease(self, name: str, holder: str, *, now: int, ttl_ms: int) -> Lease | None:
        check_lease_args(name, holder, ttl_ms)
        async with self._writing() as data:
            current = data.leases.get(name)
            if current is not None and current.expires_at > now and current.holder != holder:
                return None
            lease = Lease(name, holder, (current.epoch if current else 0) + 1, now + ttl_ms)
            data.w_leases()[name] = lease
            return lease

    async def renew_lease(self, name: str, holder: str, epoch: int, *, now: int, ttl_ms: int) -> Lease | None:
        check_lease_args(name, holder, ttl_ms)
        async with self._writing() as data:
            current = data.leases.get(name)
            if current is None or current.holder != holder or current.epoch != epoch:
                return None
            lease = dataclasses.replace(current, expires_at=now + ttl_ms)
            data.w_leases()[name] = lease
            return lease

    async def release_lease(self, name: str, holder: str, epoch: int) -> bool:
        check_lease_args(name, holder)
        async with self._writing() as data:
            current = data.leases.get(name)
            if current is None or current.holder != holder or current.epoch != epoch:
                return False
            data.w_leases()[name] = dataclasses.replace(current, expires_at=0)
            return True

    async def get_lease(self, name: str) -> Lease | None:
        return (await self._read()).leases.get(name)

    # -- backstage credentials --------------------------------------------------------------------
    async def add_credential(self, credential: WebCredential) -> None:
        async with self._writing() as data:
            if credential.id in data.credentials or any(
                    c.token_hash == credential.token_hash for c in data.credentials.values()):
                raise Conflict("credential already stored")
            data.w_credentials()[credential.id] = credential

    async def credential_by_hash(self, token_hash: str, *, now: int) -> WebCredential | None:
        for credential in (await self._read()).credentials.values():
            if credential.token_hash == token_hash and (credential.expires_at == 0 or credential.expires_at > now):
                return credential
        return None

    async def credentials_of(self, user_id: str, kind: CredentialKind) -> list[WebCredential]:
        found = [c for c in (await self._read()).credentials.values() if c.user_id == user_id and c.kind == kind]
        return sorted(found, key=lambda c: (c.created_at, c.id))

    async def delete_credential(self, credential_id: str, *, user_id: str) -> bool:
        async with self._writing() as data:
            credential = data.credentials.get(credential_id)
            if credential is None or credential.user_id != user_id:
                return False
            del data.w_credentials()[credential_id]
            return True

    async def prune_credentials(self, now: int) -> int:
        async with self._writing() as data:
            expired = [c.id for c in data.credentials.values() if c.expires_at and c.expires_at <= now]
            for credential_id in expired:
                del data.w_credentials()[credential_id]
            return len(expired)

    async def incident_version(self, incident_id: str) -> int | None:
        row = (await self._read()).incidents.get(incident_id)
        return row.incident.version if row else None

    async def claim_single_use(self, kind: str, key: str, *, expires_at: int, now: int) -> bool:
        async with self._writing() as data:
            recorded = data.single_use.get((kind, key))
            if recorded is not None and recorded >= now:
                return False
            data.w_single_use()[(kind, key)] = expires_at
            return True

    async def release_single_use(self, kind: str, key: str) -> bool:
        async with self._writing() as data:
            if (kind, key) not in data.single_use:
                return False
            del data.w_single_use()[(kind, key)]
            return True

    async def prune_single_use(self, now: int, *, max_entries: int) -> int:
        async with self._writing() as data:
            kept = sorted((expires_at, kind_key) for kind_key, expires_at in data.single_use.items()
                          if expires_at >= now)
            excess = max(0, len(kept) - max(0, max_entries))
            kept = kept[excess:]  # the soonest-expiring go first (ties by kind, then key, like SQLite's index)
            deleted = len(data.single_use) - len(kept)
            if deleted:
                keys = data.w_single_use()
                keys.clear()
                keys.update((kind_key, expires_at) for expires_at, kind_key in kept)
            return deleted

    # -- scheduled jobs (SQLite's semantics: storage/sqlite.py) --------------------------------------
    async def insert_job(self, job: Job) -> Job:
        kind, key, now = job.kind, job.key, job.created_at
        async with self._writing() as data:
            if job.id in data.jobs:
                raise Conflict("A job with this id already exists.")
            jobs = data.w_jobs()
            for old in _pending_with_key(data, kind, key):
                jobs[old.id] = _finished(old, JobState.CANCELLED, now, error="rescheduled")
            jobs[job.id] = job
        return _copy(job)

    async def get_job(self, job_id: str) -> Job | None:
        job = (await self._read()).jobs.get(job_id)
        return _copy(job) if job else None

    async def list_jobs(
        self,
        *,
        kind: str | None = None,
        key: str | None = None,
        incident_id: str | None = None,
        states: Collection[JobState] | None = None,
    ) -> list[Job]:
        wanted = None if states is None else {JobState(state) for state in states}
        found = [job for job in (await self._read()).jobs.values()
                 if (kind is None or job.kind == kind) and (key is None or job.key == key)
                 and (incident_id is None or job.incident_id == incident_id)
                 and (wanted is None or job.state in wanted)]
        return [_copy(job) for job in sorted(found, key=lambda job: (job.due_at, job.id))]

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
        wanted = None if kinds is None else set(kinds)
        async with self._writing() as data:
            due = sorted((job for job in data.jobs.values() if _claimable(job, now, wanted)),
                         key=lambda job: (job.due_at, job.id))[:limit]
            claimed = [dataclasses.replace(
                job, state=JobState.CLAIMED, claimed_by=owner, token=secrets.token_hex(16),
                lease_until=now + lease_ms, attempts=job.attempts + 1, late=job.late or job.due_at <= now - late_ms)
                for job in due]
            if claimed:
                jobs = data.w_jobs()
                for job in claimed:
                    jobs[job.id] = job
        return [_copy(job) for job in claimed]

    async def begin_job_delivery(self, job_id: str, token: str, *, now: int) -> bool:
        async with self._writing() as data:
            job = _held(data, job_id, token)
            if job is None or job.lease_until is None or job.lease_until <= now:
                return False
            if job.delivery_started_at is None:
                data.w_jobs()[job_id] = dataclasses.replace(job, delivery_started_at=now)
            return True

    async def finish_job(
        self, job_id: str, token: str, *, now: int, state: JobState = JobState.DONE, error: str | None = None
    ) -> bool:
        state = JobState(state)
        if state not in FINISHED:
            raise ValueError(f"a job is finished as done, failed or cancelled, not {state}")
        async with self._writing() as data:
            job = _held(data, job_id, token)
            if job is None:
                return False
            data.w_jobs()[job_id] = _finished(job, state, now, error=error)
            return True

    async def retry_job(self, job_id: str, token: str, *, due_at: int, now: int, error: str | None = None) -> bool:
        async with self._writing() as data:
            job = _held(data, job_id, token)
            if job is None:
                return False
            if _pending_with_key(data, job.kind, job.key):
                data.w_jobs()[job_id] = _finished(job, JobState.CANCELLED, now, error="rescheduled")
            else:
                data.w_jobs()[job_id] = dataclasses.replace(
                    job, state=JobState.PENDING, due_at=due_at, token=None, lease_until=None, claimed_by=None,
                    delivery_started_at=None, last_error=short_error(error))
            return True

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
        async with self._writing() as data:
            chosen = [job for job in data.jobs.values() if job.state in LIVE and (
                job.id == job_id if job_id is not None
                else job.incident_id == incident_id if incident_id is not None
                else (job.kind, job.key) == (kind, key))]
            if chosen:
                jobs = data.w_jobs()
                for job in chosen:
                    jobs[job.id] = dataclasses.replace(job, state=JobState.CANCELLED, finished_at=now, token=None,
                                                       lease_until=None)
            return len(chosen)

    async def next_job_time(self, kinds: Collection[str] | None = None, *, not_claimed_by: str | None = None) -> int | None:
        wanted = None if kinds is None else set(kinds)
        times = [job.due_at if job.state is JobState.PENDING else job.lease_until
                 for job in (await self._read()).jobs.values()
                 if (wanted is None or job.kind in wanted) and (
                     job.state is JobState.PENDING
                     or (job.state is JobState.CLAIMED and (not_claimed_by is None or job.claimed_by != not_claimed_by)))]
        return min((t for t in times if t is not None), default=None)

    async def prune_jobs(self, before: int, *, states: Collection[JobState] | None = None,
                         limit: int | None = None) -> int:
        wanted = finished_states(states)
        async with self._writing() as data:
            old = [job.id for job in sorted(
                (job for job in data.jobs.values()
                 if job.state in wanted and job.finished_at is not None and job.finished_at < before),
                key=lambda job: (job.finished_at or 0, job.id))][:None if limit is None else max(0, limit)]
            if old:
                jobs = data.w_jobs()
                for job_id in old:
                    del jobs[job_id]
            return len(old)

    # -- alerts -------------------------------------------------------------------------------------
    async def record_alerts(self, source: str, alerts: Sequence[tuple[AlertIn, GroupTouch | None]], *,
                            now: int) -> list[AlertRecord]:
        async with self._writing() as data:
            # The changes are made aside, then put in place: nothing is half-written.
            stored: dict[tuple[str, str], AlertRecord] = {}
            groups: dict[str, AlertGroup] = {}
            seqs: dict[str, int] = {}
            found: list[AlertRecord] = []
            for alert, group in alerts:
                if group is not None and group.id not in seqs:
                    old_group = groups.get(group.id) or data.alert_groups.get(group.id)
                    if old_group is None:
                        groups[group.id] = AlertGroup(
                            id=group.id, source=group.source, group_key=group.group_key, rule=group.rule,
                            channel_id=group.channel_id, mode=group.mode, first_seen=now, last_seen=now,
                            notifications=1, seq=1)
                    else:
                        groups[group.id] = replace(old_group, last_seen=now, channel_id=group.channel_id,
                                                   notifications=old_group.notifications + 1, seq=old_group.seq + 1)
                    seqs[group.id] = groups[group.id].seq
                seq = seqs[group.id] if group is not None else 0
                key = (source, alert.fingerprint)
                old = stored.get(key) or data.alerts.get(key)
                resolved = alert.status is AlertStatus.RESOLVED
                if old is None:
                    record = AlertRecord(source=source, fingerprint=alert.fingerprint,
                                         group_id=group.id if group else "", status=alert.status, title=alert.title,
                                         url=alert.url, first_seen=now, last_seen=now, count=1,
                                         resolved_at=now if resolved else None, seq=seq,
                                         resolved_seq=seq if resolved else None, labels=dict(alert.labels),
                                         annotations=dict(alert.annotations))
                else:
                    was_resolved = old.status is AlertStatus.RESOLVED
                    resolved_at = (old.resolved_at if was_resolved else now) if resolved else None
                    resolved_seq = (old.resolved_seq if was_resolved else seq) if resolved else old.resolved_seq
                    record = replace(old, group_id=group.id if group else "", status=alert.status, title=alert.title,
                                     url=alert.url, last_seen=now, count=old.count + 1, resolved_at=resolved_at,
                                     seq=seq, resolved_seq=resolved_seq,
                                     labels=dict(alert.labels), annotations=dict(alert.annotations))
                stored[key] = record
            for alert, _ in alerts:
                found.append(stored[(source, alert.fingerprint)])
            data.w_alerts().update(stored)
            data.w_alert_groups().update(groups)
            return found

    async def get_alert(self, source: str, fingerprint: str) -> AlertRecord | None:
        return (await self._read()).alerts.get((source, fingerprint))

    async def count_alerts(self, source: str | None = None) -> int:
        alerts = (await self._read()).alerts
        return len(alerts) if source is None else sum(1 for (src, _) in alerts if src == source)

    async def alerts_of_group(self, group_id: str, *, limit: int = 1000) -> list[AlertRecord]:
        found = [alert for alert in (await self._read()).alerts.values() if alert.group_id == group_id]
        found.sort(key=lambda alert: (alert.first_seen, alert.fingerprint))
        return found[:max(0, limit)]

    async def get_alert_group(self, group_id: str) -> AlertGroup | None:
        return (await self._read()).alert_groups.get(group_id)

    async def alert_groups_with_news(self, channel_id: str, *, limit: int = 100) -> list[AlertGroup]:
        found = [group for group in (await self._read()).alert_groups.values()
                 if group.channel_id == channel_id and group.has_news]
        found.sort(key=lambda group: (group.first_seen, group.id))
        return found[:max(0, limit)]

    async def alert_groups_posted_since(self, channel_id: str, since: int) -> int:
        return sum(1 for group in (await self._read()).alert_groups.values()
                   if group.channel_id == channel_id and group.created_post_at is not None
                   and group.created_post_at >= since)

    async def save_alert_group_posted(self, posted: GroupPosted) -> bool:
        async with self._writing() as data:
            group = data.alert_groups.get(posted.id)
            if group is None:
                return False
            data.w_alert_groups()[posted.id] = replace(
                group, posted_seq=max(group.posted_seq, posted.posted_seq), state=posted.state,
                post_id=posted.post_id, incident_id=posted.incident_id, created_post_at=posted.created_post_at,
                posted_at=posted.posted_at, last_error=posted.last_error)
            return True


def _copy(job: Job) -> Job:
    """A job as handed out: its payload is the caller's own (the stored one cannot be changed through it)."""
    return dataclasses.replace(job, payload=json.loads(json.dumps(dict(job.payload))))


def _pending_with_key(data: _Data, kind: str, key: str) -> list[Job]:
    return [job for job in data.jobs.values() if job.state is JobState.PENDING and (job.kind, job.key) == (kind, key)]


def _claimable(job: Job, now: int, kinds: set[str] | None) -> bool:
    if kinds is not None and job.kind not in kinds:
        return False
    if job.state is JobState.PENDING:
        return job.due_at <= now
    return job.state is JobState.CLAIMED and job.lease_until is not None and job.lease_until <= now


def _held(data: _Data, job_id: str, token: str) -> Job | None:
    """The job, if ``token`` is its current claim."""
    job = data.jobs.get(job_id)
    return job if job is not None and job.state is JobState.CLAIMED and job.token == token else None


def _finished(job: Job, state: JobState, now: int, *, error: str | None = None) -> Job:
    return dataclasses.replace(
        job, state=state, finished_at=now, token=None, lease_until=None,
        fired_at=now if state is JobState.DONE else job.fired_at,
        last_error=short_error(error) if error is not None else job.last_error)
