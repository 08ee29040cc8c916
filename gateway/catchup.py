"""Catching up over REST with what the WebSocket missed while it was down (protocol.md §4.4).

Mattermost does not replay events to a client that reconnects without resume parameters, so
after an outage the bot asks for every post changed since the last moment it knew it was in
sync (``GET /channels/{id}/posts?since=``, per channel the bot belongs to) and turns what it
finds back into the events the server would have sent: ``posted`` for new posts and
``reaction_added`` for reactions added in the meantime.  They are handed to the same dispatch
as live events, which drops anything already handled.

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

log = logging.getLogger(__name__)

# Mattermost answers a ``since`` query with at most this many changed rows, picked arbitrarily
# past it, and offers no paging (store/sqlstore/post_store.go GetPostsSince).
SINCE_CAP = 1000


class CatchUpClient(Protocol):
    """The REST calls catch-up needs (gateway.client.MattermostClient provides them)."""

    user_id: str
    username: str

    async def my_teams(self) -> list[dict]: ...
    async def my_channels(self, team_id: str) -> list[dict]: ...
    async def channel_posts_since(self, channel_id: str, since: int) -> dict: ...
    async def channel_posts(self, channel_id: str, *, before: str = "", page: int = 0,
                            per_page: int = 200) -> dict: ...
    async def post_reactions(self, post_id: str) -> list[dict]: ...
    async def get_user(self, user_id: str) -> dict: ...


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

        async def one(channel: dict) -> list[tuple[int, dict[str, Any]]]:
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

    async def _channels(self) -> list[dict]:
        by_id: dict[str, dict] = {}
        self.rest_calls += 1
        for team in await self.client.my_teams():
            # Direct and group channels come back once per team; keep one copy.
            self.rest_calls += 1
            for channel in await self.client.my_channels(team["id"]):
                if not channel.get("delete_at"):
                    by_id.setdefault(channel["id"], channel)
        return list(by_id.values())

    async def _channel_events(self, channel: dict, since: int) -> list[tuple[int, dict[str, Any]]]:
        self.rest_calls += 1
        post_list = await self.client.channel_posts_since(channel["id"], since) or {}
        posts = list((post_list.get("posts") or {}).values())
        if len(post_list.get("order") or []) >= SINCE_CAP:
            log.info("catch-up: ~%s has at least %d changed posts since %d (the server's cap); reading it whole",
                     channel.get("name", channel["id"]), SINCE_CAP, since)
            posts = await self._whole_channel(channel["id"])
        events: list[tuple[int, dict[str, Any]]] = []
        for post in posts:
            if post.get("delete_at"):
                continue
            if int(post.get("create_at") or 0) > since and not str(post.get("type") or "").startswith("system_") \
                    and post.get("user_id") != self.client.user_id:
                events.append((int(post["create_at"]), await self._posted(channel, post)))
            for reaction in await self._reactions(post):
                if int(reaction.get("create_at") or 0) > since and not reaction.get("delete_at"):
                    reaction = {**reaction, "channel_id": reaction.get("channel_id") or channel["id"]}
                    events.append((int(reaction["create_at"]), {
                        "event": "reaction_added", "data": {"reaction": json.dumps(reaction)},
                        "broadcast": _broadcast(channel["id"]), "replayed": True}))
        return events

    async def _whole_channel(self, channel_id: str) -> list[dict]:
        """Every live post of the channel, each once (gateway.export.channel_pages walks it)."""
        from gateway.export import channel_pages  # export imports the client; keep this module light

        posts: list[dict] = []
        async for page in channel_pages(self.client, channel_id, on_call=self._count_call):
            posts.extend(page)
        return posts

    def _count_call(self) -> None:
        self.rest_calls += 1

    async def _reactions(self, post: dict) -> list[dict]:
        metadata = post.get("metadata") or {}
        if "reactions" in metadata:
            return list(metadata.get("reactions") or [])
        if post.get("has_reactions"):
            self.rest_calls += 1
            return await self.client.post_reactions(post["id"])
        return []

    async def _posted(self, channel: dict, post: dict) -> dict[str, Any]:
        data: dict[str, Any] = {
            "post": json.dumps(post), "channel_type": channel.get("type", ""),
            "channel_display_name": channel.get("display_name", ""), "channel_name": channel.get("name", ""),
            "sender_name": "@" + await self._username(post.get("user_id", "")), "team_id": channel.get("team_id", ""),
        }
        if self.client.username and f"@{self.client.username}" in str(post.get("message", "")):
            data["mentions"] = json.dumps([self.client.user_id])
        return {"event": "posted", "data": data, "broadcast": _broadcast(channel["id"]), "replayed": True}

    async def _username(self, user_id: str) -> str:
        if user_id not in self._usernames:
            self.rest_calls += 1
            try:
                self._usernames[user_id] = str((await self.client.get_user(user_id)).get("username", ""))
            except Exception:
                log.warning("catch-up: cannot look up user %s", user_id)
                return ""
        return self._usernames[user_id]


def _broadcast(channel_id: str) -> dict[str, Any]:
    return {"omit_users": None, "user_id": "", "channel_id": channel_id, "team_id": "",
            "connection_id": "", "omit_connection_id": ""}
