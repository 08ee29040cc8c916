"""Incident history: the privacy-respecting list, the details figures and the channel export.

Visibility (SPEC section 6): public incidents are visible to every member of their team, private
ones to the members of their channel, everything to system admins.

How the list finds a viewer's private incidents.  Mattermost does not let a bot list another user's
channels (``GET /users/{id}/teams/{id}/channels/members`` needs ``manage_system``: api4/channel.go
``getChannelMembersForTeamForUser``), but the bot is in every incident channel, so the directory
keeps their member lists from Mattermost's events (gateway/directory.py ``members_among``: loaded
once per channel per connection, definite for "no" as well as "yes").  The list therefore costs
the same REST calls on page 50 as on page 1:

1. admins: one store query, no checks;
2. if no private incident matches the filters (two counting queries tell), one store query with
   public incidents only, no checks;
3. otherwise the store's light references (id, channel, visibility: ``list_incident_refs``, same
   filters, same order) are walked in chunks, membership answered by the directory for the private
   ones among them, and full rows read only for the page shown (``incidents_by_ids``).

The first list in a team after the bot (re)connects also queues, in the background, the member
lists of the team's newest private incident channels (``PRELOAD_PRIVATE_MAX``), so that even a
first look at a deep page asks nothing per incident.

In case 3 the exact total is known only when the walk reached the end; otherwise the page says
there are more.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from domain import (
    Actor,
    EventKind,
    Incident,
    IncidentStatus,
    InvalidState,
    NotFound,
    Playbook,
    TimelineEvent,
    ValidationError,
    permissions,
)
from domain import fields as field_ops
from domain import timeline as tl
from domain.errors import COMMAND
from domain.models import DEFAULT_SEVERITY, FieldKind
from domain.updates import overdue
from gateway.cards import format_time
from gateway.directory import Directory
from gateway.errors import MattermostError, user_message
from gateway.export import UsernameCache, channel_pages, write_channel_csv
from gateway.messages import command, neutralize
from services.context import BotContext

log = logging.getLogger(__name__)

PER_PAGE = 15
_SCAN_CHUNK = 100
#: Light references read per trip to the store while walking the list (at most REFS_PER_PAGE_MAX).
_REFS_CHUNK = 1000
#: Private incident channels per team whose member lists are preloaded after each (re)connection.
PRELOAD_PRIVATE_MAX = 2000
_MATCHES_SHOWN = 10
_CHANNEL_NAME_TTL_S = 60.0
#: How long the export command waits before answering "on its way" and finishing in the background.
EXPORT_REPLY_WAIT_S = 3.0
_EXPORTS_AT_ONCE = 2

NOT_VISIBLE = ("No incident {what} that you can see. Type " + COMMAND + "list to see the incidents you can view, "
               "then use its name in quotes or its ~channel.")
NOT_HERE = ("This channel is not an incident channel. Name the incident: " + COMMAND + "{verb} \"Database down\" or "
            + COMMAND + "{verb} ~channel-name (type " + COMMAND + "list to find it).")
NO_TEAM = ("I cannot tell which team you mean here. Type the command in a channel of the team instead.")




@dataclass(frozen=True)
class ListFilters:
    """What the list is narrowed to; None means no narrowing."""

    status: IncidentStatus | None = None
    commander_id: str | None = None
    playbook_id: str | None = None
    search: str | None = None
    #: Only the overdue ones (ongoing, their status update due): ``IncidentQuery.overdue_at`` = now.
    overdue: bool = False
    #: Only incidents with these field values (issue 18), by field id: ``IncidentQuery.field_values``.
    field_values: tuple[tuple[str, str], ...] = ()

    def store_arguments(self, now: int) -> dict[str, Any]:
        arguments: dict[str, Any] = {"status": self.status, "commander_id": self.commander_id,
                                     "playbook_id": self.playbook_id, "search": self.search or None}
        if self.overdue:
            arguments["overdue_at"] = now
        if self.field_values:
            arguments["field_values"] = dict(self.field_values)
        return arguments


def overdue_mark(incident: Incident, now: int) -> str:
    """The mark of an overdue incident in a list row ("" otherwise; ``domain.updates.overdue``)."""
    return " · ⏰ update overdue" if overdue(incident, now) else ""


@dataclass
class ListPage:
    """One page of the incidents a viewer may see.  ``total`` is None when only a lower bound is known."""

    items: list[Incident]
    page: int
    per_page: int
    total: int | None
    at_least: int
    has_more: bool

    @property
    def first_number(self) -> int:
        return self.page * self.per_page + 1


@dataclass
class ChannelFigures:
    """What the incident channel itself says: who was ever in it and how much was posted."""

    members_involved: list[str] = field(default_factory=list)   # user ids, people only
    messages_by_people: int = 0     # ordinary posts and replies by people
    messages_by_bots: int = 0       # posts by bots, webhooks and slash-command responses
    system_messages: int = 0        # joins, leaves, header changes, ...
    readable: bool = True           # False when the bot can no longer read the channel

    @property
    def total_posts(self) -> int:
        return self.messages_by_people + self.messages_by_bots + self.system_messages


@dataclass
class IncidentDetails:
    incident: Incident
    channel_name: str
    figures: ChannelFigures
    completions: list[TimelineEvent]
    usernames: dict[str, str]


@dataclass
class ExportResult:
    """Where the export went; ``pending`` when it is still running and will arrive by DM."""

    posts: int = 0
    filename: str = ""
    pending: bool = False


_SAFE_NOTE = ("Cells a spreadsheet would run as a formula (starting with = + - @, a tab or a carriage return) "
              "start with ' so they show as text; `{export_raw}` leaves them as posted.")
_RAW_NOTE = ("Raw: every cell is exactly as posted, so a cell starting with = + - or @ is a formula to a "
             "spreadsheet; open it only in a text editor or a tool that does not run formulas.")


# Which user ids a system post names, besides its author.
_SYSTEM_PROP_USERS = ("addedUserId", "removedUserId", "userId")


class HistoryService:
    """Lists, details and exports of incidents, always as seen by one viewer."""

    def __init__(self, ctx: BotContext, directory: Directory) -> None:
        self.ctx = ctx
        self.directory = directory
        self._channel_names: dict[str, tuple[float, str]] = {}
        self._name_loads: dict[str, asyncio.Lock] = {}
        self._team_names_loaded: dict[str, float] = {}
        self._exports = asyncio.Semaphore(_EXPORTS_AT_ONCE)
        self._background: set[asyncio.Task] = set()
        self._preloaded_teams: dict[str, int] = {}  # team -> directory epoch its preload was queued in

    @property
    def store(self):
        return self.ctx.store

    @property
    def client(self):
        return self.ctx.client

    # Who may see what ---------------------------------------------------------------------

    async def is_member(self, channel_id: str, user_id: str) -> bool:
        """Fresh (uncached) channel membership: a user who just left sees the effect at once."""
        try:
            await self.client.get_channel_member(channel_id, user_id)
            return True
        except MattermostError as error:
            if error.status in (403, 404):
                return False
            raise

    async def members_among(self, channel_ids: Iterable[str], user_id: str) -> set[str]:
        """The channels of ``channel_ids`` that ``user_id`` is a member of (definite, see the directory)."""
        return await self.directory.members_among(channel_ids, user_id)

    async def require_team(self, team_id: str, user_id: str) -> Actor:
        actor = await self.directory.actor(user_id)
        if not permissions.can_see_team(actor, is_team_member=await self.directory.is_team_member(team_id, user_id)):
            raise NotFound("You are not a member of this team, so you cannot see its incidents.")
        return actor

    async def can_view(self, incident: Incident, user_id: str) -> bool:
        actor = await self.directory.actor(user_id)
        if actor.is_system_admin:
            return True
        if await self.is_member(incident.channel_id, user_id):
            return True
        return incident.public and await self.directory.is_team_member(incident.team_id, user_id)

    async def teams_of(self, user_id: str, team_id: str) -> list[str]:
        """``team_id`` when the command came from a team; in a DM, every team shared with the bot."""
        if team_id:
            return [team_id]
        shared = []
        for team in await self.client.my_teams():
            if await self.directory.is_team_member(team.id, user_id):
                shared.append(team.id)
        return shared

    # The list -----------------------------------------------------------------------------

    async def list_page(self, user_id: str, team_id: str, filters: ListFilters, page: int = 0,
                        per_page: int = PER_PAGE) -> ListPage:
        """Page ``page`` (from 0) of the incidents ``user_id`` may see in ``team_id``, newest first."""
        if page < 0:
            raise ValidationError("Page numbers start at 1.")
        actor = await self.require_team(team_id, user_id)
        arguments = filters.store_arguments(self.ctx.clock())
        if actor.is_system_admin:
            found = await self.store.list_incidents(team_id, is_admin=True, page=page, per_page=per_page, **arguments)
            return self._page(found.items, page, per_page, found.total)
        public = await self.store.list_incidents(team_id, page=page, per_page=per_page, **arguments)
        everything = await self.store.list_incident_refs(team_id, is_admin=True, page=0, per_page=1, **arguments)
        if everything.total == public.total:
            return self._page(public.items, page, per_page, public.total)
        await self._preload(team_id)
        return await self._walk(user_id, team_id, arguments, page, per_page, public.total)

    async def _preload(self, team_id: str) -> None:
        """Once per team and connection: queue the newest private incident channels' member lists."""
        directory = self.directory
        if not directory.live or self._preloaded_teams.get(team_id) == directory.epoch:
            return
        self._preloaded_teams[team_id] = directory.epoch
        channels: list[str] = []
        chunk = 0
        while len(channels) < PRELOAD_PRIVATE_MAX:
            refs = await self.store.list_incident_refs(team_id, is_admin=True, page=chunk, per_page=_REFS_CHUNK)
            channels.extend(ref.channel_id for ref in refs.items if not ref.public)
            if (chunk + 1) * _REFS_CHUNK >= refs.total or not refs.items:
                break
            chunk += 1
        directory.preload(channels[:PRELOAD_PRIVATE_MAX])

    @staticmethod
    def _page(items: list[Incident], page: int, per_page: int, total: int) -> ListPage:
        return ListPage(items, page, per_page, total, total, (page + 1) * per_page < total)

    async def _walk(self, user_id: str, team_id: str, arguments: dict[str, Any], page: int, per_page: int,
                    public_total: int) -> ListPage:
        """Walk light references until the page is filled (and one more is seen), then read its rows."""
        start, end = page * per_page, (page + 1) * per_page
        # Early pages are the common case: read about twice what they need, not a full chunk.
        chunk_size = min(_REFS_CHUNK, max(2 * (end + 1), 64))
        window: list[str] = []
        seen = private_visible = 0
        chunk_number = 0
        while True:
            chunk = await self.store.list_incident_refs(team_id, is_admin=True, page=chunk_number,
                                                        per_page=chunk_size, **arguments)
            member_of = await self.members_among((ref.channel_id for ref in chunk.items if not ref.public), user_id)
            for ref in chunk.items:
                if ref.public or ref.channel_id in member_of:
                    private_visible += 0 if ref.public else 1
                    if start <= seen < end:
                        window.append(ref.id)
                    seen += 1
            exhausted = (chunk_number + 1) * chunk_size >= chunk.total or not chunk.items
            if exhausted or seen > end:
                break
            chunk_number += 1
        # Full rows only for what is shown; one that vanished since the walk is left out.
        items = await self.store.incidents_by_ids(window)
        if exhausted:
            return self._page(items, page, per_page, seen)
        # Public incidents further down are visible too: a cheap lower bound on the total.
        at_least = max(seen, public_total + private_visible)
        return ListPage(items, page, per_page, None, at_least, True)

    async def channel_name(self, channel_id: str) -> str:
        """The channel's name for a ~link, or "" when the bot cannot read it."""
        cached = self._channel_names.get(channel_id)
        if cached and time.monotonic() - cached[0] < _CHANNEL_NAME_TTL_S:
            return cached[1]
        try:
            channel = await self.client.get_channel(channel_id)
            name = "" if channel.archived else channel.name
        except MattermostError as error:
            if error.status not in (403, 404):
                raise
            name = ""
        self._channel_names[channel_id] = (time.monotonic(), name)
        return name

    async def channel_names(self, channel_ids: Iterable[str], team_id: str = "") -> dict[str, str]:
        """Names for ~links. With ``team_id``, names not known yet come from one list of the bot's
        channels in that team (it is in every incident channel), not one call per channel."""
        ids = list(dict.fromkeys(channel_ids))
        if team_id and any(not self._fresh_name(channel_id) for channel_id in ids):
            await self._load_team_channel_names(team_id)
        names = await asyncio.gather(*(self.channel_name(channel_id) for channel_id in ids))
        return dict(zip(ids, names))

    def _fresh_name(self, channel_id: str) -> bool:
        cached = self._channel_names.get(channel_id)
        return cached is not None and time.monotonic() - cached[0] < _CHANNEL_NAME_TTL_S

    async def _load_team_channel_names(self, team_id: str) -> None:
        lock = self._name_loads.setdefault(team_id, asyncio.Lock())
        async with lock:  # lists shown at once share one request
            loaded = self._team_names_loaded.get(team_id, 0.0)
            if time.monotonic() - loaded < _CHANNEL_NAME_TTL_S:
                return
            try:
                channels = await self.client.my_channels(team_id)
            except MattermostError as error:
                log.warning("could not list the bot's channels in team %s: %s", team_id, error)
                return
            at = time.monotonic()
            for channel in channels:
                self._channel_names[channel.id] = (at, "" if channel.archived else channel.name)
            self._team_names_loaded[team_id] = at

    async def usernames(self, user_ids: Iterable[str]) -> dict[str, str]:
        ids = [user_id for user_id in dict.fromkeys(user_ids) if user_id]
        names = await asyncio.gather(*(self.directory.username(user_id) for user_id in ids))
        return dict(zip(ids, names))

    async def playbook_named(self, team_id: str, user_id: str, name: str) -> Playbook:
        """The playbook the user may use whose title is ``name`` (ignoring case; a unique part will do)."""
        actor = await self.directory.actor(user_id)
        playbooks = await self.store.playbooks_for_user(team_id, user_id, is_admin=actor.is_system_admin)
        wanted = " ".join(name.split()).lower()
        exact = [p for p in playbooks if " ".join(p.title.split()).lower() == wanted]
        matches = exact or [p for p in playbooks if wanted in p.title.lower()]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise NotFound(f'No playbook called "{neutralize(name)}" among yours. Type {COMMAND}playbook list '
                           "to see their titles.")
        titles = ", ".join(f'"{neutralize(p.title)}"' for p in matches[:5])
        raise ValidationError(f'"{neutralize(name)}" matches several playbooks ({titles}); give the full title.')

    async def field_filter(self, team_id: str, user_id: str, name: str, value: str) -> tuple[str, str, str]:
        """A typed field filter of the list as (field id, stored value, field name shown): the field is
        looked up among the team's playbooks the user may use and the default severity, so a level or
        an option matches in any case and ``@name`` names a person of the team (issue 18)."""
        actor = await self.directory.actor(user_id)
        playbooks = await self.store.playbooks_for_user(team_id, user_id, is_admin=actor.is_system_admin)
        candidates = [DEFAULT_SEVERITY, *(field for playbook in playbooks for field in playbook.fields)]
        found, field_id, stored = field_ops.list_filter(candidates, name, value)
        if found is not None and found.kind is FieldKind.USER:
            user = await self.directory.team_user_by_username(team_id, stored)
            if user is None:
                raise NotFound(f"There is no user {neutralize(stored)} in this team. Check the spelling.")
            stored = user.id
        return field_id, stored, found.name if found is not None else field_id

    async def playbook_usable(self, team_id: str, user_id: str, playbook_id: str) -> Playbook:
        """The playbook with this id if the user may use it in ``team_id`` (a pick from a list of
        theirs); else NotFound, as for a missing one."""
        actor = await self.directory.actor(user_id)
        for playbook in await self.store.playbooks_for_user(team_id, user_id, is_admin=actor.is_system_admin):
            if playbook.id == playbook_id:
                return playbook
        raise NotFound(f"No such playbook among yours. Type {COMMAND}playbook list to see their titles.")

    async def playbook_title(self, playbook_id: str) -> str | None:
        """The title of the playbook a list is narrowed to (the list's filters carry its id), if it exists."""
        playbook = await self.store.get_playbook(playbook_id)
        return playbook.title if playbook is not None else None

    # Finding one incident -----------------------------------------------------------------

    async def resolve(self, user_id: str, team_id: str, channel_id: str, reference: str, verb: str) -> Incident:
        """The incident the user means: this channel's by default, else by name or ~channel.

        Incidents the user may not see are reported exactly like missing ones.
        """
        reference = reference.strip()
        if not reference:
            incident = await self.store.incident_by_channel(channel_id)
            if incident is None:
                raise NotFound(NOT_HERE.format(verb=verb))
            if not await self.can_view(incident, user_id):
                raise NotFound(permissions.INCIDENT_NOT_FOUND)
            return incident
        teams = await self.teams_of(user_id, team_id)
        if not teams:
            raise NotFound(NO_TEAM)
        if reference.startswith("~"):
            name = reference[1:].strip().lower()
            for team in teams:
                incident = await self._by_channel_name(team, name)
                if incident is not None and await self.can_view(incident, user_id):
                    return incident
            raise NotFound(NOT_VISIBLE.format(what=f"in ~{neutralize(name)}"))
        name = _unquote(reference)
        # A name, or the incident channel's name typed without its "~" (people copy it from the URL).
        slug = name.lower()
        found: dict[str, Incident] = {}
        for team in teams:
            for incident in await self._named(team, name):
                found.setdefault(incident.id, incident)
            by_channel = await self._by_channel_name(team, slug)
            if by_channel is not None:
                found.setdefault(by_channel.id, by_channel)
        # Only what the user may see counts: a hidden match is answered exactly like no match.
        visible = [incident for incident in found.values() if await self.can_view(incident, user_id)]
        if len(visible) == 1:
            return visible[0]
        if visible:
            raise ValidationError(await self._several(visible, name, verb))
        raise NotFound(NOT_VISIBLE.format(what=f'called "{neutralize(name)}"'))

    async def _several(self, incidents: list[Incident], name: str, verb: str) -> str:
        """The matches of an ambiguous name, newest first, each with the ~channel that names it alone."""
        incidents = sorted(incidents, key=lambda i: (-i.created_at, i.id))
        channels = await self.channel_names(i.channel_id for i in incidents[:_MATCHES_SHOWN])
        lines = [f'{len(incidents)} incidents you can see are called "{neutralize(name)}":']
        for incident in incidents[:_MATCHES_SHOWN]:
            channel = channels.get(incident.channel_id)
            where = f" ~{channel}" if channel else ""
            status = "ongoing" if incident.is_ongoing else "ended"
            lines.append(f"- **{neutralize(incident.name)}**{where} · {status} · "
                         f"started {format_time(incident.created_at)}")
        if len(incidents) > _MATCHES_SHOWN:
            lines.append(f"- and {len(incidents) - _MATCHES_SHOWN} more (see {COMMAND}list --search)")
        example = next((channels[i.channel_id] for i in incidents if channels.get(i.channel_id)), "channel-name")
        lines.append(f"Say which one with its channel, e.g. `{COMMAND}{verb} ~{example}`.")
        return "\n".join(lines)

    async def _by_channel_name(self, team_id: str, name: str) -> Incident | None:
        if not re.fullmatch(r"[a-z0-9_-]{1,64}", name):
            return None
        try:
            channel = await self.client.channel_by_name(team_id, name)
        except MattermostError as error:
            if error.status in (403, 404):
                return None
            raise
        incident = await self.store.incident_by_channel(channel.id)
        return incident if incident is not None and incident.team_id == team_id else None

    async def _named(self, team_id: str, name: str) -> list[Incident]:
        """Incidents of a team whose name is ``name`` ignoring case, newest first."""
        wanted = " ".join(name.split()).lower()
        found: list[Incident] = []
        page = 0
        while True:
            chunk = await self.store.list_incidents(team_id, is_admin=True, search=" ".join(name.split()),
                                                    page=page, per_page=_SCAN_CHUNK)
            found.extend(i for i in chunk.items if " ".join(i.name.split()).lower() == wanted)
            if (page + 1) * _SCAN_CHUNK >= chunk.total or not chunk.items:
                return found
            page += 1

    # Details ------------------------------------------------------------------------------

    async def channel_figures(self, channel_id: str) -> ChannelFigures:
        """Members involved and message counts, from every post of the channel plus its current members.

        Involved: the authors of posts (not webhook or slash-command posts, whose author may never
        have been in the channel), the users named by join/leave/add/remove system posts, and the
        current members — bots removed.  Deleted posts are not counted.
        """
        figures = ChannelFigures()
        involved: set[str] = set()
        posts_by_author: dict[str, int] = {}
        try:
            async for batch in channel_pages(self.client, channel_id):
                for post in batch:
                    author = post.user_id
                    if post.is_system:
                        figures.system_messages += 1
                        involved.add(author)
                        involved.update(str(post.props[key]) for key in _SYSTEM_PROP_USERS if post.props.get(key))
                    elif post.from_integration:
                        figures.messages_by_bots += 1
                    else:
                        involved.add(author)
                        posts_by_author[author] = posts_by_author.get(author, 0) + 1
            involved.update(await self.directory.channel_member_ids(channel_id))
        except MattermostError as error:
            if error.status not in (403, 404):
                raise
            figures.readable = False
        involved.discard("")
        people = await self._people(involved)
        figures.members_involved = sorted(people)
        for author, count in posts_by_author.items():
            if author in people:
                figures.messages_by_people += count
            else:
                figures.messages_by_bots += count
        return figures

    async def _people(self, user_ids: set[str]) -> set[str]:
        """The ids among ``user_ids`` that belong to people (not bots)."""
        ids = sorted(user_ids)
        people: set[str] = set()
        for start in range(0, len(ids), 100):
            for user in await self.client.users_by_ids(ids[start:start + 100]):
                if not user.is_bot:
                    people.add(user.id)
        return people

    async def timeline_of(self, incident: Incident) -> list[TimelineEvent]:
        """Every event of the incident in recorded order (hidden ones too: ``domain.timeline.entries``
        leaves them out where they are shown). The caller has checked that the viewer may see it."""
        return await self.store.timeline(incident.id)

    async def details(self, incident: Incident) -> IncidentDetails:
        figures, timeline, channel_name = await asyncio.gather(
            self.channel_figures(incident.channel_id), self.store.timeline(incident.id),
            self.channel_name(incident.channel_id))
        hidden = tl.hidden_ids(timeline)  # what the commander hid is hidden here too
        completions = [event for event in timeline if event.kind in (EventKind.STEP_CHECKED, EventKind.STEP_UNCHECKED)
                       and event.id not in hidden]
        ids = {incident.commander_id, *figures.members_involved, *(e.actor_id for e in completions)}
        for stage in incident.stages:
            ids.update(step.state_changed_by for step in stage.steps if step.state_changed_by)
        ids.update(value for f, value in field_ops.shown_values(incident) if f.kind is FieldKind.USER)
        return IncidentDetails(incident, channel_name, figures, completions, await self.usernames(ids))

    # Export -------------------------------------------------------------------------------

    async def export(self, incident: Incident, user_id: str, *, raw: bool = False,
                     wait_s: float = EXPORT_REPLY_WAIT_S) -> ExportResult:
        """Send the caller a CSV of the incident channel by DM, spreadsheet-safe unless ``raw``.

        Returns once the file is sent, or after ``wait_s`` with ``pending=True`` while a large export
        finishes in the background (a failure is then reported in the DM instead).
        """
        if not await self.can_view(incident, user_id):
            raise NotFound(permissions.INCIDENT_NOT_FOUND)
        task = asyncio.create_task(self._export(incident, user_id, raw), name=f"export-{incident.id}")
        done, _ = await asyncio.wait({task}, timeout=wait_s)
        if done:
            return task.result()
        follow_up = asyncio.create_task(self._report_failure(task, incident, user_id))
        self._background.add(follow_up)
        follow_up.add_done_callback(self._background.discard)
        return ExportResult(pending=True)

    async def export_file(self, incident: Incident, user_id: str, out: IO[bytes], *,
                          raw: bool = False) -> tuple[str, int]:
        """The same CSV as :meth:`export`, written to ``out`` (the backstage's download) instead of a
        DM: the same visibility check first, the same spreadsheet safety. Returns (file name, posts)."""
        if not await self.can_view(incident, user_id):
            raise NotFound(permissions.INCIDENT_NOT_FOUND)
        async with self._exports:
            channel_name = await self.channel_name(incident.channel_id) or "incident"
            stamp = dt.datetime.fromtimestamp(self.ctx.clock() / 1000, dt.UTC).strftime("%Y%m%d-%H%M")
            count = await self._write_csv(incident, out, raw)
            return f"{channel_name}-{stamp}.csv", count

    async def _write_csv(self, incident: Incident, out: IO[bytes], raw: bool) -> int:
        """The channel's messages as CSV into the binary file ``out``; how many were written."""
        try:
            return await write_channel_csv(channel_pages(self.client, incident.channel_id), out,
                                           UsernameCache(self.client), raw=raw)
        except MattermostError as error:
            if error.status in (403, 404):
                raise InvalidState(f"Command Center can no longer read the channel of "
                                   f"**{neutralize(incident.name)}**. Add @{self.client.username} back "
                                   "to it, then export again.") from error
            raise

    async def _report_failure(self, task: asyncio.Task, incident: Incident, user_id: str) -> None:
        try:
            await task
        except Exception as error:
            log.error("export of incident %s for %s failed: %s", incident.id, user_id, error)
            try:
                dm = await self.client.direct_channel_with(user_id)
                await self.client.create_post(dm.id, f"The export of **{neutralize(incident.name)}** failed: "
                                                     f"{user_message(error, self.ctx.settings.command_trigger)}")
            except MattermostError:
                log.exception("could not tell %s that the export failed", user_id)

    async def _export(self, incident: Incident, user_id: str, raw: bool) -> ExportResult:
        async with self._exports:
            channel_name = await self.channel_name(incident.channel_id) or "incident"
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M")
            filename = f"{channel_name}-{stamp}.csv"
            dm = await self.client.direct_channel_with(user_id)
            with tempfile.TemporaryFile() as out:
                count = await self._write_csv(incident, out, raw)
                info = await self.client.upload_file_stream(dm.id, filename, out)
            note = _RAW_NOTE if raw else _SAFE_NOTE.format(
                export_raw=command(self.ctx.settings.command_trigger, "export --raw"))
            await self.client.create_post(
                dm.id, f"Export of **{neutralize(incident.name)}** (~{channel_name}): {count} posts, oldest "
                       f"first, system messages included, attachments left out. {note}", file_ids=[info.id])
            return ExportResult(posts=count, filename=filename)


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'“”":
        return text[1:-1].strip()
    if len(text) >= 2 and text[0] == "“" and text[-1] == "”":
        return text[1:-1].strip()
    return text


__all__ = [
    "PER_PAGE",
    "ChannelFigures",
    "ExportResult",
    "HistoryService",
    "IncidentDetails",
    "ListFilters",
    "ListPage",
]
