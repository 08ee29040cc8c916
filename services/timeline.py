"""The full timeline (issue 18): showing it, adding posts to it, hiding events, and recording
what happens in incident channels (members joining and leaving, posts pinned, edited, deleted).

Events are append-only (domain/timeline.py folds them into what people see). Whether an event
is news — a post already on the timeline, a join already recorded — is decided inside one store
transaction from the events about that post or person (``Store.events_about``, by index), so two
reactions at once, or a live event and its replay by the catch-up, record one event. Events of one
channel are handled one at a time, in the order they arrived (the catch-up replays a channel's
changes oldest first), by a per-channel lock taken before anything else is awaited.

Posts added from another channel (``timeline add``) keep the text they had when added: the bot
hears about edits and deletes only in channels it is in, and the timeline follows the incident
channel's own posts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from domain import limits
from domain import timeline as tl
from domain._ops import event as new_event
from domain.errors import InvalidState, NotFound, PermissionDenied, ValidationError
from domain.models import EventKind, Incident, TimelineEvent
from gateway.directory import Directory
from gateway.errors import MattermostError
from gateway.models import Post, Reaction, WebSocketEvent
from gateway.timeline import user_ids_of
from services.context import BotContext
from services.history import HistoryService
from services.incidents import IncidentService, post_id_from

log = logging.getLogger(__name__)

#: One answer for a post that does not exist, that the user may not read, and that the bot may not read
#: (Mattermost answers the bot 403 for a channel it is not in, without saying whose post it is): telling
#: them apart would tell anyone which posts exist in channels they cannot read.
CANNOT_READ = ("I cannot add that post: it does not exist, you cannot read it, or I cannot — I read only the "
               "channels I am in. If it is in a channel you can read, add @{bot} to that channel and try again, "
               "or quote it in the incident channel and add that post instead.")


def excerpt_of(message: str) -> str:
    """The part of a post kept in its timeline entry: one line, at most ``TIMELINE_EXCERPT_MAX``
    characters (escaped when shown, by gateway/timeline.py)."""
    text = " ".join(message.split())
    if len(text) > limits.TIMELINE_EXCERPT_MAX:
        text = text[: limits.TIMELINE_EXCERPT_MAX - 1] + "…"
    return text


@dataclass(frozen=True)
class TimelinePage:
    """One page of an incident's timeline as one person may see it."""

    incident: Incident
    entries: list[tl.Entry]
    page: int  # from 0
    pages: int
    total: int
    names: dict[str, str]
    include_hidden: bool = False


