"""The one storage interface every backend implements.

Services use a :class:`Store` like this::

    incident, events = await store.mutate_incident(incident_id, lambda i: check_step(i, ref, user, now))

or group several calls atomically::

    async with store.transaction():
        await store.create_incident(incident, events)
        await store.set_setting(...)

Calls made inside ``transaction()`` (by the same task) join it; calls made
outside run in a transaction of their own. Nothing returns before it is committed.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple, Self, TypedDict, Unpack

from domain import limits
from domain.alerts import AlertGroup, AlertIn, AlertRecord, GroupPosted, GroupTouch
from domain.errors import Conflict, NotFound, ValidationError
from domain.fields import FIELD_ID
from domain.ids import new_id
from domain.metrics import MetricsRow, MetricsSummary, summarize
from domain.models import (
    DEFAULT_SEVERITY,
    CredentialKind,
    Incident,
    IncidentStatus,
    Playbook,
    TimelineEvent,
    WebCredential,
)

from .jobs import Job, JobState, payload_json
from .leases import Lease

#: A pure operation as given to :meth:`Store.mutate_incident`.
IncidentOperation = Callable[[Incident], tuple[Incident, list[TimelineEvent]]]


#: The columns of ``web_credentials``, in :func:`credential_from_row`'s order (every backend's SELECT).
CREDENTIAL_COLUMNS = "id, token_hash, kind, user_id, name, csrf, created_at, expires_at"


def credential_from_row(row: Any) -> WebCredential:
    """A ``web_credentials`` row (selected as :data:`CREDENTIAL_COLUMNS`) as the model."""
    return WebCredential(id=row[0], token_hash=row[1], kind=CredentialKind(row[2]), user_id=row[3], name=row[4],
                         csrf=row[5], created_at=int(row[6]), expires_at=int(row[7]))


class StorageError(Exception):
    """The storage itself failed or is misconfigured (not a user mistake)."""


class IncidentSort(StrEnum):
    """Orders the incident list can be sorted in."""

    CREATED_DESC = "created_at desc"
    CREATED_ASC = "created_at asc"
    NAME_ASC = "name asc"
    NAME_DESC = "name desc"


class Page(NamedTuple):
    """One page of a list and the total number of matching items."""

    items: list[Incident]
    total: int


class IncidentRef(NamedTuple):
    """What deciding who may see an incident needs, without its checklist (see ``list_incident_refs``)."""

    id: str
    team_id: str
    channel_id: str
    public: bool


class RefPage(NamedTuple):
    """One page of incident references and the total number of matching incidents."""

    items: list[IncidentRef]
    total: int


#: The id of the severity field, the one field value the SQLite list finds through an index.
SEVERITY_ID = DEFAULT_SEVERITY.id
#: Field filters one list may combine.
FIELD_FILTERS_MAX = 5

#: Largest page of :meth:`Store.list_incident_refs` (references are small; full rows are not).
REFS_PER_PAGE_MAX = 1000


class IncidentFilters(TypedDict, total=False):
    """The keywords of :meth:`Store.list_incidents` and :meth:`Store.list_incident_refs` (checked by
    :meth:`IncidentQuery.of`, which says what each means)."""

    viewer_channel_ids: Collection[str]
    is_admin: bool
    status: IncidentStatus | None
    commander_id: str | None
    playbook_id: str | None
    search: str | None
    sort: IncidentSort
    page: int
    per_page: int
    overdue_at: int | None
    field_values: Mapping[str, str] | None


@dataclass(frozen=True, slots=True)
class IncidentQuery:
    """Which incidents of a team a list shows, in which order, and which page of them.

    Build it with :meth:`of`, which checks the paging and normalises the values, so a
    backend gets a query it can run as it is: the same one serves the full list and its
    light references. ``search`` is stripped; None (or blank) means no name filter.
    """

    team_id: str
    viewer_channel_ids: frozenset[str] = frozenset()
    is_admin: bool = False
    status: IncidentStatus | None = None
    commander_id: str | None = None
    playbook_id: str | None = None
    search: str | None = None
    sort: IncidentSort = IncidentSort.CREATED_DESC
    page: int = 0
    per_page: int = 15
    #: Only ongoing incidents whose next status update was due at or before this moment (ms):
    #: the overdue ones (``domain.updates.overdue``) when it is now. None: no such filter.
    overdue_at: int | None = None
    #: Only incidents whose custom field (by id) holds exactly this value, for each pair (issue 18),
    #: sorted by field id. Empty: no such filter.
    field_values: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(
        cls,
        team_id: str,
        *,
        viewer_channel_ids: Collection[str] = (),
        is_admin: bool = False,
        status: IncidentStatus | None = None,
        commander_id: str | None = None,
        playbook_id: str | None = None,
        search: str | None = None,
        sort: IncidentSort = IncidentSort.CREATED_DESC,
        page: int = 0,
        per_page: int = 15,
        most: int = limits.LIST_PER_PAGE_MAX,
        overdue_at: int | None = None,
        field_values: Mapping[str, str] | None = None,
    ) -> IncidentQuery:
        """A checked query (ValidationError for impossible paging, ValueError for an unknown sort or status)."""
        check_paging(page, per_page, most=most)
        values = field_values or {}
        if len(values) > FIELD_FILTERS_MAX:
            raise ValidationError(f"A list may filter by at most {FIELD_FILTERS_MAX} fields.", field="field")
        for field_id in values:
            if not FIELD_ID.match(field_id):
                raise ValidationError(f"{field_id[:40]!r} is not a field id (lowercase letters, digits, - and _).",
                                      field="field")
        return cls(
            team_id=team_id,
            viewer_channel_ids=frozenset(viewer_channel_ids),
            is_admin=is_admin,
            status=None if status is None else IncidentStatus(status),
            commander_id=commander_id,
            playbook_id=playbook_id,
            search=(search.strip() or None) if search else None,
            sort=IncidentSort(sort),
            page=page,
            per_page=per_page,
            overdue_at=overdue_at,
            field_values=tuple(sorted((str(k), str(v)) for k, v in values.items())),
        )

    @property
    def offset(self) -> int:
        """How many matching incidents come before the page."""
        return self.page * self.per_page


class Store(abc.ABC):
    """Async persistence for playbooks, incidents, timelines and settings."""

    # -- lifecycle -----------------------------------------------------------------
    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and bring the schema up to date (numbered migrations)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close every connection; the store can be opened again."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @abc.abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[None]:
        """A write transaction; store calls inside it (same task) are committed together or not at all."""

    def commit_with_next(self) -> None:
        """Inside the outermost :meth:`transaction`: the caller's next write is the transaction's last,
        and a store may send the COMMIT with it (SQLite: one trip to its writer's thread fewer). Nothing
        may be written or read in that transaction after it. Elsewhere, and by default, a no-op."""
        return None  # a hint: stores without such a trip to save ignore it

    def commit_without_sync(self) -> None:
        """Inside the outermost :meth:`transaction`, before its first statement: its commit need not wait
        for the disk (SQLite: ``synchronous = NORMAL`` for it; durable with the next synchronous commit).
        Only for writes that something durable written before redoes if a power loss takes them (a
        start's incident: its journal, services/incidents.py). Elsewhere, and by default, a no-op."""
        return None  # a hint: stores that always wait for the disk, or never, ignore it

    def busy_when(self, probe: Callable[[], bool]) -> None:
        """``probe()`` says whether the process is busy with several things at once (the bot: several
        requests in flight). A store that would run a write waiting for the disk on the event loop's own
        thread (SQLite) hands such writes to its own thread while it is, so the loop serves the others
        during the wait. By default a no-op."""
        return None  # a hint: stores whose writes never hold the event loop ignore it

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once what the caller wrote is visible to every other connection: at once
        here (SQLite's and memory's other readers of a write queue behind the single writer); after the
        running transaction's COMMIT where writers run side by side (PostgreSQL; not at all if it rolls
        back). For wake-ups (the scheduler's), never for correctness."""
        callback()

    @abc.abstractmethod
    async def schema_version(self) -> int:
        """The schema version the database is at."""

    # -- playbooks ---------------------------------------------------------------------
    @abc.abstractmethod
    async def create_playbook(self, playbook: Playbook) -> Playbook:
        """Insert a new playbook (Conflict if its id exists)."""

    @abc.abstractmethod
    async def get_playbook(self, playbook_id: str) -> Playbook | None:
        """The playbook with this id, or None."""

    @abc.abstractmethod
    async def update_playbook(self, playbook: Playbook, *, expected_version: int | None = None) -> Playbook:
        """Save ``playbook`` if the stored version is ``expected_version`` (default ``playbook.version``).

        Returns the playbook with its new version; Conflict if someone saved first,
        NotFound if it was deleted.
        """

    @abc.abstractmethod
    async def delete_playbook(self, playbook_id: str, *, expected_version: int | None = None) -> bool:
        """Delete a playbook (its incidents stay); False if it did not exist."""

    @abc.abstractmethod
    async def playbooks_for_user(self, team_id: str, user_id: str, *, is_admin: bool = False) -> list[Playbook]:
        """Playbooks of ``team_id`` the user is a member of (all of them for admins), by title."""

    # -- incidents -------------------------------------------------------------------
    @abc.abstractmethod
    async def create_incident(self, incident: Incident, events: Sequence[TimelineEvent] = (), *,
                              conflict_at_commit: bool = False) -> Incident:
        """Insert a new incident and its first timeline events (Conflict if the channel has one; inside
        a transaction, the transaction goes on without the insert).

        ``conflict_at_commit``: inside a transaction, the insert may wait for the transaction's next
        statement or its COMMIT (SQLite: no trip to the writer's thread of its own); a Conflict is then
        raised from there, and the whole transaction is rolled back."""

    @abc.abstractmethod
    async def get_incident(self, incident_id: str) -> Incident | None:
        """The incident with this id, or None."""

    @abc.abstractmethod
    async def incident_by_channel(self, channel_id: str) -> Incident | None:
        """The incident whose channel this is, or None."""

    @abc.abstractmethod
    async def update_incident(
        self,
        incident: Incident,
        events: Sequence[TimelineEvent] = (),
        *,
        expected_version: int | None = None,
        previous: Incident | None = None,
    ) -> Incident:
        """Save ``incident`` and append ``events`` atomically, if the stored version is still
        ``expected_version`` (default ``incident.version``).

        ``previous`` (the incident as loaded) is a hint: a backend may then write
        only the fields that differ. Returns the incident with its new version.
        Raises Conflict if another writer saved first and NotFound if the
        incident no longer exists.
        """

    @abc.abstractmethod
    async def delete_incident(self, incident_id: str) -> bool:
        """Delete an incident and its timeline (used to clean up a half-made start)."""

    async def list_incidents(self, team_id: str, **filters: Unpack[IncidentFilters]) -> Page:
        """One page of the incidents of a team a viewer may see, with the total count.

        Visible: public incidents, plus private ones whose channel id is in
        ``viewer_channel_ids``; everything when ``is_admin``. ``search`` matches
        a substring of the name, ignoring ASCII case. ``page`` counts from 0 (15 a page by default).
        The keywords are those of :meth:`IncidentQuery.of` (see :meth:`incidents_page`).
        """
        return await self.incidents_page(IncidentQuery.of(team_id, **filters))

    async def list_incident_refs(self, team_id: str, **filters: Unpack[IncidentFilters]) -> RefPage:
        """The same selection, order and total as :meth:`list_incidents`, as light references.

        For walking many incidents to decide which a viewer may see: no checklist is read
        or parsed. Fetch the few that are shown with :meth:`incidents_by_ids`.
        ``per_page`` (100 by default) may go up to ``REFS_PER_PAGE_MAX``.
        """
        filters.setdefault("per_page", 100)
        return await self.incident_refs_page(IncidentQuery.of(team_id, most=REFS_PER_PAGE_MAX, **filters))

    @abc.abstractmethod
    async def incidents_page(self, query: IncidentQuery) -> Page:
        """The page of incidents ``query`` selects, with the total count (what backends implement)."""

    @abc.abstractmethod
    async def incident_refs_page(self, query: IncidentQuery) -> RefPage:
        """The same selection, order and total as :meth:`incidents_page`, as light references."""

    @abc.abstractmethod
    async def incidents_by_ids(self, incident_ids: Sequence[str]) -> list[Incident]:
        """The incidents with these ids, in the order given; ids that do not exist are left out."""

    @abc.abstractmethod
    async def incidents_without_card(self, limit: int = 100) -> list[Incident]:
        """Incidents whose card post was never recorded, oldest first (to repair after a crash)."""

    @abc.abstractmethod
    async def incidents_with_open_steps_of(self, team_id: str, user_id: str, *,
                                           limit: int = 100) -> list[Incident]:
        """Ongoing incidents of ``team_id`` with at least one open step assigned to ``user_id``,
        newest first, at most ``limit`` (``/incident todo``). Only ongoing incidents are looked at
        (an index on the status): at 100k incidents the ended ones, nearly all of them, cost nothing."""

    @abc.abstractmethod
    async def timeline(self, incident_id: str) -> list[TimelineEvent]:
        """The incident's events in the order they were recorded."""

    @abc.abstractmethod
    async def events_about(self, incident_id: str, subject_id: str) -> list[TimelineEvent]:
        """The incident's events about one post, member or event (``domain.timeline.subject_of``),
        in the order they were recorded; found by an index, not by reading the whole timeline."""

    @abc.abstractmethod
    async def append_events(self, events: Sequence[TimelineEvent]) -> None:
        """Append events that do not change the incident itself (e.g. a status update)."""

    # -- metrics summaries (domain/metrics.py, docs/metrics.md) -----------------------------------
    # Every backend keeps one summary per incident: created with the incident and advanced
    # (``domain.metrics.advance``) in the same transaction as every event ``create_incident``,
    # ``update_incident``, ``mutate_incident`` and ``append_events`` record; the descriptive columns
    # (playbook, visibility, severity) follow the incident as last written.

    @abc.abstractmethod
    async def incident_summary(self, incident_id: str) -> MetricsSummary | None:
        """The stored metrics summary of an incident, or None (no such incident, or not backfilled)."""

    @abc.abstractmethod
    async def metrics_rows(self, team_id: str, *, since: int, playbook_id: str | None = None) -> list[MetricsRow]:
        """The summaries' rows of ``team_id``'s incidents started at or after ``since`` (ms), in no
        particular order (stats aggregate them); only ``playbook_id``'s when given. Reads the
        summaries only, never an event or a checklist."""

    @abc.abstractmethod
    async def incidents_without_summary(self, limit: int = 100) -> list[str]:
        """Ids of incidents that have no metrics summary (recorded before there were any), at most ``limit``."""

    @abc.abstractmethod
    async def save_summary(self, incident: Incident, summary: MetricsSummary) -> None:
        """Store ``summary`` as the incident's (replacing any); for :meth:`backfill_metrics`."""

    async def backfill_metrics(self, *, batch: int = 100) -> int:
        """Compute, from their events, the summary of every incident that has none; returns how many.

        Each is read and written in one transaction, so no event recorded meanwhile is missed or
        counted twice. Backends run it when they open."""
        written = 0
        while True:
            missing = await self.incidents_without_summary(batch)
            if not missing:
                return written
            for incident_id in missing:
                async with self.transaction():
                    incident = await self.get_incident(incident_id)
                    if incident is None or await self.incident_summary(incident_id) is not None:
                        continue
                    await self.save_summary(incident, summarize(incident.created_at,
                                                                await self.timeline(incident_id)))
                    written += 1

    # -- settings ------------------------------------------------------------------------
    @abc.abstractmethod
    async def get_setting(self, key: str) -> str | None:
        """A stored setting, or None."""

    @abc.abstractmethod
    async def set_setting(self, key: str, value: str) -> None:
        """Store (or replace) a setting."""

    @abc.abstractmethod
    async def delete_setting(self, key: str, *, if_value: str | None = None) -> bool:
        """Remove a setting; False if there was none. ``if_value``: only if it holds exactly that
        value (one atomic statement: e.g. release a claim only when this holder still has it)."""

    @abc.abstractmethod
    async def delete_settings(self, keys: Mapping[str, str | None]) -> None:
        """Remove several settings in one write: each key, or, when it maps to a value, only if it holds
        exactly that value (as :meth:`delete_setting` with ``if_value``). Answers nothing, so inside a
        :meth:`transaction` a backend may send it with the next statement or the commit."""

    @abc.abstractmethod
    async def settings_with_prefix(self, prefix: str) -> dict[str, str]:
        """Every setting whose key starts with ``prefix``."""

    @abc.abstractmethod
    async def setting_or_default(self, key: str, default: str) -> str:
        """The stored value of ``key``; if there is none, store ``default`` and return it (atomic)."""

    # -- single-use keys (replay protection) --------------------------------------------
    @abc.abstractmethod
    async def claim_single_use(self, kind: str, key: str, *, expires_at: int, now: int) -> bool:
        """Record ``key`` of ``kind`` as used until ``expires_at`` (epoch ms); atomic.

        False if it is already recorded and not yet expired (a replay); an expired record
        of the same key is replaced. Survives restarts, like everything in the store.
        """

    async def claim_single_use_or_fail(self, kind: str, key: str, *, expires_at: int, now: int,
                                       taken: Callable[[], BaseException]) -> None:
        """:meth:`claim_single_use` for a caller that cannot go on without the key: ``taken()`` is raised
        when the key is recorded already.

        Inside a transaction a backend may hold the claim back to go with the transaction's next
        statement or its COMMIT (SQLite: no trip to the writer's thread of its own); ``taken()`` is then
        called and raised from there, and the whole transaction is rolled back. ``taken`` may be called
        on another thread: it should only build the error (and note the refusal)."""
        if not await self.claim_single_use(kind, key, expires_at=expires_at, now=now):
            raise taken()

    @abc.abstractmethod
    async def release_single_use(self, kind: str, key: str) -> bool:
        """Forget a claimed key (its use did not happen after all); False if it was not recorded."""

    @abc.abstractmethod
    async def prune_single_use(self, now: int, *, max_entries: int) -> int:
        """Delete keys expired at ``now``, then the soonest-expiring ones beyond ``max_entries``;
        returns how many were deleted."""

    # -- scheduled jobs (storage/jobs.py explains the life of a job) -----------------------
    async def schedule_job(
        self,
        kind: str,
        key: str,
        *,
        due_at: int,
        now: int,
        payload: Mapping[str, Any] | None = None,
        incident_id: str | None = None,
        job_id: str | None = None,
    ) -> Job:
        """Insert a pending job; a pending job of the same (kind, key) is cancelled in the same
        transaction (one pending job per key). ``job_id`` defaults to a new random id."""
        job = Job(id=job_id or new_id(), kind=kind, key=key, due_at=due_at, created_at=now, incident_id=incident_id,
                  payload=json.loads(payload_json(payload)))  # checked and normalised once, for every backend
        return await self.insert_job(job)

    @abc.abstractmethod
    async def insert_job(self, job: Job) -> Job:
        """Store a new pending ``job`` built by :meth:`schedule_job`, cancelling the pending job of its
        (kind, key) in the same transaction; Conflict when its id is taken."""

    @abc.abstractmethod
    async def get_job(self, job_id: str) -> Job | None:
        """The job with this id, or None."""

    @abc.abstractmethod
    async def list_jobs(
        self,
        *,
        kind: str | None = None,
        key: str | None = None,
        incident_id: str | None = None,
        states: Collection[JobState] | None = None,
    ) -> list[Job]:
        """Jobs matching every filter given, by due time (then id)."""

    @abc.abstractmethod
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
        """Atomically claim up to ``limit`` jobs, soonest due first: pending ones due at ``now`` and
        claimed ones whose lease has expired. Each gets a fresh token, ``lease_until = now +
        lease_ms``, one more attempt, and ``late`` if it is claimed ``late_ms`` or more after it was
        due. ``kinds``: only these kinds (None: all)."""

    @abc.abstractmethod
    async def begin_job_delivery(self, job_id: str, token: str, *, now: int) -> bool:
        """Record that the side effect is about to happen; False (nothing recorded) unless ``token``
        is the job's current claim and its lease has not expired at ``now``."""

    @abc.abstractmethod
    async def finish_job(
        self, job_id: str, token: str, *, now: int, state: JobState = JobState.DONE, error: str | None = None
    ) -> bool:
        """Move the claimed job to done (``fired_at = now``), failed or cancelled; False unless
        ``token`` is its current claim."""

    async def complete_job(self, job_id: str, token: str, *, now: int) -> bool:
        """The job fired: done, if ``token`` is still its claim."""
        return await self.finish_job(job_id, token, now=now)

    @abc.abstractmethod
    async def retry_job(self, job_id: str, token: str, *, due_at: int, now: int, error: str | None = None) -> bool:
        """Give a claimed job back as pending, due at ``due_at``: its attempt ended without the side
        effect (the delivery marker is cleared; attempts are kept). If its key has meanwhile been
        scheduled again, it is cancelled instead. False unless ``token`` is its current claim."""

    @abc.abstractmethod
    async def cancel_jobs(
        self,
        *,
        now: int,
        job_id: str | None = None,
        kind: str | None = None,
        key: str | None = None,
        incident_id: str | None = None,
    ) -> int:
        """Cancel the pending and claimed jobs with this id, or this kind and key, or of this
        incident (exactly one selector); a claimed job's holder can then neither begin its delivery
        nor complete it. Returns how many were cancelled."""

    @abc.abstractmethod
    async def next_job_time(self, kinds: Collection[str] | None = None, *, not_claimed_by: str | None = None) -> int | None:
        """The earliest moment a job may become claimable: the soonest pending due time or claimed
        lease expiry (of ``kinds``; None: all; leases held by ``not_claimed_by`` left out: that
        owner settles its own claims); None when there is none."""

    @abc.abstractmethod
    async def prune_jobs(self, before: int, *, states: Collection[JobState] | None = None,
                         limit: int | None = None) -> int:
        """Delete done, failed and cancelled jobs (``states``: only those of these finished states)
        finished before ``before``, the oldest first and at most ``limit``; returns how many."""

    # -- alerts (issue 21; domain/alerts.py, services/alerts.py) --------------------------------
    @abc.abstractmethod
    async def record_alerts(self, source: str, alerts: Sequence[tuple[AlertIn, GroupTouch | None]], *,
                            now: int) -> list[AlertRecord]:
        """Record one notification's alerts in one transaction: each (source, fingerprint) is inserted
        or counted up (``last_seen = now``, status, title, url and group taken from the notification;
        ``resolved_at`` set when it turns resolved, cleared when it fires again). Each distinct group
        named is inserted or touched once (``notifications`` and ``seq`` + 1, ``last_seen = now``;
        its channel follows the rule). An alert without a group is recorded with group id "".
        Returns the stored alerts in the order given."""

    @abc.abstractmethod
    async def get_alert(self, source: str, fingerprint: str) -> AlertRecord | None:
        """The alert, or None."""

    @abc.abstractmethod
    async def count_alerts(self, source: str | None = None) -> int:
        """How many distinct alerts are recorded (of ``source``; None: all)."""

    @abc.abstractmethod
    async def alerts_of_group(self, group_id: str, *, limit: int = 1000) -> list[AlertRecord]:
        """The group's alerts, first seen first (then fingerprint), at most ``limit``."""

    @abc.abstractmethod
    async def get_alert_group(self, group_id: str) -> AlertGroup | None:
        """The group, or None."""

    @abc.abstractmethod
    async def alert_groups_with_news(self, channel_id: str, *, limit: int = 100) -> list[AlertGroup]:
        """The channel's groups touched since their last post (``seq > posted_seq``), first seen first."""

    @abc.abstractmethod
    async def alert_groups_posted_since(self, channel_id: str, since: int) -> int:
        """How many of the channel's groups got their first post (or incident) at ``since`` or later."""

    @abc.abstractmethod
    async def save_alert_group_posted(self, posted: GroupPosted) -> bool:
        """Record what was posted about a group: only the notifier's columns, so a notification
        arriving meanwhile (``seq``, counts) is never overwritten; ``posted_seq`` never goes back.
        False if there is no such group."""

    # -- leases (several replicas on one database; storage/leases.py) ------------------------
    @abc.abstractmethod
    async def acquire_lease(self, name: str, holder: str, *, now: int, ttl_ms: int) -> Lease | None:
        """Take the lease ``name`` for ``holder`` until ``now + ttl_ms`` if it is free, expired at
        ``now`` or already ``holder``'s (one compare-and-set); its epoch grows by one. None when
        another holder has it."""

    @abc.abstractmethod
    async def renew_lease(self, name: str, holder: str, epoch: int, *, now: int, ttl_ms: int) -> Lease | None:
        """Extend the lease to ``now + ttl_ms`` if ``holder`` still holds it at ``epoch``; None otherwise
        (someone else took it: the caller must stop acting under it)."""

    @abc.abstractmethod
    async def release_lease(self, name: str, holder: str, epoch: int) -> bool:
        """Free the lease at once if ``holder`` holds it at ``epoch`` (the epoch stays); False otherwise."""

    @abc.abstractmethod
    async def get_lease(self, name: str) -> Lease | None:
        """The lease as stored (maybe expired), or None if it was never taken."""

    # -- backstage credentials (sessions and API tokens; issue 19) ---------------------------
    @abc.abstractmethod
    async def add_credential(self, credential: WebCredential) -> None:
        """Store a new credential; ``Conflict`` if its id or token hash is already stored."""

    @abc.abstractmethod
    async def credential_by_hash(self, token_hash: str, *, now: int) -> WebCredential | None:
        """The credential whose secret hashes to ``token_hash``, if it has not expired at ``now``
        (``expires_at`` 0: never expires); None otherwise."""

    @abc.abstractmethod
    async def credentials_of(self, user_id: str, kind: CredentialKind) -> list[WebCredential]:
        """Every stored credential of ``kind`` of the user, oldest first (expired ones included)."""

    @abc.abstractmethod
    async def delete_credential(self, credential_id: str, *, user_id: str) -> bool:
        """Delete the credential if it is the user's; False if there is none such (another user's
        credential is never touched)."""

    @abc.abstractmethod
    async def prune_credentials(self, now: int) -> int:
        """Delete credentials expired at ``now`` (never those with ``expires_at`` 0); how many."""

    @abc.abstractmethod
    async def incident_version(self, incident_id: str) -> int | None:
        """The stored version of the incident (one small read: has it moved since a card was drawn?)."""

    # -- shared behaviour --------------------------------------------------------------
    async def mutate_incident(
        self, incident_id: str, operation: IncidentOperation, *, retries: int = 5
    ) -> tuple[Incident, list[TimelineEvent]]:
        """Load the incident, apply a pure ``operation``, save it with a version check.

        On Conflict (another writer won) the whole load-apply-save is retried up
        to ``retries`` times, so concurrent edits never overwrite each other.
        Domain errors raised by ``operation`` propagate and nothing is written.
        A no-op (same incident, no events) writes nothing.
        """
        attempt = 0
        while True:
            try:
                async with self.transaction():
                    current = await self.get_incident(incident_id)
                    if current is None:
                        raise NotFound("This incident no longer exists.")
                    updated, events = operation(current)
                    if not events and updated == current:
                        return current, []
                    saved = await self.update_incident(
                        updated, events, expected_version=current.version, previous=current
                    )
                    return saved, list(events)
            except Conflict:
                attempt += 1
                if attempt > retries:
                    raise


def check_paging(page: int, per_page: int, *, most: int = limits.LIST_PER_PAGE_MAX) -> None:
    """Reject nonsensical paging arguments with a clear message."""
    if page < 0:
        raise ValidationError("Page numbers start at 1.")
    if not 1 <= per_page <= most:
        raise ValidationError(f"A page holds 1 to {most} incidents.")


def like_pattern(search: str) -> str:
    """A LIKE pattern matching ``search`` as a literal substring (escape character ``\\``)."""
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


__all__ = [
    "FIELD_FILTERS_MAX",
    "REFS_PER_PAGE_MAX",
    "SEVERITY_ID",
    "IncidentOperation",
    "IncidentQuery",
    "IncidentRef",
    "IncidentSort",
    "Lease",
    "Page",
    "RefPage",
    "StorageError",
    "Store",
    "check_paging",
    "like_pattern",
]
