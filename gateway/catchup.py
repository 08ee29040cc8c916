"""Catching up over REST with what the WebSocket missed while it was down (protocol.md §4.4).

Mattermost does not replay events to a client that reconnects without resume parameters, so
after an outage the bot asks for every post changed since the last moment it knew it was in
sync (``GET /channels/{id}/posts?since=``, per channel the bot belongs to) and turns what it
finds back into the events the server would have sent: ``posted`` for new posts,
``reaction_added`` for reactions added in the meantime, and ``user_added`` / ``user_removed`` for
the join and leave system posts (with ``at``, the post's time).  A post changed in other ways —
edited, deleted, a reaction taken off — leaves only its ``update_at`` and its current state (the
answer holds deleted posts too, and every live post's reactions in ``metadata``), so it becomes a
``post_changed`` event, not a Mattermost one, carrying the post as it is now: handlers compare it
with what they recorded.  They are handed to the same dispatch as live events, which drops
anything already handled.

A ``since`` answer is complete only below the server's cap: store ``GetPostsSince`` selects
``UpdateAt > since`` with ``LIMIT 1000`` and no ordering, and every edit (a card refresh, a pin)
adds a deleted history row that counts too, so past the cap the rows left out are arbitrary.
No query narrows that set (``since`` has no upper bound, and a reaction to an old post leaves no
trace but the post's ``update_at``), so a channel whose answer reaches the cap is read whole
instead, newest first in pages of 200: every live post comes with its current reactions in
``metadata``, which gives both the new posts and the reactions added since.  That costs one call
per 200 posts of that channel, and happens only after more than ~1000 changes in one channel.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from gateway.models import Channel, Post, PostList, Reaction, Team, User

log = logging.getLogger(__name__)

# Mattermost answers a ``since`` query with at most this many changed rows, picked arbitrarily
# past it, and offers no paging (store/sqlstore/post_store.go GetPostsSince).
SINCE_CAP = 1000


class CatchUpClient(Protocol):
    """The REST calls catch-up needs (gateway.client.MattermostClient provides them)."""

    user_id: str
    username: str

    async def my_teams(self) -> list[Team]: ...
    async def my_channels(self, team_id: str) -> list[Channel]: ...
    async def channel_posts_since(self, channel_id: str, since: int) -> PostList: ...
    async def channel_posts(self, channel_id: str, *, before: str = "", page: int = 0,
                            per_page: int = 200) -> PostList: ...
    async def post_reactions(self, post_id: str) -> list[Reaction]: ...
    async def get_user(self, user_id: str) -> User: ...


Dispatch = Callable[[dict[str, Any]], Awaitable[None]]


class CatchUp:
    """Rebuilds the ``posted`` and ``reaction_added`` events a disconnected bot missed."""

    def __init__(self, client: CatchUpClient, *, parallel: int = 4) -> None:
        self.client = client
        self._parallel = parallel
        self._usernames: dict[str, str] = {}
        # REST calls the last catch-up made (reported in the log, watched by tests).
        self.rest_calls = 0

    async def missed_events(self, since: int) -> list[dict[str, Any]]:
        """Every post created and reaction added after ``since`` (server ms) in the bot's
        channels, as WebSocket event dicts (nested values JSON-encoded like the server's), oldest first."""
        self._usernames = {}
        self.rest_calls = 0
        channels = await self._channels()
        limit = asyncio.Semaphore(self._parallel)

        async def one(channel: Channel) -> list[tuple[int, dict[str, Any]]]:
            async with limit:
                return await self._channel_events(channel, since)

        found: list[tuple[int, dict[str, Any]]] = []
        for events in await asyncio.gather(*(one(channel) for channel in channels)):
            found.extend(events)
        found.sort(key=lambda item: item[0])
        log.info("catch-up since %d: %d event(s) from %d channel(s) in %d REST call(s)",
                 since, len(found), len(channels), self.rest_calls)
        return [event for _, event in found]

    async def replay(self, since: int, dispatch: Dispatch) -> int:
        """Dispatch the missed events in order; returns how many were found."""
        events = await self.missed_events(since)
        for event in events:
            await dispatch(event)
        return len(events)

    async def _channels(self) -> list[Channel]:
        by_id: dict[str, Channel] = {}
        self.rest_calls += 1
        for team in await self.client.my_teams():
            # Direct and group channels come back once per team; keep one copy.
            self.rest_calls += 1
            for channel in await self.client.my_channels(team.id):
                if not channel.archived:
                    by_id.setdefault(channel.id, channel)
        return list(by_id.values())

    async def _channel_events(self, channel: Channel, since: int) -> list[tuple[int, dict[str, Any]]]:
        self.rest_calls += 1
        post_list = await self.client.channel_posts_since(channel.id, since)
        posts = list(post_list.posts.values())
        if len(post_list.order) >= SINCE_CAP:
            log.info("catch-up: ~%s has at least %d changed posts since %d (the server's cap); reading it whole",
                     channel.name or channel.id, SINCE_CAP, since)
            posts = await self._whole_channel(channel.id)
        events: list[tuple[int, dict[str, Any]]] = []
        for post in posts:
            if post.original_id:
                continue  # the copy an edit leaves behind: the post itself is in the answer too
            if post.is_system:
                if post.create_at > since and (membership := _membership(channel, post)) is not None:
                    events.append((post.create_at, membership))
                continue
            if post.update_at > since:
                # Edited, deleted, or its reactions changed: the post as it is now (with its reactions).
                events.append((post.update_at, {"event": "post_changed", "data": {"post": post.model_dump_json()},
                                                "broadcast": _broadcast(channel.id), "replayed": True,
                                                "at": post.update_at}))
            if post.delete_at:
                continue
            if post.create_at > since and post.user_id != self.client.user_id:
                events.append((post.create_at, await self._posted(channel, post)))
            for reaction in await self._reactions(post):
                if reaction.create_at > since and not reaction.delete_at:
                    reaction = reaction.model_copy(update={"channel_id": reaction.channel_id or channel.id})
                    events.append((reaction.create_at, {
                        "event": "reaction_added", "data": {"reaction": reaction.model_dump_json()},
                        "broadcast": _broadcast(channel.id), "replayed": True}))
        return events

    async def _whole_channel(self, channel_id: str) -> list[Post]:
        """Every live post of the channel, each once (gateway.export.channel_pages walks it)."""
        from gateway.export import channel_pages  # keep this module light

        posts: list[Post] = []
        async for page in channel_pages(self.client, channel_id, on_call=self._count_call):
            posts.extend(page)
        return posts

    def _count_call(self) -> None:
        self.rest_calls += 1

    async def _reactions(self, post: Post) -> list[Reaction]:
        if post.metadata.reactions is not None:
            return list(post.metadata.reactions)
        if post.has_reactions:
            self.rest_calls += 1
            return await self.client.post_reactions(post.id)
        return []

    async def _posted(self, channel: Channel, post: Post) -> dict[str, Any]:
        data: dict[str, Any] = {
            "post": post.model_dump_json(), "channel_type": channel.type,
            "channel_display_name": channel.display_name, "channel_name": channel.name,
            "sender_name": "@" + await self._username(post.user_id), "team_id": channel.team_id,
        }
        if self.client.username and f"@{self.client.username}" in post.message:
            data["mentions"] = json.dumps([self.client.user_id])
        return {"event": "posted", "data": data, "broadcast": _broadcast(channel.id), "replayed": True}

    async def _username(self, user_id: str) -> str:
        if user_id not in self._usernames:
            self.rest_calls += 1
            try:
                self._usernames[user_id] = (await self.client.get_user(user_id)).username
            except Exception:
                log.warning("catch-up: cannot look up user %s", user_id)
                return ""
        return self._usernames[user_id]


#: The system posts Mattermost writes when someone joins or is added to a channel, leaves or is removed
#: (app/channel.go postJoinChannelMessage, PostAddToChannelMessage, postLeaveChannelMessage,
#: postRemoveFromChannelMessage), and the props naming the person when it is not the post's author.
_JOINED = {"system_join_channel": "", "system_add_to_channel": "addedUserId"}
_LEFT = {"system_leave_channel": "", "system_remove_from_channel": "removedUserId"}


def _membership(channel: Channel, post: Post) -> dict[str, Any] | None:
    """The ``user_added`` / ``user_removed`` event a join or leave post stands for (the server's own
    fields, plus who added someone as ``adder_id`` and when it happened as ``at``), or None."""
    joined = post.type in _JOINED
    if not joined and post.type not in _LEFT:
        return None
    key = (_JOINED if joined else _LEFT)[post.type]
    user_id = str(post.props.get(key) or "") if key else post.user_id
    if not user_id:
        return None
    data: dict[str, Any] = {"user_id": user_id, "team_id": channel.team_id} if joined else {
        "user_id": user_id, "remover_id": post.user_id}
    if joined and post.user_id != user_id:
        data["adder_id"] = post.user_id
    return {"event": "user_added" if joined else "user_removed", "data": data,
            "broadcast": _broadcast(channel.id), "replayed": True, "at": post.create_at}


def _broadcast(channel_id: str) -> dict[str, Any]:
    return {"omit_users": None, "user_id": "", "channel_id": channel_id, "team_id": "",
            "connection_id": "", "omit_connection_id": ""}
