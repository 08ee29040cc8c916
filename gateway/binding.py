"""Which team a channel belongs to: every command and callback is bound to its channel's team.

A slash command's token proves only which team's command was called (the token is per team), and
anyone holding it (a team admin can read it) can put any ``channel_id`` in the form. Mattermost
itself never sends a command whose channel is in another team: ``api4/command.go``
``executeCommand`` takes the team from the channel for public and private channels, and checks
the session's team membership only for direct and group messages, which belong to no team.
Button clicks and dialog submissions carry the channel's team too (``doPostAction`` and, on
current servers, ``submitDialog`` take it from the channel). So the rule the HTTP server applies
to every request is: a channel that belongs to a team must belong to the request's team. (A
click's or dialog's channel is already fixed by the bot's signature on its context or state, so
for those the team is checked where the bot knows it without asking: incident channels and
channels seen before.)

The team is looked up once per channel: first from what the bot already knows (an incident
channel's team is in the store, even when the bot has been removed from it), then from Mattermost
(``GET /channels/{id}``). A channel's team only changes when a system admin moves the channel, so
answers are kept (bounded); a mismatch is re-checked once before it is refused, so a moved
channel works again at once.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Protocol

from gateway.errors import MattermostError
from gateway.models import Channel

#: A channel the bot cannot read and knows nothing about (someone else's direct message, a
#: private channel the bot is not in): its team cannot be known, and nothing the bot does can
#: reach it, so such a request acts only in the request's own team.
UNKNOWN: None = None


class _ChannelReader(Protocol):
    async def get_channel(self, channel_id: str) -> Channel: ...


class ChannelTeams:
    """Channel id → team id (``""`` for direct and group messages, None when it cannot be known)."""

    def __init__(self, client: _ChannelReader, *, known: Callable[[str], Awaitable[str | None]] | None = None,
                 max_entries: int = 20_000) -> None:
        self.client = client
        self.known = known
        self.max_entries = max_entries
        self._teams: OrderedDict[str, str] = OrderedDict()
        self._asking: dict[str, asyncio.Future[str | None]] = {}

    async def team_of(self, channel_id: str, *, fresh: bool = False, ask: bool = True) -> str | None:
        """``ask=False``: only what is known without asking Mattermost (cached, or in the store)."""
        if not fresh and channel_id in self._teams:
            self._teams.move_to_end(channel_id)
            return self._teams[channel_id]
        if not ask:
            return await self.known(channel_id) if self.known is not None else None
        # Many people typing in one channel at once cost one lookup, not one each.
        asking = self._asking.get(channel_id)
        if asking is None:
            asking = self._asking[channel_id] = asyncio.ensure_future(self._look_up(channel_id))
            asking.add_done_callback(lambda _: self._asking.pop(channel_id, None))
        return await asyncio.shield(asking)

    async def _look_up(self, channel_id: str) -> str | None:
        team_id = await self.known(channel_id) if self.known is not None else None
        if team_id is None:
            try:
                channel = await self.client.get_channel(channel_id)
            except MattermostError as error:
                if error.status in (400, 403, 404):
                    return UNKNOWN  # not cached: the bot may be added to it later
                raise
            team_id = channel.team_id
        self._teams[channel_id] = team_id
        self._teams.move_to_end(channel_id)
        while len(self._teams) > self.max_entries:
            self._teams.popitem(last=False)
        return team_id

    async def mismatch(self, channel_id: str, team_id: str, *, ask: bool = True) -> str | None:
        """Why a request for ``channel_id`` claiming ``team_id`` must be refused, or None if it may go on.

        ``ask=False`` for requests whose channel the bot's signature already binds (clicks, dialogs):
        their team is checked where the bot knows it without a round trip, so a click costs nothing.
        """
        channel_team = await self.team_of(channel_id, ask=ask)
        if channel_team is UNKNOWN or channel_team in ("", team_id):
            return None
        channel_team = await self.team_of(channel_id, fresh=True)  # moved to this team just now?
        if channel_team is UNKNOWN or channel_team in ("", team_id):
            return None
        return "the channel belongs to another team"