class TimelineService:
    """Reads and writes the timeline; permission checks on every path."""

    def __init__(self, ctx: BotContext, directory: Directory, incidents: IncidentService,
                 history: HistoryService) -> None:
        self.ctx = ctx
        self.directory = directory
        self.incidents = incidents
        self.history = history
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._team_names: dict[str, str] = {}

    @property
    def store(self):
        return self.ctx.store

    @property
    def emoji(self) -> str:
        return self.ctx.settings.timeline_emoji

    # Showing --------------------------------------------------------------------------------

    async def page(self, user_id: str, team_id: str, channel_id: str, reference: str, *, page: int = 0,
                   include_hidden: bool = False) -> TimelinePage:
        """Page ``page`` (from 0) of the timeline of the incident the user means (this channel's by
        default; by name or ~channel, like ``info``); NotFound for an incident they may not see.
        ``include_hidden`` (``--all``) is for the commander and system admins only."""
        incident = await self.history.resolve(user_id, team_id, channel_id, reference, "timeline")
        if include_hidden:
            actor = await self.directory.actor(user_id)
            if user_id != incident.commander_id and not actor.is_system_admin:
                raise PermissionDenied("Only the commander can list hidden events (--all).")
        shown = tl.entries(await self.store.timeline(incident.id), include_hidden=include_hidden)
        items, pages = tl.page_of(shown, page, limits.TIMELINE_PER_PAGE)
        ids: set[str] = set()
        for entry in items:
            ids |= user_ids_of(entry.event)
            if entry.hidden_by:
                ids.add(entry.hidden_by)
        names = await self.history.usernames(ids)
        return TimelinePage(incident, items, page, pages, len(shown), names, include_hidden)

    # Changing ---------------------------------------------------------------------------------

    async def hide(self, user_id: str, channel_id: str, number: int) -> tuple[Incident, TimelineEvent]:
        """Hide event ``number`` of this channel's incident; the commander (or a system admin) only."""
        incident = await self.incidents.in_channel(channel_id)
        actor = await self.incidents.require_viewer(incident, user_id)
        async with self.store.transaction():
            events = await self.store.timeline(incident.id)
            hidden = tl.hide(incident, events, number, user_id, self.ctx.clock(), is_admin=actor.is_system_admin)
            await self.store.append_events([hidden])
        return incident, events[number - 1]

    async def add_link(self, user_id: str, channel_id: str, link: str, note: str = "") -> tuple[Incident, int]:
        """Add the post behind ``link`` to this channel's incident's timeline, with ``note``.

        The user must be in the incident channel and able to read the post's channel (a member,
        or a member of its team when it is public) — the same answer for a post that does not
        exist, so nothing about other channels is learned. The bot must be able to read it too.
        Returns the incident and the new entry's number."""
        incident = await self.incidents.in_channel(channel_id)
        await self.incidents.require_member(incident, user_id)
        note = " ".join(note.split())
        if len(note) > limits.TIMELINE_NOTE_MAX:
            raise ValidationError(f"The note is {len(note)} characters long; at most {limits.TIMELINE_NOTE_MAX} "
                                  "fit. Shorten it, or post it in the channel and add that post.")
        post_id = post_id_from(link)
        try:
            post = await self.ctx.client.get_post(post_id)
        except MattermostError as error:
            if error.status in (403, 404):
                raise NotFound(CANNOT_READ.format(bot=self.ctx.client.username)) from None
            raise
        if post.delete_at or not await self.incidents.readable_source_post(post.id, user_id):
            raise NotFound(CANNOT_READ.format(bot=self.ctx.client.username))
        async with self._channel(incident.channel_id):
            number = await self._add(incident, post, user_id, via="command", note=note)
        if number is None:
            raise InvalidState("That post is already on this incident's timeline.")
        return incident, number

    async def _add(self, incident: Incident, post: Post, actor_id: str, *, via: str, note: str = "") -> int | None:
        permalink = await self.permalink(incident.team_id, post.id)
        async with self.store.transaction():
            about = await self.store.events_about(incident.id, post.id)
            if tl.post_on_timeline(about) is not None:
                return None
            details: dict[str, object] = {"post_id": post.id, "author_id": post.user_id,
                                          "channel_id": post.channel_id, "excerpt": excerpt_of(post.message),
                                          "permalink": permalink, "via": via}
            if note:
                details["note"] = note
            # The post's own time: a message from before the start sorts before it.
            added = new_event(incident, EventKind.POST_ADDED, actor_id, post.create_at, **details)
            await self.store.append_events([added])
        return tl.recorded_order(await self.store.timeline(incident.id))[added.id]

    async def permalink(self, team_id: str, post_id: str) -> str:
        """``<site>/<team>/pl/<post id>`` (Mattermost's permalink), ``/_redirect/pl/`` if the team is unknown."""
        name = self._team_names.get(team_id)
        if name is None:
            try:
                for team in await self.ctx.client.my_teams():
                    self._team_names[team.id] = team.name
            except MattermostError as error:
                log.warning("cannot list the bot's teams for a permalink: %s", error)
            name = self._team_names.get(team_id, "")
        return f"{self.ctx.client.base_url}/{name or '_redirect'}/pl/{post_id}"

    # What happens in incident channels (WebSocket events, live or replayed) --------------------

    @asynccontextmanager
    async def _channel(self, channel_id: str) -> AsyncIterator[None]:
        """One change of a channel at a time, in the order they asked (asyncio locks are fair)."""
        lock, users = self._locks.get(channel_id) or (asyncio.Lock(), 0)
        self._locks[channel_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[channel_id]
            if users <= 1:
                del self._locks[channel_id]
            else:
                self._locks[channel_id] = (lock, users - 1)

    def _is_me(self, user_id: str) -> bool:
        return not user_id or user_id == self.ctx.client.user_id

    async def reaction_added(self, event: WebSocketEvent) -> None:
        """The timeline emoji on a post of an incident channel adds the post (once, however many react)."""
        reaction = event.reaction
        if reaction is None or reaction.emoji_name != self.emoji or self._is_me(reaction.user_id):
            return
        channel_id = event.channel_id or reaction.channel_id
        async with self._channel(channel_id):
            incident = await self.store.incident_by_channel(channel_id)
            if incident is None or tl.post_on_timeline(await self.store.events_about(incident.id, reaction.post_id)):
                return
            try:
                post = await self.ctx.client.get_post(reaction.post_id)
            except MattermostError as error:
                if error.status in (403, 404):
                    return  # deleted meanwhile, or the bot was removed from the channel
                raise
            if post.delete_at or post.channel_id != incident.channel_id:
                return
            await self._add(incident, post, reaction.user_id, via="reaction")

    async def reaction_removed(self, event: WebSocketEvent) -> None:
        """The last timeline emoji taken off a post removes the entry its reaction added."""
        reaction = event.reaction
        if reaction is None or reaction.emoji_name != self.emoji:
            return
        channel_id = event.channel_id or reaction.channel_id
        async with self._channel(channel_id):
            incident = await self.store.incident_by_channel(channel_id)
            if incident is None:
                return
            on = tl.post_on_timeline(await self.store.events_about(incident.id, reaction.post_id))
            if on is None or on.details.get("via") != "reaction":
                return
            try:
                left = await self.ctx.client.post_reactions(reaction.post_id)
            except MattermostError as error:
                if error.status not in (403, 404):
                    raise
                left = []
            if self._pinned(left):
                return  # someone else's pin is still on it
            await self._remove(incident, reaction.post_id, reaction.user_id or incident.commander_id)

    def _pinned(self, reactions: tuple[Reaction, ...] | list[Reaction]) -> bool:
        return any(r.emoji_name == self.emoji and not r.delete_at for r in reactions)

    async def _remove(self, incident: Incident, post_id: str, actor_id: str) -> None:
        async with self.store.transaction():
            if tl.post_on_timeline(await self.store.events_about(incident.id, post_id)) is None:
                return
            await self.store.append_events([new_event(incident, EventKind.POST_REMOVED, actor_id,
                                                      self.ctx.clock(), post_id=post_id)])

    async def post_changed(self, event: WebSocketEvent) -> None:
        """A post edited or deleted (``post_edited`` / ``post_deleted``), or changed while the bot was
        disconnected (``post_changed``, made by the catch-up from ``GET /channels/{id}/posts?since=``):
        an entry follows its post's text, is marked when it is deleted, and — for a change the bot
        only learns from the catch-up — is removed when the post no longer has the timeline emoji."""
        post = event.post
        if post is None or not post.id or post.original_id:
            return  # an edit's history copy, not the post
        if event.event == "post_edited" and self._is_me(post.user_id):
            return  # the bot's own edits (its cards, many a minute) are not followed
        channel_id = post.channel_id or event.channel_id
        async with self._channel(channel_id):
            incident = await self.store.incident_by_channel(channel_id)
            if incident is None:
                return
            about = await self.store.events_about(incident.id, post.id)
            on = tl.post_on_timeline(about)
            if on is None:
                return
            deleted = bool(post.delete_at) or event.event == "post_deleted"
            unpinned = False
            if event.event == "post_changed" and not deleted and on.details.get("via") == "reaction":
                # Learned only from the catch-up: the post's reactions now (its metadata carries them;
                # without it, asked) tell whether the timeline emoji was taken off meanwhile.
                reactions = post.metadata.reactions
                if reactions is None:
                    reactions = tuple(await self.ctx.client.post_reactions(post.id)) if post.has_reactions else ()
                unpinned = not self._pinned(reactions)
            now = self.ctx.clock()
            async with self.store.transaction():
                about = await self.store.events_about(incident.id, post.id)
                if tl.post_on_timeline(about) is None:
                    return
                changes: list[TimelineEvent] = []
                if deleted:
                    if not tl.post_deleted(about):
                        actor = event.actor_id or post.user_id
                        changes.append(new_event(incident, EventKind.POST_DELETED, actor, now, post_id=post.id))
                else:
                    excerpt = excerpt_of(post.message)
                    if excerpt != tl.post_excerpt(about):
                        changes.append(new_event(incident, EventKind.POST_EDITED, post.user_id, now,
                                                 post_id=post.id, excerpt=excerpt))
                    if unpinned:
                        changes.append(new_event(incident, EventKind.POST_REMOVED, incident.commander_id, now,
                                                 post_id=post.id))
                if changes:
                    await self.store.append_events(changes)

    async def membership(self, event: WebSocketEvent) -> None:
        """``user_added`` / ``user_removed`` in an incident channel: a member joined or left (recorded
        once, whether seen live, replayed by the catch-up, or both)."""
        joined = event.event == "user_added"
        user_id = event.member_id
        channel_id = event.channel_id
        if not user_id and not joined:
            return  # the copy sent to the removed user: the channel's own copy names them
        if self._is_me(user_id) or not channel_id:
            return
        if joined and self.incidents.start_joins.take(channel_id, user_id):
            return  # a start here added them and records the join with its incident
        kind = EventKind.MEMBER_JOINED if joined else EventKind.MEMBER_LEFT
        at = event.at if event.replayed and event.at else self.ctx.clock()
        actor = event.actor_id or user_id
        async with self._channel(channel_id):
            incident = await self.store.incident_by_channel(channel_id)
            if incident is None:
                return
            # Most joins are already recorded (a start writes its members' with the incident): a plain
            # read says so without taking the writer; a change is decided again inside the transaction.
            if not tl.membership_needed(await self.store.events_about(incident.id, user_id), kind, at,
                                        replayed=event.replayed):
                return
            async with self.store.transaction():
                about = await self.store.events_about(incident.id, user_id)
                if not tl.membership_needed(about, kind, at, replayed=event.replayed):
                    return
                await self.store.append_events([new_event(incident, kind, actor, at, user_id=user_id)])


__all__ = ["CANNOT_READ", "TimelinePage", "TimelineService", "excerpt_of"]
