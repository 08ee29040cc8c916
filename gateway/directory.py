"""What Mattermost knows about people and channels, asked through the one client, partly kept.

Permission checks need facts only Mattermost has (is this user a system admin, a member of this
team or channel?).  Channel membership is kept from Mattermost's own WebSocket events
(:meth:`Directory.observe`), so a leaver loses access and a joiner gains it as soon as the event
arrives, without any expiry:

* only for channels the bot is in (only those send it ``user_added`` / ``user_removed``), and only
  while the WebSocket is up: losing it, or connecting again, drops everything kept (events missed
  in between are not caught up);
* an answer asked over REST is kept only if no membership news about that channel arrived while
  it was being asked;
* only "yes" is answered from what is kept; "no" is always asked, so nobody just added is refused;
  callers pass ``fresh`` where Mattermost has not just vouched for the membership itself.

The incident list needs a definite answer for many channels at once (:meth:`Directory.members_among`),
and Mattermost lets a bot list another user's channels only with ``manage_system``
(api4/channel.go ``getChannelMembersForTeamForUser``).  So the directory keeps a channel's *whole*
member list once asked (``GET /channels/{id}/members``, one call per 200 members, once per channel
per connection), and keeps it right from the events; "not in the list" is then definite too.  A
channel the bot is not in is answered "no" for everyone (Mattermost answers the bot 403 there).
After the WebSocket comes back, the channels whose lists were kept before the loss are loaded again
in the background (:meth:`Directory.preload`), so nothing from before the outage is trusted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Iterable
from typing import TYPE_CHECKING, TypeVar

from domain import Actor
from gateway.errors import MattermostError
from gateway.models import ChannelMember, User, WebSocketEvent

if TYPE_CHECKING:
    from gateway.api import MattermostAPI

log = logging.getLogger(__name__)
T = TypeVar("T")

_USER_TTL_S = 60.0
#: Member lists asked at the same time (a list walk, a preload).
_LOAD_CONCURRENCY = 8
#: Background preloads keep this many calls in flight at most, leaving room for people's requests.
_PRELOAD_CONCURRENCY = 4
_MEMBERS_PER_PAGE = 200


class Directory:
    """User, team and channel lookups for permission checks and rendering."""

    def __init__(self, client: MattermostAPI) -> None:
        self.client = client
        self._users: dict[str, tuple[float, User]] = {}
        # channel -> the users known to be in it (channels the bot is in only; the bot included)
        self._members: dict[str, set[str]] = {}
        self._complete: set[str] = set()  # channels whose every member is in _members
        self._versions: dict[str, int] = {}  # per channel: bumped by every piece of membership news
        self._epoch = 0  # bumped when the WebSocket goes down or comes up
        self._live = False  # events are arriving: what is kept stays right
        self._absent: set[str] = set()  # channels the bot is known not to be in (while live)
        self._loading: dict[str, asyncio.Future[frozenset[str] | None]] = {}  # channel -> its member list being asked
        self._load_gate = asyncio.Semaphore(_LOAD_CONCURRENCY)
        self._reconcile: set[str] = set()  # complete before the last loss: load again when live
        self._queue: dict[str, None] = {}  # channels to preload, in order
        self._preloader: asyncio.Task[None] | None = None
        self.preloaded = asyncio.Event()  # set while nothing is waiting to be preloaded
        self.preloaded.set()
        self.member_lists_loaded = 0  # member lists asked over REST (for tests and benchmarks)

    async def user(self, user_id: str) -> User:
        cached = self._users.get(user_id)
        if cached and time.monotonic() - cached[0] < _USER_TTL_S:
            return cached[1]
        user = await self.client.get_user(user_id)
        self._users[user_id] = (time.monotonic(), user)
        return user

    async def users(self, user_ids: Iterable[str]) -> list[User]:
        """The users with these ids, in order; one request for those not cached, unknown ids left out."""
        wanted = list(dict.fromkeys(user_id for user_id in user_ids if user_id))
        now = time.monotonic()
        missing = [user_id for user_id in wanted
                   if user_id not in self._users or now - self._users[user_id][0] >= _USER_TTL_S]
        if missing:
            for user in await self.client.users_by_ids(missing):
                self._users[user.id] = (now, user)
        return [self._users[user_id][1] for user_id in wanted if user_id in self._users]

    async def username(self, user_id: str | None) -> str:
        if not user_id:
            return ""
        try:
            return (await self.user(user_id)).username
        except MattermostError:
            return ""

    async def user_by_username(self, username: str) -> User | None:
        """The user with this username (leading @ ignored), or None when there is none."""
        name = username.strip().lstrip("@").lower()
        if not name:
            return None
        try:
            user = await self.client.get_user_by_username(name)
        except MattermostError as error:
            if error.status in (400, 404):
                return None
            raise
        self._users[user.id] = (time.monotonic(), user)
        return user

    async def team_user_by_username(self, team_id: str, username: str) -> User | None:
        """The active user with this username if they are in ``team_id``; None otherwise.

        The bot sees the users of every team it is in; someone asking in one team must not learn
        who exists in another, so a user outside the team is answered exactly like a missing one."""
        user = await self.user_by_username(username)
        if user is None or not user.active or not await self.is_team_member(team_id, user.id):
            return None
        return user

    async def actor(self, user_id: str) -> Actor:
        user = await self.user(user_id)
        return Actor(user_id=user_id, is_system_admin=user.is_system_admin)

    async def actor_in_team(self, team_id: str, user_id: str, *, vouched: bool = False) -> tuple[Actor, bool]:
        """The actor and whether they are a member of ``team_id``, asked at the same time.

        ``vouched``: Mattermost already guarantees the user may act in the team — the team of a
        slash command (api4/command.go ``executeCommand`` runs a command only for a user with
        ``create_post``/``use_slash_commands`` in the channel, and takes the team from the channel;
        in a direct message it checks the session's team membership). A system admin may pass that
        check without being a team member; every decision treats admins as allowed anyway.
        """
        if vouched:
            return await self.actor(user_id), True
        cached = self._users.get(user_id)
        if cached and time.monotonic() - cached[0] < _USER_TTL_S:
            # Nothing to ask about the user: no second request to overlap with, so no tasks to make.
            actor = Actor(user_id=user_id, is_system_admin=cached[1].is_system_admin)
            return actor, await self.is_team_member(team_id, user_id)
        actor, is_member = await asyncio.gather(self.actor(user_id), self.is_team_member(team_id, user_id))
        return actor, is_member

    async def is_bot(self, user_id: str) -> bool:
        return (await self.user(user_id)).is_bot

    async def is_channel_member(self, channel_id: str, user_id: str, *, fresh: bool = False) -> bool:
        """Whether ``user_id`` is in the channel now.

        A "yes" is answered from the membership kept by events, unless ``fresh``: pass it where
        Mattermost has not just checked the membership itself (dialog submissions — api4
        ``submitDialog`` checks read access to whatever channel the client names — and the people
        a change is about, e.g. a new commander). A "no" is always asked, so someone just added is
        never refused on a stale answer.
        """
        members = self._members.get(channel_id)
        if not fresh and members is not None and user_id in members:
            return True
        epoch, version = self._epoch, self._versions.get(channel_id, 0)
        bot_id = self.client.user_id
        if members is not None or user_id == bot_id:
            member = await self._ask_member(channel_id, user_id)
            bot_member = member if user_id == bot_id else True
        else:
            # Only the channels the bot is in send it membership events: learn that at the same time.
            member, bot_member = await asyncio.gather(self._ask_member(channel_id, user_id),
                                                      self._ask_member(channel_id, bot_id))
        if self._unchanged(channel_id, epoch, version):
            self._learn(channel_id, bot_member, {user_id: member})
        return member

    async def _ask_member(self, channel_id: str, user_id: str) -> bool:
        try:
            await self.client.get_channel_member(channel_id, user_id)
        except MattermostError as error:
            if error.status not in (403, 404):
                raise
            return False
        return True

    def _unchanged(self, channel_id: str, epoch: int, version: int) -> bool:
        """True when an answer asked at (epoch, version) may be kept: the events are flowing and
        no membership news about the channel arrived while it was asked."""
        return self._live and self._epoch == epoch and self._versions.get(channel_id, 0) == version

    def _learn(self, channel_id: str, bot_member: bool, answers: dict[str, bool], *, complete: bool = False) -> None:
        if not bot_member:
            self._drop(channel_id)
            self._absent.add(channel_id)
            return
        self._absent.discard(channel_id)
        if complete:
            self._members[channel_id] = {self.client.user_id}
            self._complete.add(channel_id)
        members = self._members.setdefault(channel_id, {self.client.user_id})
        for user_id, member in answers.items():
            if member:
                members.add(user_id)
            else:
                members.discard(user_id)

    def _drop(self, channel_id: str) -> None:
        self._members.pop(channel_id, None)
        self._complete.discard(channel_id)
        self._versions[channel_id] = self._versions.get(channel_id, 0) + 1

    # Membership kept by events ---------------------------------------------------------------

    def connection_changed(self, connected: bool) -> None:
        """The WebSocket came up or went down: whatever happened in between was not seen, so
        everything kept is dropped, and nothing is kept while no events arrive."""
        self._reconcile |= self._complete
        self._members.clear()
        self._complete.clear()
        self._absent.clear()
        self._loading.clear()  # answers being asked now belong to the old connection: never shared
        self._epoch += 1
        self._live = connected
        self._stop_preloading()
        if connected and self._reconcile:
            # What was kept before the loss may have changed unseen: load it again, in the background.
            self.preload(sorted(self._reconcile))
            self._reconcile.clear()

    #: The events :meth:`observe` learns from (the stream parses no other for it).
    OBSERVED_EVENTS = frozenset({"user_added", "user_removed", "channel_member_updated", "leave_team"})

    def observe(self, event: WebSocketEvent) -> None:
        """Apply one WebSocket event (called for every event, in order, before any handler runs).

        What Mattermost sends (server/channels/app/channel.go): ``AddUserToChannel`` sends
        ``user_added`` {user_id, team_id} to the channel (without the added user) and to the
        added user, both with the channel in the broadcast; ``removeUserFromChannel`` sends
        ``user_removed`` {user_id, remover_id} to the channel and {channel_id, remover_id} to the
        removed user; ``updateChannelMember`` sends ``channel_member_updated`` {channelMember}
        only to that member. ``LeaveTeam`` (app/team.go) takes a user out of every channel of the
        team without a ``user_removed`` per channel; ``leave_team`` {user_id, team_id} goes to
        the team.
        """
        name, data, broadcast = event.event, event.data, event.broadcast
        bot_id = self.client.user_id
        if name == "user_added":
            channel_id, user_id = broadcast.channel_id, str(data.get("user_id") or "")
            if channel_id and user_id:
                self._bump(channel_id)
                if user_id == bot_id:
                    self._absent.discard(channel_id)
                    self._members.setdefault(channel_id, {bot_id})
                elif channel_id in self._members:
                    self._members[channel_id].add(user_id)
        elif name == "user_removed":
            user_id = str(data.get("user_id") or broadcast.user_id)
            channel_id = str(data.get("channel_id") or broadcast.channel_id)
            if not channel_id:
                return
            if user_id == bot_id:
                self._drop(channel_id)  # no more events from there: nothing kept can be trusted
                if self._live:
                    self._absent.add(channel_id)  # until a user_added about the bot says otherwise
            elif user_id:
                self._bump(channel_id)
                self._members.get(channel_id, set()).discard(user_id)
        elif name == "channel_member_updated":
            raw = data.get("channelMember")
            try:
                member = (ChannelMember.model_validate_json(raw) if isinstance(raw, str)
                          else ChannelMember.model_validate(raw))
            except ValueError:
                return
            if member.user_id == bot_id and member.channel_id:
                self._bump(member.channel_id)
                self._absent.discard(member.channel_id)
                self._members.setdefault(member.channel_id, {bot_id})
        elif name == "leave_team":
            user_id = str(data.get("user_id") or "")
            if user_id == bot_id:
                self.connection_changed(self._live)
            elif user_id:
                for channel_id, members in self._members.items():
                    if user_id in members:
                        members.discard(user_id)
                        self._bump(channel_id)

    def _bump(self, channel_id: str) -> None:
        self._versions[channel_id] = self._versions.get(channel_id, 0) + 1

    async def is_team_member(self, team_id: str, user_id: str) -> bool:
        """Whether ``user_id`` is a full member of the team: what lets someone see its public incidents,
        channels and playbooks everywhere in the bot. A guest's membership is not one: its role
        ``team_guest`` grants ``view_team`` only, not ``read_public_channel`` (model/role.go
        ``MakeDefaultRoles``), so Mattermost shows a guest only the channels it was added to
        (app/post.go ``GetPostIfAuthorized``), and so does the bot — through channel membership."""
        try:
            member = await self.client.get_team_member(team_id, user_id)
        except MattermostError as error:
            if error.status not in (403, 404):
                raise
            return False
        return not member.delete_at and not member.is_guest

    def channel_created(self, channel_id: str) -> None:
        """The bot has just created this channel, so it is its only member; joins arrive as events."""
        if self._live and not self._versions.get(channel_id):
            self._members[channel_id] = {self.client.user_id}
            self._complete.add(channel_id)
            self._absent.discard(channel_id)

    def forget_channel(self, channel_id: str) -> None:
        """Drop what is known about a channel's members (the bot changed them itself)."""
        self._drop(channel_id)

    async def channel_member_ids(self, channel_id: str) -> list[str]:
        """Every member of a channel (all pages; kept by events once asked, for channels the bot is in)."""
        if channel_id in self._complete:
            return sorted(self._members[channel_id])
        epoch, version = self._epoch, self._versions.get(channel_id, 0)
        members = await self._fetch_members(channel_id)
        if self._unchanged(channel_id, epoch, version):
            self._learn(channel_id, self.client.user_id in members, dict.fromkeys(members, True), complete=True)
        return members

    async def _fetch_members(self, channel_id: str) -> list[str]:
        members: list[str] = []
        page = 0
        self.member_lists_loaded += 1
        while True:
            batch = await self.client.channel_members(channel_id, page=page, per_page=_MEMBERS_PER_PAGE)
            members.extend(member.user_id for member in batch)
            if len(batch) < _MEMBERS_PER_PAGE:
                return members
            page += 1

    # Definite answers for many channels (the incident list) -----------------------------------

    async def members_among(self, channel_ids: Iterable[str], user_id: str) -> set[str]:
        """The channels among ``channel_ids`` that ``user_id`` is in now — definite for every one.

        From the member lists kept by events; a channel not known yet has its member list asked
        once (then kept).  A channel the bot is not in counts as "not a member" (Mattermost answers
        the bot 403 there).  While no events arrive nothing can be kept: every channel is asked.
        """
        ids = list(dict.fromkeys(channel_ids))
        if not self._live:
            answers = await asyncio.gather(*(self._gated(self._ask_member(c, user_id)) for c in ids))
            return {channel_id for channel_id, member in zip(ids, answers) if member}
        found: set[str] = set()
        unknown: list[str] = []
        for channel_id in ids:
            if channel_id in self._complete:
                if user_id in self._members[channel_id]:
                    found.add(channel_id)
            elif channel_id not in self._absent:
                unknown.append(channel_id)
        if unknown:
            lists = await asyncio.gather(*(self._members_of(channel_id) for channel_id in unknown))
            found.update(channel_id for channel_id, members in zip(unknown, lists)
                         if members is not None and user_id in members)
        return found

    async def _gated(self, call: Awaitable[T]) -> T:
        async with self._load_gate:
            return await call

    async def _members_of(self, channel_id: str) -> frozenset[str] | None:
        """The channel's members now (None: the bot cannot read them), kept when no news interfered.
        Two lists needing the same channel at once share one request."""
        if channel_id in self._complete:
            return frozenset(self._members[channel_id])
        if channel_id in self._absent:
            return None
        pending = self._loading.get(channel_id)
        if pending is None:
            pending = self._loading[channel_id] = asyncio.ensure_future(self._load(channel_id))
            loading = pending

            def forget(_: object) -> None:
                if self._loading.get(channel_id) is loading:
                    self._loading.pop(channel_id, None)

            pending.add_done_callback(forget)
        return await asyncio.shield(pending)

    async def _load(self, channel_id: str) -> frozenset[str] | None:
        epoch, version = self._epoch, self._versions.get(channel_id, 0)
        try:
            async with self._load_gate:
                members = await self._fetch_members(channel_id)
        except MattermostError as error:
            if error.status not in (403, 404):
                raise
            if self._unchanged(channel_id, epoch, version):
                self._drop(channel_id)
                self._absent.add(channel_id)
            return None
        bot_member = self.client.user_id in members
        if self._unchanged(channel_id, epoch, version):
            self._learn(channel_id, bot_member, dict.fromkeys(members, True), complete=True)
        return frozenset(members) if bot_member else None

    @property
    def epoch(self) -> int:
        """Changes whenever the WebSocket goes down or comes up (everything kept was dropped)."""
        return self._epoch

    @property
    def live(self) -> bool:
        return self._live

    def kept_members(self, channel_id: str) -> frozenset[str] | None:
        """The channel's whole member list as kept now, or None when it is not kept (for tests)."""
        return frozenset(self._members[channel_id]) if channel_id in self._complete else None

    def knows_members(self, channel_id: str) -> bool:
        """True when the channel's whole member list (or the bot's absence) is kept."""
        return channel_id in self._complete or channel_id in self._absent

    def preload(self, channel_ids: Iterable[str]) -> None:
        """Load these channels' member lists in the background (in order, a few at a time), so that
        a list walking them later asks nothing.  Only while events arrive; a loss stops it."""
        if not self._live:
            return
        for channel_id in channel_ids:
            if not self.knows_members(channel_id):
                self._queue[channel_id] = None
        if self._queue and (self._preloader is None or self._preloader.done()):
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self.preloaded.clear()
            self._preloader = loop.create_task(self._preload(self._epoch), name="directory-preload")

    async def _preload(self, epoch: int) -> None:
        try:
            while self._queue and self._epoch == epoch:
                batch = list(self._queue)[:_PRELOAD_CONCURRENCY]
                for channel_id in batch:
                    self._queue.pop(channel_id, None)
                results = await asyncio.gather(*(self._members_of(c) for c in batch if not self.knows_members(c)),
                                               return_exceptions=True)
                for result in results:
                    if isinstance(result, asyncio.CancelledError):
                        raise result
                    if isinstance(result, Exception):  # that channel is asked when a list needs it
                        log.debug("preloading a channel's members failed: %s", result)
        finally:
            if self._epoch == epoch:
                self._queue.clear()
                self.preloaded.set()

    def _stop_preloading(self) -> None:
        self._queue.clear()
        if self._preloader is not None and not self._preloader.done():
            self._preloader.cancel()
        self._preloader = None
        self.preloaded.set()

    async def close(self) -> None:
        """Stop the background preload (at shutdown)."""
        task = self._preloader
        self._stop_preloading()
        if task is not None:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
